//! Evaluation as SR papers do it, and as ../shared/reference/GOLDEN-RESIZE-METRICS.md fixes it:
//! HR cropped to a multiple of 2*scale (the network needs even LR sides), LR = bicubic(HR, 1/s)
//! rounded to 8 bit, SR clamped and rounded to 8 bit, metrics with crop border = scale.

use crate::imaging::Image;
use crate::imaging::resize;
use crate::metrics::{self, Channels, Quality};
use serde::Serialize;

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
