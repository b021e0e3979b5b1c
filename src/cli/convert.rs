//! `rt4ksr convert`: any weight file the program reads to an rt4ksr weight file, folded unless
//! asked otherwise; averaged with another, transposed or widened on the way.

use anyhow::{Context, Result, bail};
use clap::Args;
use rt4ksr::ModelWeights;
use std::path::PathBuf;
use std::process::ExitCode;

/// The seed of `--widen`'s shares: the same input gives the same file.
const WIDEN_SEED: u64 = 0x5749_4445;

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Any weight file: official .pth, safetensors, rt4ksr file or training checkpoint.
    input: PathBuf,
    /// The rt4ksr weight file to write (safetensors with the configuration in its metadata).
    #[arg(long, short)]
    output: PathBuf,
    /// Keep the training form (default: fold into the inference form, dead branch dropped).
    #[arg(long)]
    training_form: bool,
    /// From a training checkpoint, take the live weights rather than their moving average.
    #[arg(long)]
    live_weights: bool,
    /// Write the element-wise mean of the input's folded weights and this model's (same
    /// configuration): a "model soup" of two fine-tunes of one starting point.
    #[arg(long, value_name = "WEIGHTS", conflicts_with = "training_form")]
    mean_with: Option<PathBuf>,
    /// The share of `--mean-with`'s weights in the mean (0 to 1; the input's is the rest).
    #[arg(long, value_name = "SHARE", default_value_t = 0.5, requires = "mean_with")]
    mean_share: f32,
    /// Write the model conjugated by transposition: on an image turned by 90 degrees it gives
    /// what the input model gives on the image, turned (its strong orientation moved).
    #[arg(long)]
    transpose: bool,
    /// Write the model with FACTOR times the feature channels, computing what the input does:
    /// each channel copied, each weight that reads copies split among them in random shares
    /// (fixed seed), so that training can start the wider model where the input ended.
    #[arg(long, value_name = "FACTOR", conflicts_with = "mean_with")]
    widen: Option<usize>,
    /// Replace an existing output file.
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: ConvertArgs) -> Result<ExitCode> {
    super::refuse_existing(&args.output, args.overwrite)?;
    let weights = if args.live_weights {
        let mut ckpt = rt4ksr::train::checkpoint::Checkpoint::load(&args.input).map_err(|e| anyhow::anyhow!(e))?;
        ckpt.ema = None;
        ckpt.model_weights().map_err(|e| anyhow::anyhow!(e))?
    } else {
        ModelWeights::load(&args.input)?
    };
    let weights = match args.widen {
        Some(factor) => weights
            .widened(factor, WIDEN_SEED)
            .with_context(|| args.input.display().to_string())?,
        None => weights,
    };
    let out = if let Some(other_path) = &args.mean_with {
        let other = ModelWeights::load(other_path)?;
        weights
            .mean(&other, args.mean_share)
            .with_context(|| format!("{} and {}", args.input.display(), other_path.display()))?
    } else if args.training_form {
        if weights.form != rt4ksr::Form::Training {
            bail!(
                "{}: holds folded weights, which cannot be unfolded",
                args.input.display()
            );
        }
        weights
    } else {
        weights.folded(false)?
    };
    let out = if args.transpose { out.transposed() } else { out };
    out.save(&args.output)?;
    eprintln!(
        "{}: {} form, {} parameters, {}",
        args.output.display(),
        out.form,
        out.parameter_count(),
        out.config.summary()
    );
    Ok(ExitCode::SUCCESS)
}
