//! `rt4ksr train`: a run's options from TOML and flags, progress lines, resumption.

use super::progress;
use anyhow::{Context, Result, anyhow};
use clap::Args;
use rt4ksr::model::ModelConfig;
use rt4ksr::train::config::OptimizerKind;
use rt4ksr::train::schedule::Schedule;
use rt4ksr::train::{TrainConfig, TrainEvent, Trainer};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Every field of the TOML config can be given here; flags override the file.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// TOML file with the run's settings (see docs/training.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue from OUT/checkpoint.safetensors exactly where it stopped.
    #[arg(long)]
    resume: bool,
    /// Folder of HR training images (repeatable).
    #[arg(long)]
    data: Vec<PathBuf>,
    /// Share of each --data folder in the crops, comma-separated, one a folder (default: every
    /// image equally likely).
    #[arg(long, value_delimiter = ',')]
    data_weights: Option<Vec<f64>>,
    /// A --data folder whose crops keep their orientation: flipped, never turned on their side
    /// (screens, text; repeatable).
    #[arg(long, value_name = "DIR")]
    upright_data: Vec<PathBuf>,
    /// Folder of HR validation images.
    #[arg(long)]
    val_data: Option<PathBuf>,
    /// Output folder (checkpoint, log.csv, best.safetensors, last.safetensors).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Scale of the official configuration to train (2, 3 or 4).
    #[arg(long, short)]
    scale: Option<usize>,
    #[arg(long)]
    feature_channels: Option<usize>,
    #[arg(long)]
    num_blocks: Option<usize>,
    #[arg(long)]
    steps: Option<u64>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// LR patch side (repeatable: several sizes alternate step by step).
    #[arg(long)]
    lr_patch: Vec<usize>,
    #[arg(long, value_parser = ["adam", "adamw"])]
    optimizer: Option<String>,
    #[arg(long)]
    learning_rate: Option<f64>,
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Cosine decay to this rate instead of the multi-step schedule.
    #[arg(long)]
    cosine_min_lr: Option<f64>,
    /// Multi-step milestones (steps), comma-separated.
    #[arg(long, value_delimiter = ',')]
    milestones: Option<Vec<u64>>,
    #[arg(long)]
    hf_loss_weight: Option<f64>,
    /// Weight of an L1 loss on luma (the Y that Y-PSNR measures) next to L1 on RGB.
    #[arg(long)]
    luma_loss_weight: Option<f64>,
    /// LR patches clamped and rounded to 8 bits, as a saved image's (`lr_8bit = true`).
    #[arg(long)]
    lr_8bit: bool,
    /// The share of crops turned negative (255 - v) before their LR is made, 0 to 1.
    #[arg(long)]
    invert_fraction: Option<f64>,
    #[arg(long)]
    grad_clip: Option<f64>,
    #[arg(long)]
    ema_decay: Option<f64>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    val_every: Option<u64>,
    #[arg(long)]
    checkpoint_every: Option<u64>,
    #[arg(long)]
    log_every: Option<u64>,
    /// Fine-tune from these weights (.pth, project file, checkpoint or a folded model such as
    /// models/rt4ksr_x3.safetensors, unfolded exactly) of the configured model, or of the same
    /// model at another scale (its upsample conv resampled).
    #[arg(long)]
    init_weights: Option<PathBuf>,
    /// Who computes the gradients: auto (the hand-written CPU pass where it applies), burn or
    /// native.
    #[arg(long)]
    backward: Option<rt4ksr::train::config::Backward>,
    /// Stop after this many completed steps (the run can be resumed later).
    #[arg(long)]
    stop_at: Option<u64>,
    /// Where to train: cpu (default here: bit-reproducible), or a GPU backend of this build.
    #[arg(long, default_value = "cpu")]
    device: rt4ksr::device::DeviceChoice,
}

fn resolve(args: &TrainArgs) -> Result<TrainConfig> {
    let mut c = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
            TrainConfig::from_toml(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
        None => TrainConfig::default(),
    };
    if let Some(s) = args.scale {
        c.model = ModelConfig { scale: s, ..c.model };
    }
    if let Some(f) = args.feature_channels {
        c.model.feature_channels = f;
    }
    if let Some(n) = args.num_blocks {
        c.model.num_blocks = n;
    }
    if !args.data.is_empty() {
        c.data = args.data.clone();
    }
    if let Some(w) = &args.data_weights {
        c.data_weights = w.clone();
    }
    if !args.upright_data.is_empty() {
        c.upright_data = args.upright_data.clone();
    }
    if !args.lr_patch.is_empty() {
        c.lr_patches = args.lr_patch.clone();
    }
    macro_rules! set {
        ($($field:ident),*) => { $(if let Some(v) = &args.$field { c.$field = v.clone().into(); })* };
    }
    set!(
        steps,
        batch_size,
        learning_rate,
        weight_decay,
        hf_loss_weight,
        luma_loss_weight,
        seed,
        val_every,
        checkpoint_every,
        log_every
    );
    if args.lr_8bit {
        c.lr_8bit = true;
    }
    if let Some(f) = args.invert_fraction {
        c.invert_fraction = f;
    }
    if args.val_data.is_some() {
        c.val_data = args.val_data.clone();
    }
    if let Some(o) = &args.out {
        c.out_dir = o.clone();
    }
    if let Some(o) = &args.optimizer {
        c.optimizer = if o == "adamw" {
            OptimizerKind::AdamW
        } else {
            OptimizerKind::Adam
        };
    }
    if let Some(min_lr) = args.cosine_min_lr {
        c.schedule = Schedule::Cosine { min_lr };
    }
    if let Some(m) = &args.milestones {
        c.schedule = Schedule::MultiStep {
            milestones: m.clone(),
            gamma: 0.5,
        };
    }
    if args.grad_clip.is_some() {
        c.grad_clip = args.grad_clip;
    }
    if args.ema_decay.is_some() {
        c.ema_decay = args.ema_decay;
    }
    if args.init_weights.is_some() {
        c.init_weights = args.init_weights.clone();
    }
    if let Some(b) = args.backward {
        c.backward = b;
    }
    Ok(c)
}

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    let mut config = resolve(&args)?;
    let saved = config.out_dir.join("config.toml");
    // The file the settings came from, named in a validation error (flags may override it).
    let mut source = args.config.clone();
    if args.resume && saved.exists() && args.config.is_none() {
        // A resumed run keeps the settings it started with, unless a file is given again.
        let text = std::fs::read_to_string(&saved)?;
        let stop = config.steps;
        config = TrainConfig::from_toml(&text).map_err(|e| anyhow!("{}: {e}", saved.display()))?;
        if args.steps.is_some() {
            config.steps = stop;
        }
        source = Some(saved.clone());
    }
    config.validate().map_err(|e| match &source {
        Some(path) => anyhow!("{}: {e}", path.display()),
        None => anyhow!(e),
    })?;
    std::fs::create_dir_all(&config.out_dir).with_context(|| config.out_dir.display().to_string())?;
    rt4ksr::fsutil::write_atomic(&saved, config.to_toml().as_bytes())?;
    let device = rt4ksr::device::open(args.device)?;
    super::allocator::keep_freed_memory_for_reuse();
    let trainer = Trainer::new(config.clone()).map_err(|e| anyhow!(e))?;
    let trainer = if device.is_cpu() {
        trainer
    } else {
        trainer.on_device(device.device)
    };
    let bar = progress::bar(config.steps, "steps");
    // The bar is hidden when stderr is a log file (a run under nohup); write a line per log
    // interval there instead, so the log shows the run is alive and when it will end.
    let plain_lines = !std::io::stderr().is_terminal();
    let summary = trainer
        .run(args.resume, args.stop_at, |event| match event {
            TrainEvent::Started {
                start_step,
                images,
                skipped,
            } => {
                bar.set_position(start_step);
                bar.reset_eta();
                bar.suspend(|| {
                    eprintln!(
                        "training {} on {images} images from step {start_step}",
                        config.model.summary()
                    );
                    for (file, why) in &skipped {
                        eprintln!("  skipped {}: {why}", file.display());
                    }
                });
            }
            TrainEvent::Step {
                step,
                loss,
                lr,
                steps_per_sec,
                ..
            } => {
                bar.set_position(step);
                let status = format!("loss {loss:.5} lr {lr:.2e} {steps_per_sec:.2} steps/s");
                if plain_lines {
                    let left = (config.steps - step) as f64 / steps_per_sec.max(1e-9);
                    eprintln!("step {step}/{}: {status}, eta {}", config.steps, hours_minutes(left));
                }
                bar.set_message(status);
            }
            TrainEvent::Validation { step, psnr_y, best } => {
                bar.suspend(|| {
                    eprintln!(
                        "step {step}: validation Y-PSNR {psnr_y:.3} dB{}",
                        if best { " (best)" } else { "" }
                    )
                });
            }
            TrainEvent::Checkpoint { .. } => {}
        })
        .map_err(|e| anyhow!(e))?;
    bar.finish_and_clear();
    eprintln!(
        "{} steps done in {:.0} s; best validation Y-PSNR {} at step {}",
        summary.steps_done,
        summary.seconds,
        summary.best_psnr.map_or("-".into(), |p| format!("{p:.3} dB")),
        summary.best_step
    );
    Ok(ExitCode::SUCCESS)
}

/// `3h07m` or `12m`: the ETA of a plain progress line.
fn hours_minutes(seconds: f64) -> String {
    let minutes = (seconds / 60.0).round() as u64;
    match minutes / 60 {
        0 => format!("{minutes}m"),
        h => format!("{h}h{:02}m", minutes % 60),
    }
}
