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
