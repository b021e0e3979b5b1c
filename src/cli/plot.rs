//! `rt4ksr plot`: training curves from log CSVs as a PNG.

use anyhow::{Context, Result, bail};
use clap::Args;
use rt4ksr::train::plot::{chain_series, render};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// Training logs (`log.csv` of `rt4ksr train`); several are a chain of schedules, each
    /// continuing the one before, drawn end to end.
    #[arg(required = true)]
    logs: Vec<PathBuf>,
    /// The PNG to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Replace the output if it exists.
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: PlotArgs) -> Result<ExitCode> {
    super::refuse_existing(&args.output, args.overwrite)?;
    let texts = args
        .logs
        .iter()
        .map(|p| std::fs::read_to_string(p).with_context(|| p.display().to_string()))
        .collect::<Result<Vec<_>>>()?;
    let (loss, validation) = chain_series(&texts.iter().map(String::as_str).collect::<Vec<_>>());
    if loss.is_empty() && validation.is_empty() {
        bail!(
            "{}: no training log rows (step,loss,...,val_psnr_y)",
            args.logs[0].display()
        );
    }
    rt4ksr::fsutil::write_atomic(&args.output, &render(&loss, &validation))
        .with_context(|| args.output.display().to_string())?;
    Ok(ExitCode::SUCCESS)
}
