use super::progress;
use anyhow::{Context, Result, bail};
use clap::Args;
use rt4ksr::ModelWeights;
use rt4ksr::eval::{Scores, bicubic_sr, make_pair};
use rt4ksr::imaging::io::load_rgb8;
use rt4ksr::inference::{engine_on, upscale_u8};
use serde::Serialize;
use std::path::{Path, PathBuf};
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

#[derive(Serialize)]
struct ImageResult {
    name: String,
    bicubic: Scores,
    model: Option<Scores>,
}

#[derive(Serialize)]
struct Report {
    data: String,
    scale: usize,
    crop_border: usize,
    weights: Option<String>,
    images: Vec<ImageResult>,
    mean_bicubic: Scores,
    mean_model: Option<Scores>,
}

/// Image files directly in `dir`, sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    rt4ksr::imaging::files::image_files(dir, false)
        .with_context(|| format!("{}: cannot list the folder", dir.display()))
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
    let files = image_files(&args.data)?;
    if files.is_empty() {
        bail!(
            "{}: no image files (png, jpg, bmp, tif, webp) in the folder",
            args.data.display()
        );
    }
    let bar = progress::bar(files.len() as u64, "images");
    let mut images = Vec::new();
    for file in &files {
        let name = file.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        bar.set_message(name.clone());
        let hr = load_rgb8(file)?;
        let (hr, lr) = make_pair(&hr, args.scale);
        let min_side = 2 * crop_border + 11;
        if hr.height < min_side || hr.width < min_side {
            bar.suspend(|| {
                eprintln!(
                    "{}: skipped, {}x{} is too small to measure",
                    file.display(),
                    hr.width,
                    hr.height
                )
            });
            bar.inc(1);
            continue;
        }
        let bicubic = Scores::measure(&hr, &bicubic_sr(&lr, args.scale), crop_border);
        let model = match &upscaler {
            Some(u) => {
                let sr = upscale_u8(u.as_ref(), &lr).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                Some(Scores::measure(&hr, &sr, crop_border))
            }
            None => None,
        };
        images.push(ImageResult { name, bicubic, model });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mean_bicubic = Scores::mean(&images.iter().map(|r| r.bicubic).collect::<Vec<_>>());
    let mean_model = upscaler
        .as_ref()
        .map(|_| Scores::mean(&images.iter().filter_map(|r| r.model).collect::<Vec<_>>()));
    let report = Report {
        data: args.data.display().to_string(),
        scale: args.scale,
        crop_border,
        weights: Some(args.weights.as_ref().map_or_else(
            || format!("embedded x{} model", args.scale),
            |p| p.display().to_string(),
        ))
        .filter(|_| !args.bicubic),
        images,
        mean_bicubic,
        mean_model,
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
        r.scale,
        r.crop_border,
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
    for img in &r.images {
        row(&img.name, &img.bicubic, img.model.as_ref());
    }
    row("mean", &r.mean_bicubic, r.mean_model.as_ref());
    outln!("(PSNR dB / SSIM; Y = BT.601 luma as MATLAB rgb2ycbcr)");
}
