//! Command-line definitions; each subcommand lives in its own file.

/// `println!` for report output: a reader that went away (`rt4ksr info F | head -1`) ends the
/// program quietly, as Unix tools do, instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("rt4ksr: writing standard output: {e}");
            std::process::exit(1);
        }
    }};
}

/// An error as one line: its chain of causes joined by ": ", leaving out a cause whose text the
/// line already holds (the library's errors name their source in their own message, and
/// `{:#}` printed it twice: "cannot read the file: No such file (os error 2): No such file (os
/// error 2)").
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Refuses to go on when `path` exists and `--overwrite` was not given.
fn refuse_existing(path: &std::path::Path, overwrite: bool) -> anyhow::Result<()> {
    if path.exists() && !overwrite {
        anyhow::bail!("{} exists (use --overwrite to replace it)", path.display());
    }
    Ok(())
}

mod allocator;
mod args;
mod bench;
mod convert;
mod device;
mod eval;
mod export;
mod info;
mod plot;
mod progress;
mod train;
mod upscale;
mod video;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "rt4ksr", version, about = "Real-time 4K super-resolution (RT4KSR) in Rust")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One command's arguments, parsed once per run: the size difference of the variants is moot.
#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Upscale images: files, folders (mirrored) or standard input.
    Upscale(upscale::UpscaleArgs),
    /// Print a weight file's configuration, parameter count and cost per 4K frame.
    Info(info::InfoArgs),
    /// Measure PSNR/SSIM on a folder of HR images against the bicubic baseline.
    Eval(eval::EvalArgs),
    /// Train a model on a folder of HR images (resumable).
    Train(train::TrainArgs),
    /// Time the network per 4K frame (and its parts) on this machine.
    Bench(bench::BenchArgs),
    /// Convert any weight file into the project's format (folded by default).
    Convert(convert::ConvertArgs),
    /// Upscale a video file through ffmpeg (audio and subtitles copied).
    Video(video::VideoArgs),
    /// Export the folded model for other runtimes (ONNX).
    Export(export::ExportArgs),
    /// Draw the loss and validation curves of training logs as a PNG.
    Plot(plot::PlotArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Info(args) => info::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Train(args) => train::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Upscale(args) => upscale::run(args),
        Command::Video(args) => video::run(args),
        Command::Export(args) => export::run(args),
        Command::Plot(args) => plot::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;
    use anyhow::Context;

    #[test]
    fn an_error_is_one_line_without_repeated_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("a.png: cannot read the file: {source}")]
        struct Read {
            source: std::io::Error,
        }
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::from(Read { source: io });
        assert_eq!(one_line(&err), "a.png: cannot read the file: no such file");
        let wrapped = Err::<(), _>(std::io::Error::other("disk full")).context("writing out.png");
        assert_eq!(one_line(&wrapped.unwrap_err()), "writing out.png: disk full");
    }
}
