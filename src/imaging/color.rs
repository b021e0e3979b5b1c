//! Colour conversions used by evaluation.

use super::Image;

/// BT.601 studio-range luma per unit of R, G and B (Y = 16 + these . RGB on the 0..255 scale).
pub const LUMA_WEIGHTS: [f64; 3] = [65.481, 128.553, 24.966];

/// Luma as MATLAB's `rgb2ycbcr` (ITU-R BT.601, studio range) on 0..1 RGB, returned on the
/// 0..255 scale (16..235), unrounded, as SR papers compute Y-PSNR. A single-channel image is
/// taken as grey (R = G = B).
pub fn rgb_to_y(image: &Image<f64>) -> Image<f64> {
    let (h, w) = (image.height, image.width);
    let (r, g, b) = match image.channels {
        1 => (image.plane(0), image.plane(0), image.plane(0)),
        3 => (image.plane(0), image.plane(1), image.plane(2)),
        n => panic!("rgb_to_y: {n} channels"),
    };
    let data = (0..h * w)
        .map(|i| 16.0 + LUMA_WEIGHTS[0] * r[i] + LUMA_WEIGHTS[1] * g[i] + LUMA_WEIGHTS[2] * b[i])
        .collect();
    Image::new(1, h, w, data)
}

/// A greyscale image as RGB (three equal planes); other images unchanged.
pub fn grey_to_rgb<T: Copy + Default>(image: &Image<T>) -> std::borrow::Cow<'_, Image<T>> {
    if image.channels != 1 {
        return std::borrow::Cow::Borrowed(image);
    }
    let plane = image.plane(0);
    let data = [plane, plane, plane].concat();
    std::borrow::Cow::Owned(Image::new(3, image.height, image.width, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_and_white_map_to_the_studio_range() {
        let img = Image::new(3, 1, 2, vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        let y = rgb_to_y(&img);
        assert!((y.data[0] - 16.0).abs() < 1e-12);
        assert!((y.data[1] - 235.0).abs() < 1e-12);
    }
}
