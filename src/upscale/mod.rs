//! Upscaling whole pictures of any size: odd sides padded by reflection, the frame cut into
//! tiles whose halo covers the network's receptive field (so tiled output equals untiled
//! output), grey and alpha handled around the RGB network.

use crate::imaging::Image;
use crate::imaging::pad_to_even;
use crate::imaging::picture::Picture;
use crate::imaging::resize;
use crate::model::ModelConfig;
use crate::yuv::{Frame, YuvCoefficients, YuvToRgb};

pub mod file;

use rayon::prelude::*;

/// Why a frame could not be upscaled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpscaleError {
    #[error(transparent)]
    Input(#[from] crate::model::InputError),
    /// A device backend failed (its own message).
    #[error("{0}")]
    Backend(String),
    #[error("this engine does not write YUV frames")]
    NoYuvOutput,
}

/// An upscaling that has been started: calling it waits for the frame.
pub type Pending<'a, T = Image<f32>> = Box<dyn FnOnce() -> Result<T, UpscaleError> + 'a>;

/// Which threads compute a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameThreads {
    /// Every core, the frame cut among them: the quickest way through one frame.
    AllCores,
    /// The calling thread alone: for streams that compute [`Engine::frames_at_once`] frames
    /// together, each on its own thread.
    CallingThread,
}

/// Something that super-resolves RGB images with even sides.
pub trait Engine {
    fn config(&self) -> &ModelConfig;
    /// Upscales a whole RGB image with even sides; output not clamped.
    fn run(&self, rgb: &Image<f32>) -> Result<Image<f32>, UpscaleError>;
    /// As [`Engine::run`], into `out`, on the `threads` asked for (an engine with one way of
    /// running ignores them): an engine that can reuses its buffer (streams of frames of one
    /// size then allocate nothing per frame).
    fn run_into(&self, rgb: &Image<f32>, out: &mut Image<f32>, threads: FrameThreads) -> Result<(), UpscaleError> {
        let _ = threads;
        *out = self.run(rgb)?;
        Ok(())
    }
    /// Starts upscaling `rgb` into `out`'s buffer. Engines on another device (GPUs) return
    /// once the work is queued, so a stream can upload the next frame and write the previous
    /// one while this one computes; the CPU engines compute here.
    fn start(&self, rgb: &Image<f32>, mut out: Image<f32>) -> Result<Pending<'_>, UpscaleError> {
        self.run_into(rgb, &mut out, FrameThreads::AllCores)?;
        Ok(Box::new(move || Ok(out)))
    }
    /// Whether [`Engine::start`] returns before the work is done (streams then keep one frame
    /// in flight; for the CPU engines that would only cost a frame buffer).
    fn computes_asynchronously(&self) -> bool {
        false
    }
    /// Whether [`Engine::run_yuv_to_yuv420`] reads and writes YUV itself (the fast CPU
    /// engine); otherwise streams convert to RGB and back themselves.
    fn fuses_yuv420(&self) -> bool {
        false
    }
    /// Upscales a YUV frame with even sides (`conversion` its size, layout and colours) into
    /// 4:2:0 samples as a y4m stream stores them: the Y, U and V planes one after the other, a
    /// byte a sample up to 8 bits, else two (little-endian); on the `threads` asked for.
    fn run_yuv_to_yuv420(
        &self,
        frame: &Frame,
        conversion: &YuvToRgb,
        coefficients: YuvCoefficients,
        out: &mut Vec<u8>,
        threads: FrameThreads,
    ) -> Result<(), UpscaleError> {
        let _ = (frame, conversion, coefficients, out, threads);
        Err(UpscaleError::NoYuvOutput)
    }
    /// How many frames of a stream [`Engine::run_into`] or [`Engine::run_yuv_to_yuv420`] should
    /// compute at once, each with [`FrameThreads::CallingThread`], while more frames wait: one
    /// per core for the fast engine, whose frames on all cores compute the rows about their
    /// bands' meeting point twice and hold every core at each frame's start and end; 1 (every
    /// frame on all cores) elsewhere.
    fn frames_at_once(&self) -> usize {
        1
    }
    /// Upscales an RGB image with even sides straight into interleaved 8-bit RGB, rounded as
    /// [`crate::imaging::picture::interleave_planes`] rounds, writing every byte of `out`
    /// (exactly the output's samples); `Ok(false)` from an engine that cannot (the caller then
    /// converts [`Engine::run`]'s output).
    fn run_into_rgb8(&self, rgb: &Image<f32>, out: &mut [u8]) -> Result<bool, UpscaleError> {
        let _ = (rgb, out);
        Ok(false)
    }
    /// As [`Engine::run_into_rgb8`] from interleaved 8-bit RGB (`height` rows of `3 * width`
    /// samples), read as the network needs it; `Ok(false)` from an engine that cannot (the
    /// caller then converts the samples to planes first).
    fn run_rgb8_into_rgb8(&self, samples: &[u8], size: (usize, usize), out: &mut [u8]) -> Result<bool, UpscaleError> {
        let _ = (samples, size, out);
        Ok(false)
    }
    /// Working memory per LR pixel of one run, for planning tiles.
    fn bytes_per_lr_pixel(&self) -> usize;
}

/// How far (in LR pixels) an output pixel looks into the input: one feature pixel per 3x3 conv
/// (head, N body blocks, tail, upsample), each feature pixel two LR pixels, plus the Gaussian's
/// reach on the HF path. Kept even so tiles stay on the 2x2 unshuffle grid.
pub fn receptive_radius(config: &ModelConfig) -> usize {
    2 * (config.num_blocks + 3) + 2
}

/// Whether tiles can reproduce the whole-image result: channel attention pools over the whole
/// image, so a model with it must see the whole image at once.
pub fn tileable(config: &ModelConfig) -> bool {
    !config.eca
}

/// One tile: the core region it is responsible for and the region it reads (core + halo).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    pub core_y: usize,
    pub core_x: usize,
    pub core_h: usize,
    pub core_w: usize,
    pub read_y: usize,
    pub read_x: usize,
    pub read_h: usize,
    pub read_w: usize,
}

/// Splits an `h` x `w` image (even sides) into tiles whose read region holds at most
/// `max_pixels` LR pixels; a single tile when the whole image fits.
pub fn plan_tiles(h: usize, w: usize, halo: usize, max_pixels: usize) -> Vec<Tile> {
    let whole = vec![Tile {
        core_y: 0,
        core_x: 0,
        core_h: h,
        core_w: w,
        read_y: 0,
        read_x: 0,
        read_h: h,
        read_w: w,
    }];
    if h * w <= max_pixels {
        return whole;
    }
    // Largest even core side c with (c + 2 halo)^2 <= max_pixels, at least 2.
    let side = ((max_pixels as f64).sqrt() as usize).saturating_sub(2 * halo);
    let core = (side & !1).max(2);
    let mut tiles = Vec::new();
    for core_y in (0..h).step_by(core) {
        for core_x in (0..w).step_by(core) {
            let core_h = core.min(h - core_y);
            let core_w = core.min(w - core_x);
            let read_y = core_y.saturating_sub(halo);
            let read_x = core_x.saturating_sub(halo);
            let read_h = (core_y + core_h + halo).min(h) - read_y;
            let read_w = (core_x + core_w + halo).min(w) - read_x;
            tiles.push(Tile {
                core_y,
                core_x,
                core_h,
                core_w,
                read_y,
                read_x,
                read_h,
                read_w,
            });
        }
    }
    tiles
}

/// Upscales an RGB image of any size within `max_bytes` of working memory. `on_tile(done,
/// total)` reports progress.
pub fn upscale_rgb(
    engine: &dyn Engine,
    rgb: &Image<f32>,
    max_bytes: usize,
    on_tile: impl FnMut(usize, usize),
) -> Result<Image<f32>, UpscaleError> {
    let mut out = Image::zeros(0, 0, 0);
    upscale_rgb_into(engine, rgb, max_bytes, on_tile, &mut out)?;
    Ok(out)
}

/// As [`upscale_rgb`], into `out`, whose buffer is reused when the whole image is one tile.
pub fn upscale_rgb_into(
    engine: &dyn Engine,
    rgb: &Image<f32>,
    max_bytes: usize,
    on_tile: impl FnMut(usize, usize),
    out: &mut Image<f32>,
) -> Result<(), UpscaleError> {
    let buffer = std::mem::replace(out, Image::zeros(0, 0, 0));
    *out = start_upscale(engine, rgb, max_bytes, on_tile, buffer)?()?;
    Ok(())
}

/// The tiles an even-sided image is run in, within `max_bytes` of working memory.
pub fn tiles_for(engine: &dyn Engine, h: usize, w: usize, max_bytes: usize) -> Vec<Tile> {
    let config = engine.config();
    let budget = (max_bytes / engine.bytes_per_lr_pixel().max(1)).max(64 * 64);
    if tileable(config) {
        plan_tiles(h, w, receptive_radius(config), budget)
    } else {
        plan_tiles(h, w, 0, usize::MAX)
    }
}

/// Starts [`upscale_rgb_into`]: a frame that fits in one tile goes to [`Engine::start`] (and may
/// still be computing when this returns); a tiled one is finished here.
pub fn start_upscale<'a>(
    engine: &'a dyn Engine,
    rgb: &Image<f32>,
    max_bytes: usize,
    mut on_tile: impl FnMut(usize, usize),
    buffer: Image<f32>,
) -> Result<Pending<'a>, UpscaleError> {
    let s = engine.config().scale;
    let (h, w) = (rgb.height, rgb.width);
    let padded = pad_to_even(rgb);
    let tiles = tiles_for(engine, padded.height, padded.width, max_bytes);
    if let [_single] = tiles.as_slice() {
        let pending = engine.start(&padded, buffer)?;
        on_tile(1, 1);
        if (padded.height, padded.width) == (h, w) {
            return Ok(pending);
        }
        return Ok(Box::new(move || Ok(pending()?.crop(0, 0, h * s, w * s))));
    }
    let mut out = Image::zeros(3, padded.height * s, padded.width * s);
    for (i, t) in tiles.iter().enumerate() {
        let input = padded.crop(t.read_y, t.read_x, t.read_h, t.read_w);
        let result = engine.run(&input)?;
        let (dy, dx) = ((t.core_y - t.read_y) * s, (t.core_x - t.read_x) * s);
        for c in 0..3 {
            let src = result.plane(c);
            let dst = out.plane_mut(c);
            for y in 0..t.core_h * s {
                let from = (dy + y) * result.width + dx;
                let to = (t.core_y * s + y) * padded.width * s + t.core_x * s;
                dst[to..to + t.core_w * s].copy_from_slice(&src[from..from + t.core_w * s]);
            }
        }
        on_tile(i + 1, tiles.len());
    }
    if (padded.height, padded.width) != (h, w) {
        out = out.crop(0, 0, h * s, w * s);
    }
    Ok(Box::new(move || Ok(out)))
}

/// Upscales a picture: the colour through the network (grey as RGB, then averaged back),
/// alpha by bicubic. Samples are clamped to 0..1.
pub fn upscale_picture(
    engine: &dyn Engine,
    picture: &Picture,
    max_bytes: usize,
    on_tile: impl FnMut(usize, usize),
) -> Result<Picture, UpscaleError> {
    upscale_picture_into(engine, picture, max_bytes, on_tile, Image::zeros(0, 0, 0))
}

/// As [`upscale_picture`], an RGB result computed in `buffer` when it fits (a 4K frame is
/// 100 MB of fresh pages otherwise): pass back the previous result's `color` to reuse it.
pub fn upscale_picture_into(
    engine: &dyn Engine,
    picture: &Picture,
    max_bytes: usize,
    on_tile: impl FnMut(usize, usize),
    buffer: Image<f32>,
) -> Result<Picture, UpscaleError> {
    let s = engine.config().scale;
    let grey = picture.color.channels == 1;
    let rgb = crate::imaging::color::grey_to_rgb(&picture.color);
    let mut sr = start_upscale(engine, &rgb, max_bytes, on_tile, buffer)?()?;
    let color = if grey {
        let n = sr.height * sr.width;
        let data = (0..n)
            .map(|i| ((sr.data[i] + sr.data[n + i] + sr.data[2 * n + i]) / 3.0).clamp(0.0, 1.0))
            .collect();
        Image::new(1, sr.height, sr.width, data)
    } else {
        sr.data.par_iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
        sr
    };
    let alpha = picture.alpha.as_ref().map(|a| bicubic(a, s));
    Ok(Picture {
        color,
        alpha,
        depth: picture.depth,
        icc: picture.icc.clone(),
        exif: picture.exif.clone(),
    })
}

/// Upscales an RGB image of any size into interleaved 8-bit RGB, every byte of `out` written
/// (it holds exactly the output's samples, 3 s^2 per input pixel; panics otherwise), the samples
/// exactly those of [`upscale_picture`] rounded to 8 bits: straight from the engine's last layer
/// where the image is one tile with even sides and the engine can, else through the float result.
pub fn upscale_rgb8_into(
    engine: &dyn Engine,
    rgb: &Image<f32>,
    max_bytes: usize,
    out: &mut [u8],
) -> Result<(), UpscaleError> {
    let s = engine.config().scale;
    assert_eq!(
        out.len(),
        rgb.height * s * rgb.width * s * 3,
        "the 8-bit output holds the whole image"
    );
    let even = rgb.height.is_multiple_of(2) && rgb.width.is_multiple_of(2);
    if even && tiles_for(engine, rgb.height, rgb.width, max_bytes).len() == 1 && engine.run_into_rgb8(rgb, out)? {
        return Ok(());
    }
    let sr = upscale_rgb(engine, rgb, max_bytes, |_, _| {})?;
    out.copy_from_slice(&crate::imaging::picture::interleave_u8(&sr, None));
    Ok(())
}

/// As [`upscale_rgb8_into`] from interleaved 8-bit RGB (`height` rows of `3 * width`
/// samples): the engine reads the samples itself where it can (the whole image in one tile),
/// else they are converted to planes first.
pub fn upscale_rgb8_samples_into(
    engine: &dyn Engine,
    samples: &[u8],
    (height, width): (usize, usize),
    max_bytes: usize,
    out: &mut [u8],
) -> Result<(), UpscaleError> {
    let even = height.is_multiple_of(2) && width.is_multiple_of(2);
    let whole = even && tiles_for(engine, height, width, max_bytes).len() == 1;
    if whole && engine.run_rgb8_into_rgb8(samples, (height, width), out)? {
        return Ok(());
    }
    let mut planes = Image::zeros(0, 0, 0);
    crate::imaging::picture::rgb8_to_planes(samples, height, width, &mut planes);
    upscale_rgb8_into(engine, &planes, max_bytes, out)
}

/// MATLAB-style bicubic enlargement, clamped.
pub fn bicubic(image: &Image<f32>, scale: usize) -> Image<f32> {
    resize::upscale(&image.map(|v| v as f64), scale).map(|v| v.clamp(0.0, 1.0) as f32)
}

/// Bicubic | model, side by side, for showing the gain.
pub fn side_by_side(left: &Image<f32>, right: &Image<f32>) -> Image<f32> {
    assert_eq!((left.channels, left.height), (right.channels, right.height));
    let (h, w1, w2) = (left.height, left.width, right.width);
    let mut out = Image::zeros(left.channels, h, w1 + w2);
    for c in 0..left.channels {
        for y in 0..h {
            let row = &mut out.plane_mut(c)[y * (w1 + w2)..(y + 1) * (w1 + w2)];
            row[..w1].copy_from_slice(&left.plane(c)[y * w1..(y + 1) * w1]);
            row[w1..].copy_from_slice(&right.plane(c)[y * w2..(y + 1) * w2]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_image_once_and_stay_on_the_even_grid() {
        for (h, w, budget) in [(100, 62, 900), (8, 8, 10), (64, 200, 4000), (2, 2, 1)] {
            let tiles = plan_tiles(h, w, 6, budget);
            let mut covered = vec![0u8; h * w];
            for t in &tiles {
                assert!(t.core_y % 2 == 0 && t.core_x % 2 == 0 && t.read_y % 2 == 0 && t.read_x % 2 == 0);
                assert!(t.read_y + t.read_h <= h && t.read_x + t.read_w <= w);
                for y in t.core_y..t.core_y + t.core_h {
                    for x in t.core_x..t.core_x + t.core_w {
                        covered[y * w + x] += 1;
                    }
                }
            }
            assert!(covered.iter().all(|&c| c == 1), "{h}x{w}");
        }
    }
}
