//! Evaluation as SR papers do it, and as ../shared/reference/GOLDEN-RESIZE-METRICS.md fixes it:
//! HR cropped to a multiple of 2*scale (the network needs even LR sides), LR = bicubic(HR, 1/s)
//! rounded to 8 bit, SR clamped and rounded to 8 bit, metrics with crop border = scale.

use crate::imaging::Image;
use crate::imaging::files::image_files;
use crate::imaging::io::{ImageIoError, load_rgb8};
use crate::imaging::resize;
use crate::inference::upscale_u8;
use crate::metrics::{self, Channels, Quality};
use crate::upscale::{Engine, UpscaleError};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The HR image cropped for `scale` and its 8-bit LR counterpart.
pub fn make_pair(hr: &Image<u8>, scale: usize) -> (Image<u8>, Image<u8>) {
    let hr = hr.modcrop(2 * scale);
    let lr = resize::downscale(&hr.to_unit_f64(), scale).quantize_u8();
    (hr, lr)
}

/// The bicubic baseline: the LR image enlarged by MATLAB-style bicubic, rounded to 8 bit.
pub fn bicubic_sr(lr: &Image<u8>, scale: usize) -> Image<u8> {
    resize::upscale(&lr.to_unit_f64(), scale).quantize_u8()
}

/// Metrics of one SR result on Y and on RGB.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Scores {
    pub psnr_y: f64,
    pub ssim_y: f64,
    pub psnr_rgb: f64,
    pub ssim_rgb: f64,
}

impl Scores {
    pub fn measure(hr: &Image<u8>, sr: &Image<u8>, crop_border: usize) -> Self {
        let Quality {
            psnr: psnr_y,
            ssim: ssim_y,
        } = metrics::quality(hr, sr, crop_border, Channels::Y);
        let Quality {
            psnr: psnr_rgb,
            ssim: ssim_rgb,
        } = metrics::quality(hr, sr, crop_border, Channels::Rgb);
        Self {
            psnr_y,
            ssim_y,
            psnr_rgb,
            ssim_rgb,
        }
    }

    /// The mean of several results, each metric averaged as papers do (mean of per-image dB).
    pub fn mean(all: &[Scores]) -> Self {
        let n = all.len().max(1) as f64;
        let avg = |f: fn(&Scores) -> f64| all.iter().map(f).sum::<f64>() / n;
        Self {
            psnr_y: avg(|s| s.psnr_y),
            ssim_y: avg(|s| s.ssim_y),
            psnr_rgb: avg(|s| s.psnr_rgb),
            ssim_rgb: avg(|s| s.ssim_rgb),
        }
    }
}

/// The scores of one image of a folder.
#[derive(Clone, Debug, Serialize)]
pub struct ImageScores {
    /// The file name without its extension.
    pub name: String,
    pub bicubic: Scores,
    /// The model's, when a model was measured.
    pub model: Option<Scores>,
}

/// What [`evaluate_folder`] measured: per image and the means, as papers report them.
#[derive(Clone, Debug, Serialize)]
pub struct FolderScores {
    pub scale: usize,
    pub crop_border: usize,
    pub images: Vec<ImageScores>,
    pub mean_bicubic: Scores,
    pub mean_model: Option<Scores>,
}

/// What [`evaluate_folder`] reports as it goes.
pub enum EvalEvent<'a> {
    /// `path` is measured next; `index` counts from 0 of `total`.
    Image { path: &'a Path, index: usize, total: usize },
    /// `path` was left out: with the border cropped it would hold too little to measure.
    TooSmall {
        path: &'a Path,
        width: usize,
        height: usize,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{}: cannot list the folder: {source}", dir.display())]
    List { dir: PathBuf, source: walkdir::Error },
    #[error("{}: no image files (png, jpg, bmp, tif, webp) in the folder", .0.display())]
    NoImages(PathBuf),
    #[error(transparent)]
    Read(#[from] ImageIoError),
    #[error("{}: {source}", path.display())]
    Upscale { path: PathBuf, source: UpscaleError },
}

/// Measures the bicubic baseline, and `model` where given, on every image directly in `dir`
/// (sorted by name), the LR images made from them as [`make_pair`] does.
pub fn evaluate_folder(
    dir: &Path,
    scale: usize,
    crop_border: usize,
    model: Option<&dyn Engine>,
    mut on_event: impl FnMut(EvalEvent),
) -> Result<FolderScores, EvalError> {
    let files = image_files(dir, false).map_err(|source| EvalError::List {
        dir: dir.to_path_buf(),
        source,
    })?;
    if files.is_empty() {
        return Err(EvalError::NoImages(dir.to_path_buf()));
    }
    let mut images = Vec::new();
    for (index, path) in files.iter().enumerate() {
        on_event(EvalEvent::Image {
            path,
            index,
            total: files.len(),
        });
        let (hr, lr) = make_pair(&load_rgb8(path)?, scale);
        let min_side = 2 * crop_border + 11;
        if hr.height < min_side || hr.width < min_side {
            on_event(EvalEvent::TooSmall {
                path,
                width: hr.width,
                height: hr.height,
            });
            continue;
        }
        let bicubic = Scores::measure(&hr, &bicubic_sr(&lr, scale), crop_border);
        let model = match model {
            Some(engine) => {
                let sr = upscale_u8(engine, &lr).map_err(|source| EvalError::Upscale {
                    path: path.clone(),
                    source,
                })?;
                Some(Scores::measure(&hr, &sr, crop_border))
            }
            None => None,
        };
        images.push(ImageScores {
            name: path.file_stem().unwrap_or_default().to_string_lossy().into_owned(),
            bicubic,
            model,
        });
    }
    let mean_bicubic = Scores::mean(&images.iter().map(|r| r.bicubic).collect::<Vec<_>>());
    let mean_model = model.map(|_| Scores::mean(&images.iter().filter_map(|r| r.model).collect::<Vec<_>>()));
    Ok(FolderScores {
        scale,
        crop_border,
        images,
        mean_bicubic,
        mean_model,
    })
}
