//! Bicubic resizing compatible with MATLAB's `imresize` (and BasicSR's re-implementation,
//! which SR papers use to make LR images): cubic kernel with a = -0.5, kernel widened by 1/scale
//! when shrinking (antialiasing), symmetric ("mirror with the edge repeated") borders, and the
//! height resized before the width. Computed in f64.

use super::Image;

/// The cubic convolution kernel (Keys, a = -0.5).
pub fn cubic(x: f64) -> f64 {
    let ax = x.abs();
    let ax2 = ax * ax;
    let ax3 = ax2 * ax;
    if ax <= 1.0 {
        1.5 * ax3 - 2.5 * ax2 + 1.0
    } else if ax <= 2.0 {
        -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    } else {
        0.0
    }
}

/// For each output position, the input indices (already mirrored into range) and weights.
#[derive(Clone, Debug)]
pub struct Contributions {
    pub taps: usize,
    pub indices: Vec<usize>,
    pub weights: Vec<f64>,
}

/// The 1-D resampling of `in_len` samples to `out_len` at `scale` (= out / in), as MATLAB's
/// `contributions`.
pub fn contributions(in_len: usize, out_len: usize, scale: f64) -> Contributions {
    let shrink = scale < 1.0;
    let kernel_width = if shrink { 4.0 / scale } else { 4.0 };
    let taps = kernel_width.ceil() as usize + 2;
    let mut indices = Vec::with_capacity(out_len * taps);
    let mut weights = Vec::with_capacity(out_len * taps);
    for x in 1..=out_len {
        // Output sample x (1-based) maps to input coordinate u.
        let u = x as f64 / scale + 0.5 * (1.0 - 1.0 / scale);
        let left = (u - kernel_width / 2.0).floor() as i64;
        let row: Vec<f64> = (0..taps as i64)
            .map(|j| {
                let d = u - (left + j) as f64;
                if shrink { scale * cubic(d * scale) } else { cubic(d) }
            })
            .collect();
        let sum: f64 = row.iter().sum();
        for j in 0..taps as i64 {
            indices.push(mirror(left + j, in_len));
            weights.push(row[j as usize] / sum);
        }
    }
    Contributions { taps, indices, weights }
}

/// 1-based index to 0-based with symmetric padding: ... 2 1 | 1 2 ... n | n n-1 ...
fn mirror(index: i64, len: usize) -> usize {
    let n = len as i64;
    let period = 2 * n;
    let i = (index - 1).rem_euclid(period);
    (if i < n { i } else { period - 1 - i }) as usize
}

/// Resizes every plane of `image` by `scale` (output sides `ceil(side * scale)`, as MATLAB).
pub fn imresize(image: &Image<f64>, scale: f64) -> Image<f64> {
    let out_h = (image.height as f64 * scale).ceil() as usize;
    let out_w = (image.width as f64 * scale).ceil() as usize;
    imresize_to(image, out_h, out_w, scale)
}

/// Resizes to an explicit size with the given scale (MATLAB's `imresize(img, scale)` when
/// `out = ceil(in * scale)`).
pub fn imresize_to(image: &Image<f64>, out_h: usize, out_w: usize, scale: f64) -> Image<f64> {
    let (h, w) = (image.height, image.width);
    let rows = contributions(h, out_h, scale);
    let cols = contributions(w, out_w, scale);
    let mut out = Image::zeros(image.channels, out_h, out_w);
    let mut tmp = vec![0f64; out_h * w];
    for c in 0..image.channels {
        let src = image.plane(c);
        // Height first.
        for oy in 0..out_h {
            let (idx, wts) = (
                &rows.indices[oy * rows.taps..][..rows.taps],
                &rows.weights[oy * rows.taps..][..rows.taps],
            );
            let dst = &mut tmp[oy * w..(oy + 1) * w];
            dst.fill(0.0);
            for (&iy, &wt) in idx.iter().zip(wts) {
                if wt == 0.0 {
                    continue;
                }
                for (d, s) in dst.iter_mut().zip(&src[iy * w..(iy + 1) * w]) {
                    *d += wt * s;
                }
            }
        }
        let dst = out.plane_mut(c);
        for oy in 0..out_h {
            let line = &tmp[oy * w..(oy + 1) * w];
            for ox in 0..out_w {
                let (idx, wts) = (
                    &cols.indices[ox * cols.taps..][..cols.taps],
                    &cols.weights[ox * cols.taps..][..cols.taps],
                );
                dst[oy * out_w + ox] = idx.iter().zip(wts).map(|(&ix, &wt)| wt * line[ix]).sum();
            }
        }
    }
    out
}

/// The SR convention for an LR image: HR (already cropped to a multiple of the scale) shrunk
/// by 1/scale.
pub fn downscale(hr: &Image<f64>, scale: usize) -> Image<f64> {
    imresize_to(hr, hr.height / scale, hr.width / scale, 1.0 / scale as f64)
}

/// Bicubic enlargement by an integer factor.
pub fn upscale(lr: &Image<f64>, scale: usize) -> Image<f64> {
    imresize_to(lr, lr.height * scale, lr.width * scale, scale as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_values() {
        assert_eq!(cubic(0.0), 1.0);
        assert_eq!(cubic(1.0), 0.0);
        assert_eq!(cubic(2.0), 0.0);
        assert_eq!(cubic(0.5), 0.5625); // 1.5/8 - 2.5/4 + 1
        assert_eq!(cubic(1.5), -0.0625); // -0.5*3.375 + 2.5*2.25 - 6 + 2
        assert_eq!(cubic(-1.5), cubic(1.5));
    }

    #[test]
    fn weights_sum_to_one_and_indices_mirror() {
        for (n, m, s) in [(10, 20, 2.0), (10, 30, 3.0), (30, 10, 1.0 / 3.0), (8, 4, 0.5)] {
            let c = contributions(n, m, s);
            for row in c.weights.chunks(c.taps) {
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
            assert!(c.indices.iter().all(|&i| i < n));
        }
        assert_eq!([0, -1, -2, 11, 12].map(|i| mirror(i, 10)), [0, 1, 2, 9, 8]);
    }

    #[test]
    fn x2_upscale_of_a_ramp_uses_the_quarter_phase_weights() {
        // Upscaling by 2 puts output sample x (1-based) at u = x/2 + 1/4; for x = 3, u = 1.75
        // and the input samples 0, 1, 2, 3 lie at distances 1.75, 0.75, -0.25, -1.25, with
        // weights cubic(d) = -0.0234375, 0.2265625, 0.8671875, -0.0703125 (sum 1). Inside the
        // image a linear ramp stays linear.
        let c = contributions(8, 16, 2.0);
        let expected = [-0.0234375, 0.2265625, 0.8671875, -0.0703125];
        let row = &c.weights[2 * c.taps..3 * c.taps];
        let nonzero: Vec<f64> = row.iter().copied().filter(|w| w.abs() > 1e-15).collect();
        assert_eq!(nonzero, expected);
        let ramp = Image::new(1, 1, 8, (0..8).map(|v| v as f64).collect());
        let up = imresize_to(&ramp, 1, 16, 2.0);
        for x in 4..12 {
            assert!(
                (up.data[x] - (x as f64 / 2.0 - 0.25)).abs() < 1e-12,
                "{x}: {}",
                up.data[x]
            );
        }
    }

    #[test]
    fn constant_images_stay_constant_at_every_scale() {
        let flat = Image::new(2, 12, 18, vec![0.37; 2 * 12 * 18]);
        for s in [2, 3, 4] {
            for out in [downscale(&flat, s), upscale(&flat, s)] {
                assert!(out.data.iter().all(|v| (v - 0.37).abs() < 1e-12));
            }
        }
    }
}
