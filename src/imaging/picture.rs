//! Whole pictures as users hand them over: colour (grey or RGB) and alpha kept apart, the bit
//! depth remembered so that 16-bit input stays 16-bit, the EXIF orientation applied, and the ICC
//! profile carried to the output where the format allows.

use super::Image;
use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageEncoder, ImageFormat, ImageReader};
use rayon::prelude::*;
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

/// Why a picture could not be decoded, encoded or built from samples.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    #[error("unknown image format")]
    UnknownFormat,
    #[error("{0:?} images are not supported (PNG, JPEG, WebP, BMP, TIFF are)")]
    Unsupported(ImageFormat),
    #[error(
        "{width}x{height} is {:.1} megapixels, above the limit of {:.1} (raise it with --max-megapixels)",
        *width as f64 * *height as f64 / 1e6,
        *max_pixels as f64 / 1e6
    )]
    TooLarge { width: u32, height: u32, max_pixels: u64 },
    #[error("the image is empty")]
    Empty,
    #[error("{0}")]
    Codec(#[from] image::ImageError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0} channels: pictures have 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGB, alpha)")]
    Channels(usize),
    #[error("{len} samples are not {height}x{width}x{channels}")]
    SampleCount {
        len: usize,
        height: usize,
        width: usize,
        channels: usize,
    },
}

/// Samples in interleaved (height, width, channel) order, as NumPy, OpenCV and image buffers
/// hold them: 8-bit, 16-bit, or floating point in 0..1.
#[derive(Clone, Debug, PartialEq)]
pub enum Interleaved {
    U8(Vec<u8>),
    U16(Vec<u16>),
    F32(Vec<f32>),
}

/// The sample type of [`Interleaved`] samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleType {
    U8,
    U16,
    F32,
}

impl Interleaved {
    pub fn sample_type(&self) -> SampleType {
        match self {
            Self::U8(_) => SampleType::U8,
            Self::U16(_) => SampleType::U16,
            Self::F32(_) => SampleType::F32,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::F32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Picture {
    /// A picture from interleaved samples with 1 (grey), 2 (grey and alpha), 3 (RGB) or 4
    /// (RGB and alpha) channels, scaled to 0..1 exactly as a decoded file of that depth is;
    /// floating-point samples are taken as they are.
    pub fn from_interleaved(
        samples: &Interleaved,
        height: usize,
        width: usize,
        channels: usize,
    ) -> Result<Self, PictureError> {
        if !(1..=4).contains(&channels) {
            return Err(PictureError::Channels(channels));
        }
        if samples.len() != height * width * channels || height == 0 || width == 0 {
            return Err(PictureError::SampleCount {
                len: samples.len(),
                height,
                width,
                channels,
            });
        }
        let (color_idx, alpha_idx): (&[usize], Option<usize>) = match channels {
            1 => (&[0], None),
            2 => (&[0], Some(1)),
            3 => (&[0, 1, 2], None),
            _ => (&[0, 1, 2], Some(3)),
        };
        fn split<T: Copy>(
            data: &[T],
            channels: usize,
            (w, h): (usize, usize),
            (color_idx, alpha_idx): (&[usize], Option<usize>),
            f: impl Fn(T) -> f32 + Copy,
        ) -> (Image<f32>, Option<Image<f32>>) {
            (
                planes_from(data, channels, w, h, color_idx, f),
                alpha_idx.map(|a| planes_from(data, channels, w, h, &[a], f)),
            )
        }
        let layout = (color_idx, alpha_idx);
        let ((color, alpha), depth) = match samples {
            Interleaved::U8(v) if channels == 3 => {
                let mut color = Image::zeros(0, 0, 0);
                rgb8_to_planes(v, height, width, &mut color);
                ((color, None), BitDepth::Eight)
            }
            Interleaved::U8(v) => (split(v, channels, (width, height), layout, unit_u8), BitDepth::Eight),
            Interleaved::U16(v) => (split(v, channels, (width, height), layout, unit_u16), BitDepth::Sixteen),
            Interleaved::F32(v) => (split(v, channels, (width, height), layout, |x| x), BitDepth::Sixteen),
        };
        Ok(Self {
            color,
            alpha,
            depth,
            icc: None,
            exif: None,
        })
    }

    /// The samples interleaved, colour then alpha, as [`interleave_planes`] makes them.
    pub fn interleaved(&self, to: SampleType) -> Interleaved {
        interleave_planes(&self.color, self.alpha.as_ref(), to)
    }

    /// Channels per pixel of the interleaved samples: colour, then alpha where there is one.
    pub fn channel_count(&self) -> usize {
        self.color.channels + usize::from(self.alpha.is_some())
    }
}

/// The colour planes, then alpha's.
fn planes_of<'a>(color: &'a Image<f32>, alpha: Option<&'a Image<f32>>) -> Vec<&'a [f32]> {
    (0..color.channels)
        .map(|c| color.plane(c))
        .chain(alpha.map(|a| a.plane(0)))
        .collect()
}

/// [`interleave_planes`] to 8 bits.
pub fn interleave_u8(color: &Image<f32>, alpha: Option<&Image<f32>>) -> Vec<u8> {
    interleave(&planes_of(color, alpha), color.width * color.height, |v| {
        level(v, 255.0) as u8
    })
}

/// Colour planes (and alpha) interleaved pixel by pixel: rounded to 8 or 16 bits exactly as
/// [`encode`] writes them, or as floating point clamped to 0..1.
pub fn interleave_planes(color: &Image<f32>, alpha: Option<&Image<f32>>, to: SampleType) -> Interleaved {
    let planes = planes_of(color, alpha);
    let pixels = color.width * color.height;
    match to {
        SampleType::U8 => Interleaved::U8(interleave_u8(color, alpha)),
        SampleType::U16 => Interleaved::U16(interleave(&planes, pixels, |v| level(v, 65535.0) as u16)),
        SampleType::F32 => Interleaved::F32(interleave(&planes, pixels, |v| v.clamp(0.0, 1.0))),
    }
}

/// The first `pixels` samples of each plane, pixel by pixel, through `f`, on every core in
/// chunks of pixels (a 4K frame is 25 million samples).
fn interleave<T: Send + Copy + Default>(planes: &[&[f32]], pixels: usize, f: impl Fn(f32) -> T + Sync) -> Vec<T> {
    const CHUNK: usize = 1 << 14;
    let n = planes.len();
    let mut out = vec![T::default(); pixels * n];
    out.par_chunks_mut(CHUNK * n.max(1))
        .enumerate()
        .for_each(|(chunk, dst)| {
            let range = chunk * CHUNK..chunk * CHUNK + dst.len() / n;
            // Sliced to the chunk first, so the loops below have no bounds checks; RGB (nearly
            // every frame) has a loop of its own that LLVM vectorises.
            if let [r, g, b] = planes {
                let (r, g, b) = (&r[range.clone()], &g[range.clone()], &b[range]);
                for (((pixel, &r), &g), &b) in dst.chunks_exact_mut(3).zip(r).zip(g).zip(b) {
                    pixel.copy_from_slice(&[f(r), f(g), f(b)]);
                }
            } else {
                let planes: Vec<&[f32]> = planes.iter().map(|p| &p[range.clone()]).collect();
                for (i, pixel) in dst.chunks_exact_mut(n).enumerate() {
                    for (d, p) in pixel.iter_mut().zip(&planes) {
                        *d = f(p[i]);
                    }
                }
            }
        });
    out
}

/// Interleaved 8-bit RGB (`height` rows of `3 * width` samples) into the planes of `out`,
/// scaled to 0..1 as [`Picture::from_interleaved`] scales them; `out` is reallocated only when
/// its size differs (callers with a stream of frames keep it), and rows convert in parallel.
pub fn rgb8_to_planes(samples: &[u8], height: usize, width: usize, out: &mut Image<f32>) {
    assert_eq!(samples.len(), height * width * 3, "3 samples a pixel");
    if (out.channels, out.height, out.width) != (3, height, width) {
        *out = Image::zeros(3, height, width);
    }
    let (red, rest) = out.data.split_at_mut(height * width);
    let (green, blue) = rest.split_at_mut(height * width);
    let planes = red
        .par_chunks_mut(width)
        .zip(green.par_chunks_mut(width))
        .zip(blue.par_chunks_mut(width));
    planes
        .zip(samples.par_chunks(3 * width))
        .for_each(|(((red, green), blue), row)| {
            for (x, pixel) in row.chunks_exact(3).enumerate() {
                (red[x], green[x], blue[x]) = (unit_u8(pixel[0]), unit_u8(pixel[1]), unit_u8(pixel[2]));
            }
        });
}

/// An 8-bit sample scaled to 0..1, as every 8-bit input is (files, arrays, the engine's 8-bit
/// input).
#[inline(always)]
pub fn unit_u8(v: u8) -> f32 {
    v as f32 / 255.0
}

fn unit_u16(v: u16) -> f32 {
    v as f32 / 65535.0
}

/// The formats this tool reads and writes.
pub fn supported_format(format: ImageFormat) -> bool {
    matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Bmp | ImageFormat::Tiff
    )
}

/// Decodes a picture from bytes.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<Picture, PictureError> {
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    let format = reader.format().ok_or(PictureError::UnknownFormat)?;
    if !supported_format(format) {
        return Err(PictureError::Unsupported(format));
    }
    let mut decoder = reader.into_decoder()?;
    let (w, h) = decoder.dimensions();
    let pixels = w as u64 * h as u64;
    if pixels > limits.max_pixels {
        return Err(PictureError::TooLarge {
            width: w,
            height: h,
            max_pixels: limits.max_pixels,
        });
    }
    if w == 0 || h == 0 {
        return Err(PictureError::Empty);
    }
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(pixels * 16 + (64 << 20));
    decoder.set_limits(image_limits)?;
    let icc = decoder.icc_profile().ok().flatten();
    let mut exif = decoder.exif_metadata().ok().flatten();
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    if let Some(chunk) = exif.as_mut() {
        let _ = image::metadata::Orientation::remove_from_exif_chunk(chunk);
    }
    let mut img = DynamicImage::from_decoder(decoder)?;
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
        (
            planes_from(&buf, channels, w, h, color_idx, unit_u16),
            has_alpha.then(|| planes_from(&buf, channels, w, h, &[alpha_idx], unit_u16)),
        )
    } else {
        let buf: Vec<u8> = match (grey, has_alpha) {
            (true, false) => img.to_luma8().into_raw(),
            (true, true) => img.to_luma_alpha8().into_raw(),
            (false, false) => img.to_rgb8().into_raw(),
            (false, true) => img.to_rgba8().into_raw(),
        };
        (
            planes_from(&buf, channels, w, h, color_idx, unit_u8),
            has_alpha.then(|| planes_from(&buf, channels, w, h, &[alpha_idx], unit_u8)),
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

/// Rounds a 0..1 sample to an integer level, clamping first (NaN to 0): `(v * max).round()`,
/// exactly, without `f32::round`, which is a libm call on baseline x86-64 and the slowest part
/// of writing a 4K frame. Below 2^23 the fraction `x - trunc(x)` is exact, so comparing it with
/// one half rounds halves away from zero as `round` does.
#[inline(always)]
pub fn level(v: f32, max: f32) -> u32 {
    debug_assert!((1.0..8_388_608.0).contains(&max));
    // `max`/`min` rather than `clamp`: they take NaN to 0 where `clamp` keeps it.
    #[allow(clippy::manual_clamp)]
    let x = v.max(0.0).min(1.0) * max;
    // SAFETY: x is finite and in 0..=max < 2^23, so it fits a u32 (a saturating `as` costs
    // a compare and two moves per sample in the 8-bit store).
    let whole: u32 = unsafe { x.to_int_unchecked() };
    whole + u32::from(x - whole as f32 >= 0.5)
}

/// Encodes a picture. Formats that cannot hold something lose it as little as possible: JPEG
/// and BMP hold 8 bits and no alpha in JPEG; WebP is 8-bit, lossy below quality 100 (libwebp)
/// and lossless at 100.
pub fn encode(picture: &Picture, options: EncodeOptions) -> Result<Vec<u8>, PictureError> {
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
    let raw: Vec<u8> = if sixteen {
        interleave(&planes, w * h, |v| level(v, 65535.0) as u16)
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect()
    } else {
        interleave(&planes, w * h, |v| level(v, 255.0) as u8)
    };
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
        other => return Err(PictureError::Unsupported(other)),
    };
    result?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb8_planes_are_the_generic_conversion_and_reuse_the_buffer() {
        let (h, w) = (5, 7);
        let samples: Vec<u8> = (0..h * w * 3).map(|i| (i * 37 % 256) as u8).collect();
        let want = planes_from(&samples, 3, w, h, &[0, 1, 2], unit_u8);
        let mut out = Image::zeros(3, h, w);
        let before = out.data.as_ptr();
        rgb8_to_planes(&samples, h, w, &mut out);
        assert_eq!((out.channels, out.height, out.width), (3, h, w));
        assert_eq!(out.data, want.data);
        assert_eq!(out.data.as_ptr(), before, "the buffer of the right size is kept");
        rgb8_to_planes(&samples[..3 * w], 1, w, &mut out);
        assert_eq!(
            out.data,
            want.data[..w]
                .iter()
                .chain(&want.data[h * w..][..w])
                .chain(&want.data[2 * h * w..][..w])
                .copied()
                .collect::<Vec<_>>()
        );
    }

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
        assert!(
            matches!(
                err,
                PictureError::TooLarge {
                    width: 100,
                    height: 100,
                    max_pixels: 9_999
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn level_rounds_as_f32_round_does() {
        // Every f32 from 0 up to 1 at the spacing of 2^-24, and each one's neighbours (the
        // halfway points of 255 and 65535 levels among them), for both depths.
        for i in 0..=(1u32 << 24) {
            let base = i as f32 / (1u32 << 24) as f32;
            for v in [
                base,
                f32::from_bits(base.to_bits() + 1),
                f32::from_bits(base.to_bits().max(1) - 1),
            ] {
                for max in [255.0f32, 65535.0] {
                    assert_eq!(level(v, max), (v.clamp(0.0, 1.0) * max).round() as u32, "{v} at {max}");
                }
            }
        }
        assert_eq!(
            (level(f32::NAN, 255.0), level(-1.0, 255.0), level(2.0, 255.0)),
            (0, 0, 255)
        );
    }

    #[test]
    fn interleaved_samples_round_trip_as_files_do() {
        // 2x3 RGBA, 8-bit: the planes are split, scaled as a decoded file's, and put back.
        let samples: Vec<u8> = (0..24).map(|i| (i * 11) as u8).collect();
        let pic = Picture::from_interleaved(&Interleaved::U8(samples.clone()), 2, 3, 4).unwrap();
        assert_eq!(
            (pic.color.channels, pic.alpha.is_some(), pic.depth),
            (3, true, BitDepth::Eight)
        );
        assert_eq!(pic.color.plane(1)[0], 11.0 / 255.0);
        assert_eq!(pic.alpha.as_ref().unwrap().plane(0)[1], 77.0 / 255.0);
        assert_eq!(pic.interleaved(SampleType::U8), Interleaved::U8(samples.clone()));
        assert_eq!(pic.channel_count(), 4);
        // The same pixels through a PNG: the bytes of a file give the same picture.
        let decoded = decode(&png_bytes(&pic), DecodeLimits::default()).unwrap();
        assert_eq!(decoded.interleaved(SampleType::U8), Interleaved::U8(samples));
        let grey16 = Interleaved::U16(vec![0, 65535, 257, 1000]);
        let pic = Picture::from_interleaved(&grey16, 2, 2, 1).unwrap();
        assert_eq!(pic.interleaved(SampleType::U16), grey16);
        let unit = Interleaved::F32(vec![-0.5, 0.25, 1.5, f32::NAN]);
        let pic = Picture::from_interleaved(&unit, 1, 4, 1).unwrap();
        assert_eq!(pic.interleaved(SampleType::F32).len(), 4);
        assert_eq!(pic.interleaved(SampleType::U8), Interleaved::U8(vec![0, 64, 255, 0]));
        assert!(matches!(
            Picture::from_interleaved(&grey16, 2, 3, 1),
            Err(PictureError::SampleCount { len: 4, .. })
        ));
        assert!(matches!(
            Picture::from_interleaved(&grey16, 1, 1, 5),
            Err(PictureError::Channels(5))
        ));
    }
}
