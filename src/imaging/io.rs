//! Reading and writing image files.

use super::Image;
use crate::fsutil;
use std::path::Path;

/// Image file errors, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageIoError {
    #[error("{path}: cannot read image: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: cannot write image: {reason}")]
    Write { path: String, reason: String },
}

/// Reads an image file as 8-bit planar RGB (greyscale and palette images become RGB, alpha is
/// dropped).
pub fn load_rgb8(path: &Path) -> Result<Image<u8>, ImageIoError> {
    let fail = |reason: String| ImageIoError::Read {
        path: path.display().to_string(),
        reason,
    };
    let decoded = image::ImageReader::open(path)
        .map_err(|e| fail(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| fail(e.to_string()))?
        .decode()
        .map_err(|e| fail(e.to_string()))?;
    Ok(from_rgb8(&decoded.to_rgb8()))
}

/// Interleaved RGB8 to planar.
pub fn from_rgb8(rgb: &image::RgbImage) -> Image<u8> {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let mut out = Image::zeros(3, h, w);
    for (i, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out.data[c * h * w + i] = px[c];
        }
    }
    out
}

/// Planar 8-bit RGB (or grey) to an interleaved RGB8 buffer.
pub fn to_rgb8(img: &Image<u8>) -> image::RgbImage {
    let (w, h) = (img.width, img.height);
    let plane = |c: usize| img.plane(if img.channels == 1 { 0 } else { c });
    image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        image::Rgb([plane(0)[i], plane(1)[i], plane(2)[i]])
    })
}

/// Writes an 8-bit RGB image atomically; the format follows the extension.
pub fn save_rgb8(path: &Path, img: &Image<u8>) -> Result<(), ImageIoError> {
    let fail = |reason: String| ImageIoError::Write {
        path: path.display().to_string(),
        reason,
    };
    let format = image::ImageFormat::from_path(path).map_err(|e| fail(e.to_string()))?;
    let rgb = to_rgb8(img);
    let mut bytes = std::io::Cursor::new(Vec::new());
    rgb.write_to(&mut bytes, format).map_err(|e| fail(e.to_string()))?;
    fsutil::write_atomic(path, bytes.get_ref()).map_err(|e| fail(e.to_string()))
}
