//! `rt4ksr export --onnx`: the library's ONNX export, written atomically.

use super::args::ModelArgs;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The ONNX file to write (opset 17, dynamic batch, height and width; dead branch left out).
    #[arg(long)]
    onnx: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// Replace an existing output file.
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    super::refuse_existing(&args.onnx, args.overwrite)?;
    let weights = args.model.load()?;
    let bytes = rt4ksr::export::onnx::export(&weights)?;
    rt4ksr::fsutil::write_atomic(&args.onnx, &bytes).with_context(|| format!("writing {}", args.onnx.display()))?;
    eprintln!(
        "{}: ONNX opset {}, input `{}` [N, 3, H, W] (H, W even) -> output `{}` [N, 3, {s}H, {s}W], {} bytes",
        args.onnx.display(),
        rt4ksr::export::onnx::OPSET,
        rt4ksr::export::onnx::INPUT_NAME,
        rt4ksr::export::onnx::OUTPUT_NAME,
        bytes.len(),
        s = weights.config.scale,
    );
    Ok(ExitCode::SUCCESS)
}
