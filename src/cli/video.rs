//! `rt4ksr video`: whole video files through ffmpeg and the pipelined engine.

use super::args::{ModelArgs, parse_bytes};
use anyhow::{Result, bail};
use clap::Args;
use rt4ksr::video::color::Matrix;
use rt4ksr::video::ffmpeg::{VideoJob, transcode};
use rt4ksr::video::pipeline::VideoOptions;
use std::path::PathBuf;
use std::process::ExitCode;

/// `rt4ksr video IN -o OUT [-- ENCODER OPTIONS]`
#[derive(Args, Debug)]
pub struct VideoArgs {
    /// Input video file (anything ffmpeg reads).
    input: PathBuf,
    /// Output video file; its container follows the extension.
    #[arg(long, short)]
    output: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    device: super::device::DeviceArgs,
    /// Pixel format the frames are decoded to (yuv420p, yuv420p10le, yuv422p, yuv444p, gray).
    #[arg(long, default_value = "yuv420p")]
    pix_fmt: String,
    /// YUV matrix (default: BT.709 above 576 lines, BT.601 below).
    #[arg(long, value_parser = ["601", "709"])]
    matrix: Option<String>,
    /// Replace an existing output.
    #[arg(long)]
    overwrite: bool,
    #[arg(long, default_value = "1G", value_parser = parse_bytes)]
    max_memory: u64,
    /// Encoder options passed to ffmpeg after `--` (default: `-c:v libx264 -crf 16 -preset medium`).
    #[arg(last = true)]
    encoder: Vec<String>,
}

pub fn run(args: VideoArgs) -> Result<ExitCode> {
    super::refuse_existing(&args.output, args.overwrite)?;
    if !args.input.exists() {
        bail!("{}: no such file", args.input.display());
    }
    let engine = args.model.engine(&args.device)?;
    let encoder = if args.encoder.is_empty() {
        ["-c:v", "libx264", "-crf", "16", "-preset", "medium"]
            .map(String::from)
            .to_vec()
    } else {
        args.encoder.clone()
    };
    let job = VideoJob {
        input: &args.input,
        output: &args.output,
        pix_fmt: &args.pix_fmt,
        encoder_args: &encoder,
        options: VideoOptions {
            matrix: args
                .matrix
                .as_deref()
                .map(|m| if m == "601" { Matrix::Bt601 } else { Matrix::Bt709 }),
            full_range: None,
            max_memory: args.max_memory as usize,
        },
    };
    let bar = super::progress::frames();
    let started = std::time::Instant::now();
    let frames = transcode(engine.as_ref(), &job, |n| bar.set_position(n))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{} -> {}: {frames} frames in {secs:.1} s ({:.2} frames/s)",
        args.input.display(),
        args.output.display(),
        frames as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
