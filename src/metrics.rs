//! PSNR and SSIM as super-resolution papers compute them (BasicSR's `calculate_psnr` and
//! `calculate_ssim`): on 8-bit images, after cropping `crop_border` pixels from every side,
//! either on RGB or on the BT.601 luma Y; SSIM with an 11x11 Gaussian window (sigma 1.5) over
//! the valid region, averaged over channels.

use crate::imaging::Image;
use crate::imaging::color::{grey_to_rgb, rgb_to_y};

/// Which image representation a metric is computed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channels {
    Rgb,
    Y,
}

/// PSNR and SSIM of one image pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quality {
    pub psnr: f64,
    pub ssim: f64,
}

/// The two images on the 0..255 scale, cropped, in the requested representation.
fn prepare(a: &Image<u8>, b: &Image<u8>, crop_border: usize, channels: Channels) -> (Image<f64>, Image<f64>) {
    assert_eq!((a.height, a.width), (b.height, b.width), "metric: image sizes differ");
    let one = |img: &Image<u8>| {
        let rgb = grey_to_rgb(img).to_unit_f64();
        let img = match channels {
            Channels::Y => rgb_to_y(&rgb),
            Channels::Rgb => rgb.map(|v| v * 255.0),
        };
        let (h, w) = (img.height, img.width);
        assert!(
            h > 2 * crop_border && w > 2 * crop_border,
            "metric: crop border larger than the image"
        );
        img.crop(crop_border, crop_border, h - 2 * crop_border, w - 2 * crop_border)
    };
    (one(a), one(b))
}

/// Peak signal-to-noise ratio in dB (infinite for identical images).
pub fn psnr(a: &Image<u8>, b: &Image<u8>, crop_border: usize, channels: Channels) -> f64 {
    let (a, b) = prepare(a, b, crop_border, channels);
    psnr_f64(&a.data, &b.data, 255.0)
}

/// PSNR of two sample arrays with the given peak value.
pub fn psnr_f64(a: &[f64], b: &[f64], peak: f64) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (peak * peak / mse).log10()
    }
}

/// Structural similarity, mean over channels.
pub fn ssim(a: &Image<u8>, b: &Image<u8>, crop_border: usize, channels: Channels) -> f64 {
    let (a, b) = prepare(a, b, crop_border, channels);
    (0..a.channels)
        .map(|c| ssim_plane(a.plane(c), b.plane(c), a.height, a.width))
        .sum::<f64>()
        / a.channels as f64
}

/// Both metrics at once.
pub fn quality(a: &Image<u8>, b: &Image<u8>, crop_border: usize, channels: Channels) -> Quality {
    Quality {
        psnr: psnr(a, b, crop_border, channels),
        ssim: ssim(a, b, crop_border, channels),
    }
}

/// The normalised 11-tap Gaussian, sigma 1.5 (OpenCV's `getGaussianKernel(11, 1.5)`).
fn gaussian_window() -> [f64; 11] {
    let raw: [f64; 11] = std::array::from_fn(|i| {
        let t = i as f64 - 5.0;
        (-t * t / (2.0 * 1.5 * 1.5)).exp()
    });
    let sum: f64 = raw.iter().sum();
    raw.map(|v| v / sum)
}

/// Separable 11x11 Gaussian filter over the valid region: output (h-10) x (w-10).
fn filter_valid(x: &[f64], h: usize, w: usize) -> Vec<f64> {
    let g = gaussian_window();
    let ow = w - 10;
    let oh = h - 10;
    let mut rows = vec![0f64; h * ow];
    for y in 0..h {
        for ox in 0..ow {
            rows[y * ow + ox] = (0..11).map(|k| g[k] * x[y * w + ox + k]).sum();
        }
    }
    let mut out = vec![0f64; oh * ow];
    for oy in 0..oh {
        for ox in 0..ow {
            out[oy * ow + ox] = (0..11).map(|k| g[k] * rows[(oy + k) * ow + ox]).sum();
        }
    }
    out
}

/// SSIM of one plane on the 0..255 scale.
pub fn ssim_plane(a: &[f64], b: &[f64], h: usize, w: usize) -> f64 {
    assert!(h > 10 && w > 10, "SSIM needs planes larger than its 11x11 window");
    const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
    const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);
    let sq = |x: &[f64]| x.iter().map(|v| v * v).collect::<Vec<_>>();
    let ab: Vec<f64> = a.iter().zip(b).map(|(x, y)| x * y).collect();
    let (mu_a, mu_b) = (filter_valid(a, h, w), filter_valid(b, h, w));
    let (e_aa, e_bb, e_ab) = (
        filter_valid(&sq(a), h, w),
        filter_valid(&sq(b), h, w),
        filter_valid(&ab, h, w),
    );
    let n = mu_a.len();
    (0..n)
        .map(|i| {
            let (ma, mb) = (mu_a[i], mu_b[i]);
            let (va, vb, cov) = (e_aa[i] - ma * ma, e_bb[i] - mb * mb, e_ab[i] - ma * mb);
            ((2.0 * ma * mb + C1) * (2.0 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2))
        })
        .sum::<f64>()
        / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(h: usize, w: usize, c: usize) -> Image<u8> {
        let data = (0..c * h * w)
            .map(|i| ((i * 37 + (i / w) * 11) % 200 + 20) as u8)
            .collect();
        Image::new(c, h, w, data)
    }

    #[test]
    fn identical_images_have_infinite_psnr_and_unit_ssim() {
        let a = pattern(20, 24, 3);
        for ch in [Channels::Rgb, Channels::Y] {
            assert_eq!(psnr(&a, &a, 2, ch), f64::INFINITY);
            assert!((ssim(&a, &a, 2, ch) - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn a_constant_offset_gives_the_closed_form_psnr() {
        // An offset of 5 levels everywhere: MSE 25, PSNR = 10 log10(255^2 / 25) = 34.1514 dB.
        let a = pattern(16, 16, 3);
        let b = a.map(|v| v + 5);
        let expected = 10.0 * (255.0f64 * 255.0 / 25.0).log10();
        assert!((psnr(&a, &b, 0, Channels::Rgb) - expected).abs() < 1e-12);
        // On Y the offset is 5 * (65.481 + 128.553 + 24.966) / 255 = 5 * 219 / 255 levels.
        let dy = 5.0 * 219.0 / 255.0;
        let expected_y = 10.0 * (255.0f64 * 255.0 / (dy * dy)).log10();
        assert!((psnr(&a, &b, 0, Channels::Y) - expected_y).abs() < 1e-9);
    }

    #[test]
    fn known_noise_level_gives_the_expected_psnr() {
        // Alternating +-3 levels: MSE 9 exactly, PSNR = 20 log10(255 / 3) = 38.588 dB.
        let a = Image::new(1, 12, 12, vec![128u8; 144]);
        let b = Image::new(
            1,
            12,
            12,
            (0..144).map(|i| if i % 2 == 0 { 131 } else { 125 }).collect(),
        );
        assert!((psnr(&a, &b, 1, Channels::Rgb) - 20.0 * (255.0f64 / 3.0).log10()).abs() < 1e-12);
    }

    #[test]
    fn metrics_are_symmetric_and_in_range() {
        let a = pattern(30, 26, 3);
        let b = a.map(|v| v.wrapping_mul(3) / 2);
        for ch in [Channels::Rgb, Channels::Y] {
            assert_eq!(psnr(&a, &b, 3, ch), psnr(&b, &a, 3, ch));
            let s = ssim(&a, &b, 3, ch);
            assert!((s - ssim(&b, &a, 3, ch)).abs() < 1e-12);
            assert!((-1.0..1.0).contains(&s), "{s}");
        }
    }

    #[test]
    fn greyscale_equals_its_rgb_copy() {
        let a = pattern(24, 24, 1);
        let b = a.map(|v| v / 2 + 30);
        let (ga, gb) = (grey_to_rgb(&a), grey_to_rgb(&b));
        assert_eq!(psnr(&a, &b, 2, Channels::Y), psnr(&ga, &gb, 2, Channels::Y));
        assert_eq!(ssim(&a, &b, 2, Channels::Rgb), ssim(&ga, &gb, 2, Channels::Rgb));
    }
}
