//! `rt4ksr eval`: the library's folder evaluation, printed as a table or JSON.

use super::progress;
use anyhow::{Result, bail};
use clap::Args;
use rt4ksr::ModelWeights;
use rt4ksr::eval::{EvalEvent, FolderScores, Scores, evaluate_folder};
use rt4ksr::inference::engine_on;
use rt4ksr::upscale::Engine;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Folder of HR images (PNG, JPEG, BMP, TIFF, WebP); LR images are made from them.
    #[arg(long)]
    data: PathBuf,
    /// Upscaling factor.
    #[arg(long, short)]
    scale: usize,
    /// Weight file (.pth, safetensors or rt4ksr); its scale must match --scale. Default: the
    /// embedded model of that scale.
    #[arg(long, conflicts_with = "bicubic")]
    weights: Option<PathBuf>,
    /// Only the bicubic baseline.
    #[arg(long)]
    bicubic: bool,
    /// Pixels cropped from each border before measuring (default: the scale).
    #[arg(long)]
    crop_border: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    device: super::device::DeviceArgs,
}

/// `rt4ksr::eval::FolderScores` with the names of what was measured.
#[derive(Serialize)]
struct Report {
    data: String,
    weights: Option<String>,
    #[serde(flatten)]
    scores: FolderScores,
}

pub fn run(args: EvalArgs) -> Result<ExitCode> {
    if !(2..=4).contains(&args.scale) {
        bail!("--scale must be 2, 3 or 4");
    }
    let weights = match (&args.weights, args.bicubic) {
        (Some(path), _) => {
            let weights = ModelWeights::load(path)?;
            if weights.config.scale != args.scale {
                bail!(
                    "{}: the model is x{}, --scale asks for x{}",
                    path.display(),
                    weights.config.scale,
                    args.scale
                );
            }
            Some(weights)
        }
        (None, true) => None,
        (None, false) => Some(rt4ksr::default_models::load(args.scale)?),
    };
    let upscaler = match &weights {
        Some(w) => Some(engine_on(w, &args.device.open()?, args.device.precision)?),
        None => None,
    };
    let crop_border = args.crop_border.unwrap_or(args.scale);
    let bar = progress::bar(0, "images");
    let scores = evaluate_folder(
        &args.data,
        args.scale,
        crop_border,
        upscaler.as_deref().map(|u| u as &dyn Engine),
        |event| match event {
            EvalEvent::Image { path, index, total } => {
                bar.set_length(total as u64);
                bar.set_position(index as u64);
                bar.set_message(path.file_stem().unwrap_or_default().to_string_lossy().into_owned());
            }
            EvalEvent::TooSmall { path, width, height } => {
                bar.suspend(|| eprintln!("{}: skipped, {width}x{height} is too small to measure", path.display()))
            }
        },
    );
    bar.finish_and_clear();
    let report = Report {
        data: args.data.display().to_string(),
        weights: Some(args.weights.as_ref().map_or_else(
            || format!("embedded x{} model", args.scale),
            |p| p.display().to_string(),
        ))
        .filter(|_| !args.bicubic),
        scores: scores?,
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(r: &Report) {
    outln!(
        "{} x{} (crop border {}), model: {}",
        r.data,
        r.scores.scale,
        r.scores.crop_border,
        r.weights.as_deref().unwrap_or("none (bicubic only)")
    );
    outln!(
        "{:<14} {:>16} {:>16} {:>16} {:>16} {:>8}",
        "image",
        "bicubic Y",
        "bicubic RGB",
        "model Y",
        "model RGB",
        "gain Y"
    );
    let cell = |s: &Scores, y: bool| {
        if y {
            format!("{:.3}/{:.4}", s.psnr_y, s.ssim_y)
        } else {
            format!("{:.3}/{:.4}", s.psnr_rgb, s.ssim_rgb)
        }
    };
    let row = |name: &str, b: &Scores, m: Option<&Scores>| {
        let (my, mr, gain) = match m {
            Some(m) => (cell(m, true), cell(m, false), format!("{:+.3}", m.psnr_y - b.psnr_y)),
            None => ("-".into(), "-".into(), "-".into()),
        };
        outln!(
            "{name:<14} {:>16} {:>16} {my:>16} {mr:>16} {gain:>8}",
            cell(b, true),
            cell(b, false)
        );
    };
    for img in &r.scores.images {
        row(&img.name, &img.bicubic, img.model.as_ref());
    }
    row("mean", &r.scores.mean_bicubic, r.scores.mean_model.as_ref());
    outln!("(PSNR dB / SSIM; Y = BT.601 luma as MATLAB rgb2ycbcr)");
}
