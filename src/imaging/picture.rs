//! Whole pictures as users hand them over: colour (grey or RGB) and alpha kept apart, the bit
//! depth remembered so that 16-bit input stays 16-bit, the EXIF orientation applied, and the ICC
//! profile carried to the output where the format allows.

use super::Image;
use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageEncoder, ImageFormat, ImageReader};
use std::io::Cursor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitDepth {
    Eight,
    Sixteen,
}

/// A decoded picture, samples in 0..1.
#[derive(Clone, Debug)]
pub struct Picture {
    /// One plane (grey) or three (RGB).
    pub color: Image<f32>,
    pub alpha: Option<Image<f32>>,
    pub depth: BitDepth,
    pub icc: Option<Vec<u8>>,
    /// The EXIF block, its orientation reset to "upright" once applied to the pixels.
    pub exif: Option<Vec<u8>>,
}

/// Limits on what is decoded, checked from the header before the pixels are allocated.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        // 8K UHD and a margin: an upscaler input beyond this is almost surely a mistake or a bomb.
        Self { max_pixels: 50_000_000 }
    }
}

/// Output encoding choices.
#[derive(Clone, Copy, Debug)]
pub struct EncodeOptions {
    pub format: ImageFormat,
    /// JPEG and WebP quality 1..=100; WebP is written losslessly at 100.
    pub quality: u8,
}

/// The formats this tool reads and writes.
pub fn supported_format(format: ImageFormat) -> bool {
    matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Bmp | ImageFormat::Tiff
    )
}

/// Decodes a picture from bytes.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<Picture, String> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let format = reader.format().ok_or("unknown image format")?;
    if !supported_format(format) {
        return Err(format!(
            "{format:?} images are not supported (PNG, JPEG, WebP, BMP, TIFF are)"
        ));
    }
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let (w, h) = decoder.dimensions();
    let pixels = w as u64 * h as u64;
    if pixels > limits.max_pixels {
        return Err(format!(
            "{w}x{h} is {:.1} megapixels, above the limit of {:.1} (raise it with --max-megapixels)",
            pixels as f64 / 1e6,
            limits.max_pixels as f64 / 1e6
        ));
    }
    if w == 0 || h == 0 {
        return Err("the image is empty".into());
    }
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(pixels * 16 + (64 << 20));
    decoder.set_limits(image_limits).map_err(|e| e.to_string())?;
    let icc = decoder.icc_profile().ok().flatten();
    let mut exif = decoder.exif_metadata().ok().flatten();
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    if let Some(chunk) = exif.as_mut() {
        let _ = image::metadata::Orientation::remove_from_exif_chunk(chunk);
    }
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    img.apply_orientation(orientation);
    let mut picture = from_dynamic(&img, icc);
    picture.exif = exif;
    Ok(picture)
}

fn planes_from<T: Copy>(
    data: &[T],
    channels: usize,
    w: usize,
    h: usize,
    pick: &[usize],
    f: impl Fn(T) -> f32,
) -> Image<f32> {
    let mut out = Image::zeros(pick.len(), h, w);
    for (p, &c) in pick.iter().enumerate() {
        let plane = out.plane_mut(p);
        for (i, v) in plane.iter_mut().enumerate() {
            *v = f(data[i * channels + c]);
        }
    }
    out
}

fn from_dynamic(img: &DynamicImage, icc: Option<Vec<u8>>) -> Picture {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let color_type = img.color();
    let sixteen = color_type.bytes_per_pixel() / color_type.channel_count() >= 2;
    let grey = !color_type.has_color();
    let has_alpha = color_type.has_alpha();
    let (color_idx, alpha_idx): (&[usize], usize) = match (grey, has_alpha) {
        (true, false) => (&[0], 0),
        (true, true) => (&[0], 1),
        (false, false) => (&[0, 1, 2], 0),
        (false, true) => (&[0, 1, 2], 3),
    };
    let channels = if grey { 1 } else { 3 } + usize::from(has_alpha);
    let (color, alpha) = if sixteen {
        let buf: Vec<u16> = match (grey, has_alpha) {
            (true, false) => img.to_luma16().into_raw(),
            (true, true) => img.to_luma_alpha16().into_raw(),
            (false, false) => img.to_rgb16().into_raw(),
            (false, true) => img.to_rgba16().into_raw(),
        };
        let f = |v: u16| v as f32 / 65535.0;
        (
            planes_from(&buf, channels, w, h, color_idx, f),
            has_alpha.then(|| planes_from(&buf, channels, w, h, &[alpha_idx], f)),
        )
    } else {
        let buf: Vec<u8> = match (grey, has_alpha) {
            (true, false) => img.to_luma8().into_raw(),
            (true, true) => img.to_luma_alpha8().into_raw(),
            (false, false) => img.to_rgb8().into_raw(),
            (false, true) => img.to_rgba8().into_raw(),
        };
        let f = |v: u8| v as f32 / 255.0;
        (
            planes_from(&buf, channels, w, h, color_idx, f),
            has_alpha.then(|| planes_from(&buf, channels, w, h, &[alpha_idx], f)),
        )
    };
    Picture {
        color,
        alpha,
        depth: if sixteen { BitDepth::Sixteen } else { BitDepth::Eight },
        icc,
        exif: None,
    }
}

/// Rounds a 0..1 sample to an integer level, clamping first.
fn level(v: f32, max: f32) -> f32 {
    (v.clamp(0.0, 1.0) * max).round()
}

/// Encodes a picture. Formats that cannot hold something lose it as little as possible: JPEG
/// and BMP hold 8 bits and no alpha in JPEG; WebP is 8-bit, lossy below quality 100 (libwebp)
/// and lossless at 100.
pub fn encode(picture: &Picture, options: EncodeOptions) -> Result<Vec<u8>, String> {
    let format = options.format;
    let keep_alpha = picture.alpha.is_some() && format != ImageFormat::Jpeg;
    let sixteen = picture.depth == BitDepth::Sixteen && matches!(format, ImageFormat::Png | ImageFormat::Tiff);
    // WebP (image-webp) writes RGB(A) only.
    let grey = picture.color.channels == 1 && format != ImageFormat::WebP;
    let (w, h) = (picture.color.width, picture.color.height);
    let mut planes: Vec<&[f32]> = Vec::new();
    for c in 0..if grey { 1 } else { 3 } {
        planes.push(picture.color.plane(if picture.color.channels == 1 { 0 } else { c }));
    }
    if keep_alpha {
        planes.push(picture.alpha.as_ref().expect("checked").plane(0));
    }
    let n = planes.len();
    let color_type = match (grey, keep_alpha, sixteen) {
        (true, false, false) => ExtendedColorType::L8,
        (true, true, false) => ExtendedColorType::La8,
        (false, false, false) => ExtendedColorType::Rgb8,
        (false, true, false) => ExtendedColorType::Rgba8,
        (true, false, true) => ExtendedColorType::L16,
        (true, true, true) => ExtendedColorType::La16,
        (false, false, true) => ExtendedColorType::Rgb16,
        (false, true, true) => ExtendedColorType::Rgba16,
    };
    let mut raw = Vec::with_capacity(w * h * n * if sixteen { 2 } else { 1 });
    for i in 0..w * h {
        for p in &planes {
            if sixteen {
                raw.extend_from_slice(&(level(p[i], 65535.0) as u16).to_ne_bytes());
            } else {
                raw.push(level(p[i], 255.0) as u8);
            }
        }
    }
    let mut out = Cursor::new(Vec::new());
    let (w32, h32) = (w as u32, h as u32);
    // Metadata goes where the format holds it; an encoder that cannot take it drops it.
    fn with_metadata<E: ImageEncoder>(mut enc: E, picture: &Picture) -> E {
        if let Some(icc) = &picture.icc {
            let _ = enc.set_icc_profile(icc.clone());
        }
        if let Some(exif) = &picture.exif {
            let _ = enc.set_exif_metadata(exif.clone());
        }
        enc
    }
    let result = match format {
        ImageFormat::Png => with_metadata(image::codecs::png::PngEncoder::new(&mut out), picture)
            .write_image(&raw, w32, h32, color_type),
        ImageFormat::Jpeg => {
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, options.quality.clamp(1, 100));
            with_metadata(enc, picture).write_image(&raw, w32, h32, color_type)
        }
        ImageFormat::WebP if options.quality < 100 => {
            // Lossy WebP through libwebp (image-webp writes lossless only).
            let encoder = match color_type {
                ExtendedColorType::Rgba8 => webp::Encoder::from_rgba(&raw, w32, h32),
                _ => webp::Encoder::from_rgb(&raw, w32, h32),
            };
            let encoded = encoder.encode(options.quality as f32);
            out.get_mut().extend_from_slice(&encoded);
            Ok(())
        }
        ImageFormat::WebP => with_metadata(image::codecs::webp::WebPEncoder::new_lossless(&mut out), picture)
            .write_image(&raw, w32, h32, color_type),
        ImageFormat::Bmp => image::codecs::bmp::BmpEncoder::new(&mut out).write_image(&raw, w32, h32, color_type),
        ImageFormat::Tiff => image::codecs::tiff::TiffEncoder::new(&mut out).write_image(&raw, w32, h32, color_type),
        other => return Err(format!("cannot write {other:?} images")),
    };
    result.map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(channels: usize, h: usize, w: usize) -> Image<f32> {
        Image::new(
            channels,
            h,
            w,
            (0..channels * h * w).map(|i| (i % 97) as f32 / 96.0).collect(),
        )
    }

    fn png_bytes(pic: &Picture) -> Vec<u8> {
        encode(
            pic,
            EncodeOptions {
                format: ImageFormat::Png,
                quality: 90,
            },
        )
        .unwrap()
    }

    #[test]
    fn sixteen_bit_png_with_alpha_round_trips_exactly() {
        let color = gradient(3, 5, 7).map(|v| (v * 65535.0).round() / 65535.0);
        let alpha = gradient(1, 5, 7).map(|v| (v * 65535.0).round() / 65535.0);
        let pic = Picture {
            color: color.clone(),
            alpha: Some(alpha.clone()),
            depth: BitDepth::Sixteen,
            icc: None,
            exif: None,
        };
        let bytes = png_bytes(&pic);
        let back = decode(&bytes, DecodeLimits::default()).unwrap();
        assert_eq!(back.depth, BitDepth::Sixteen);
        assert_eq!(back.color, color);
        assert_eq!(back.alpha.unwrap(), alpha);
    }

    #[test]
    fn grey_stays_grey_and_the_icc_profile_is_kept() {
        let color = gradient(1, 4, 6).map(|v| (v * 255.0).round() / 255.0);
        let icc = b"fake icc profile bytes".to_vec();
        let pic = Picture {
            color: color.clone(),
            alpha: None,
            depth: BitDepth::Eight,
            icc: Some(icc.clone()),
            exif: None,
        };
        let bytes = png_bytes(&pic);
        let back = decode(&bytes, DecodeLimits::default()).unwrap();
        assert_eq!(back.color.channels, 1);
        assert_eq!(back.color, color);
        assert_eq!(back.icc, Some(icc));
    }

    #[test]
    fn oversized_images_are_refused_from_the_header() {
        let pic = Picture {
            color: gradient(3, 100, 100),
            alpha: None,
            depth: BitDepth::Eight,
            icc: None,
            exif: None,
        };
        let bytes = png_bytes(&pic);
        let err = decode(&bytes, DecodeLimits { max_pixels: 9_999 }).unwrap_err();
        assert!(err.contains("--max-megapixels"), "{err}");
    }
}
