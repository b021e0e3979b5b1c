//! The fast CPU inference engine for the folded network.
//!
//! Why not burn for this: a 3x3 24->24 conv runs at ~12 GMAC/s in burn-flex on this machine
//! (`rt4ksr bench`), a seventh of the fp32 peak. Here each conv is a Winograd convolution (see
//! [`winograd`]): F(4,3) along the rows (half the multiply-accumulates; the portable and AMX
//! paths, one output row at a time), on the AVX2 and AVX-512 paths F(4,3) down the columns as
//! well (four output rows at a time, a quarter), vectorised over 16 tiles of a row and blocked
//! over 6 output channels (12 AVX2 accumulators, 24 AVX-512 ones), with the activation and the next
//! block's LayerNorm fused into its epilogue, the pixel unshuffle folded into the input packing
//! and the pixel shuffle into the last layer's stores. The frame is cut into one band of rows
//! per core (two bands taking a segment of rows from either end until they meet), and each
//! band streams its rows through all layers in rings of a few rows (two steps and one row; a
//! step: the one or four rows a path computes at a time), so the features never leave
//! the cache; the buffers live in a reusable [`Workspace`], and the dead HF branch is never
//! computed.

pub mod isa;
mod kernels;
pub mod math;
pub mod pack;
mod store;
pub mod winograd;

use crate::imaging::Image;
use crate::model::{Activation, Form, InputError, ModelConfig};
use crate::yuv::{Frame, YuvCoefficients, YuvToRgb};
use crate::{ModelWeights, TensorMap};
pub use isa::{Isa, Path, Unavailable};
use pack::{Bf16Terms, PackedWeights};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use store::{MAX_SHUFFLE, Segment, Shared, Sink, YuvPlanes};
use winograd::{POINTS, TILE};

/// Winograd tiles per vector block of a row (64 pixels).
pub const BLOCK: usize = 16;
/// Channels of the head's input: RGB after the pixel unshuffle.
const INPUT_CHANNELS: usize = 12;

/// What follows a layer's convolution, per pixel.
#[derive(Clone, Debug)]
pub struct Epilogue {
    pub activation: Option<Activation>,
    /// LayerNorm of the next block, applied to this layer's output (weight, bias).
    pub norm: Option<(Vec<f32>, Vec<f32>)>,
}

/// One 3x3 convolution with its weights in the Winograd domain, packed for one path
/// ([`pack::PackedWeights`]).
#[derive(Clone, Debug)]
pub struct Layer {
    pub ci: usize,
    pub co: usize,
    pub weights: PackedWeights,
    pub bias: Vec<f32>,
    pub epilogue: Epilogue,
    /// The products the AMX path sums (the fp32 paths ignore it).
    pub bf16_terms: Bf16Terms,
}

impl Layer {
    fn new(weight: &crate::HostTensor, bias: &crate::HostTensor, epilogue: Epilogue, path: Path) -> Self {
        let (co, ci) = (weight.shape[0], weight.shape[1]);
        Self {
            ci,
            co,
            weights: PackedWeights::new(&weight.data, co, ci, path, kernels::GROUP),
            bias: bias.data.clone(),
            epilogue,
            bf16_terms: Bf16Terms::Split,
        }
    }
}

/// The folded network, ready for the fast kernels.
#[derive(Clone, Debug)]
pub struct FastEngine {
    pub config: ModelConfig,
    /// Head, body blocks, tail (all F outputs), then the upsample conv.
    pub layers: Vec<Layer>,
    pub isa: Isa,
    /// Output rows a step: the path's [`kernels::rows_per_step`] (the tests run the portable
    /// path at the vector paths' steps too, see [`FastEngine::at_step`]).
    step: usize,
}

/// Buffers for one frame size, reused from frame to frame: a transformed zero row (the padding
/// above and below), and per band of rows, rings of [`ring_rows`] rows (a step: the one, two or
/// four rows a path computes at a time) for the transformed input and every layer's output,
/// plus the phase-split rows of a step that a layer writes before they are transformed.
#[derive(Default)]
pub struct Workspace {
    geometry: Geometry,
    zero: CacheAligned,
    rings: CacheAligned,
    bands: usize,
    band_len: usize,
    /// (features, layers with a ring, rows a step): with the geometry, the layout of a band,
    /// whose zeros outside the frame are kept from one frame to the next.
    layout: (usize, usize, usize),
    /// Frames run in one band on the calling thread ([`Workspace::for_calling_thread`]).
    calling_thread: bool,
}

/// Zeroed floats whose first one starts a cache line (64 bytes): the kernels' 64-byte vector
/// and tile rows then never straddle two lines.
#[derive(Default)]
struct CacheAligned {
    data: Vec<f32>,
    start: usize,
    len: usize,
}

impl CacheAligned {
    fn zeros(len: usize) -> Self {
        let data = vec![0f32; len + 15];
        let start = data.as_ptr().align_offset(64);
        Self { data, start, len }
    }

    fn as_slice(&self) -> &[f32] {
        &self.data[self.start..][..self.len]
    }

    fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data[self.start..][..self.len]
    }
}

impl Workspace {
    /// A workspace whose frames run in one band on the thread that calls the engine, rayon
    /// untouched: for callers that compute several frames at once, a frame per core (a stream:
    /// no rows computed twice at band edges, no core waiting for the slower band at a frame's
    /// end). The default workspace cuts each frame into a band per thread of rayon's pool.
    pub fn for_calling_thread() -> Self {
        Self {
            calling_thread: true,
            ..Self::default()
        }
    }

    fn prepare(&mut self, g: Geometry, features: usize, ring_layers: usize, bands: usize, step: usize) {
        // A whole number of cache lines, so that every band's rows start on one.
        let band_len = (ring_rows(step) * g.row_len(INPUT_CHANNELS)
            + ring_layers * ring_rows(step) * g.row_len(features)
            + SPLIT_SHIFT
            + (INPUT_CHANNELS + step * features) * TILE * g.pitch())
        .next_multiple_of(16);
        let layout = (features, ring_layers, step);
        if (self.geometry, self.bands, self.band_len, self.layout) == (g, bands, band_len, layout) {
            return;
        }
        *self = Self {
            geometry: g,
            zero: CacheAligned::zeros(g.row_len(features.max(INPUT_CHANNELS))),
            rings: CacheAligned::zeros(bands * band_len),
            bands,
            band_len,
            layout,
            calling_thread: self.calling_thread,
        };
    }
}

impl FastEngine {
    /// Whether the fast path implements this configuration: merge off (the HF branch is dead),
    /// no channel attention, no block residual, feature channels a multiple of 6, scale up to 4.
    pub fn supports(config: &ModelConfig) -> bool {
        !config.merge_hf
            && !config.eca
            && !config.residual
            && config.feature_channels.is_multiple_of(6)
            && 2 * config.scale <= MAX_SHUFFLE
    }

    /// Whether `path` can run this (supported) configuration: the AMX tiles need every layer's
    /// channels to fit them (feature channels a multiple of 12, at most 32).
    pub fn fits(config: &ModelConfig, path: Path) -> bool {
        let f = config.feature_channels;
        path != Path::AmxBf16
            || (pack::fits_tiles(12, f) && pack::fits_tiles(f, f) && pack::fits_tiles(f, config.upsample_channels()))
    }

    /// Builds the engine from weights (folding them first) on the fastest fp32 path of this
    /// CPU; `None` when the configuration is unsupported.
    pub fn new(weights: &ModelWeights) -> Result<Option<Self>, crate::WeightError> {
        Self::with_isa(weights, Isa::best_fp32()).map(|engine| engine.ok())
    }

    /// As [`FastEngine::new`] on a chosen path: `Ok(Err(..))` when the configuration is
    /// unsupported or does not fit that path.
    pub fn with_isa(weights: &ModelWeights, isa: Isa) -> Result<Result<Self, Unfit>, crate::WeightError> {
        if !Self::supports(&weights.config) {
            return Ok(Err(Unfit::Configuration));
        }
        let folded = weights.folded(false)?;
        Ok(Self::from_folded(&folded.config, &folded.tensors, isa))
    }

    /// The engine for folded tensors on a chosen path (for tests and benchmarks).
    pub fn from_folded(config: &ModelConfig, t: &TensorMap, isa: Isa) -> Result<Self, Unfit> {
        debug_assert!(crate::model::weights::check_layout(config, Form::Folded, t).is_ok());
        if !Self::supports(config) {
            return Err(Unfit::Configuration);
        }
        if !Self::fits(config, isa.path()) {
            return Err(Unfit::Path(isa.path()));
        }
        let path = isa.path();
        let norm = |prefix: &str| {
            Some((
                t[&format!("{prefix}.weight")].data.clone(),
                t[&format!("{prefix}.bias")].data.clone(),
            ))
        };
        let body_norm = |i: usize| {
            if config.layernorm {
                norm(&format!("body.{i}.norm"))
            } else {
                None
            }
        };
        let after = |i: usize| {
            if i < config.num_blocks {
                body_norm(i)
            } else {
                norm("tail.0")
            }
        };
        let act = Some(config.activation);
        let mut layers = vec![Layer::new(
            &t["head.0.weight"],
            &t["head.0.bias"],
            Epilogue {
                activation: None,
                norm: after(0),
            },
            path,
        )];
        for i in 0..config.num_blocks {
            let p = format!("body.{i}.conv1.rep_conv");
            layers.push(Layer::new(
                &t[&format!("{p}.weight")],
                &t[&format!("{p}.bias")],
                Epilogue {
                    activation: act,
                    norm: after(i + 1),
                },
                path,
            ));
        }
        layers.push(Layer::new(
            &t["tail.1.rep_conv.weight"],
            &t["tail.1.rep_conv.bias"],
            Epilogue {
                activation: None,
                norm: None,
            },
            path,
        ));
        layers.push(Layer {
            // Plain bf16 for the upsample conv, whose outputs are the picture's samples: no layer
            // after it amplifies its rounding, and it holds nearly half of the multiply-
            // accumulates at x3 (108 outputs). With the official and the embedded x2, x3 and x4
            // weights, dropping both low terms in this layer alone moved Y-PSNR by at most
            // -0.0064 dB and SSIM by -0.0001 on Set5 and Set14 against fp32 (the bound: 0.02 dB,
            // 0.0005), where one low term dropped in the other layers already cost up to -0.13 dB.
            bf16_terms: Bf16Terms::Plain,
            ..Layer::new(
                &t["upsample.0.weight"],
                &t["upsample.0.bias"],
                Epilogue {
                    activation: None,
                    norm: None,
                },
                path,
            )
        });
        Ok(Self {
            config: config.clone(),
            layers,
            isa,
            step: kernels::rows_per_step(path),
        })
    }

    /// The portable path streaming the frame in steps of `step` rows (computed a row at a time,
    /// so the same bits as its own one-row steps): the rings and windows of the AVX2 and AVX-512
    /// paths' four-row steps (and of steps of two and three rows), tested on any CPU.
    #[cfg(test)]
    fn at_step(self, step: usize) -> Self {
        assert!(
            self.isa.path() == Path::Portable && (1..=winograd::ROW_QUAD).contains(&step),
            "the portable path takes one to four rows a step"
        );
        Self { step, ..self }
    }

    /// Upscales an RGB image with even sides; output not clamped.
    pub fn upscale(&self, rgb: &Image<f32>, ws: &mut Workspace) -> Result<Image<f32>, InputError> {
        let mut out = Image::zeros(0, 0, 0);
        self.upscale_into(rgb, ws, &mut out)?;
        Ok(out)
    }

    /// As [`FastEngine::upscale`], writing into `out`, which is reallocated only when the frame
    /// size changes: for streams of frames, where fresh 4K buffers would cost page faults.
    pub fn upscale_into(&self, rgb: &Image<f32>, ws: &mut Workspace, out: &mut Image<f32>) -> Result<(), InputError> {
        self.check(rgb)?;
        let s = self.config.scale;
        if (out.channels, out.height, out.width) != (3, rgb.height * s, rgb.width * s) {
            *out = Image::zeros(3, rgb.height * s, rgb.width * s);
        }
        let sink = Sink::Rgb(Shared(out.data.as_mut_ptr()));
        self.run(Input::Planes(rgb), ws, sink, out.width);
        Ok(())
    }

    /// Upscales into interleaved 8-bit RGB (`out` resized as needed), rounded as 8-bit files
    /// are written: the float output is never made.
    pub fn upscale_into_rgb8(&self, rgb: &Image<f32>, ws: &mut Workspace, out: &mut Vec<u8>) -> Result<(), InputError> {
        let len = rgb.height * self.config.scale * rgb.width * self.config.scale * 3;
        if out.capacity() < len {
            // Zeroed by the kernel as the store first writes each page, on every core, where
            // `resize` would first zero all 25 MB of a 4K frame on one.
            *out = vec![0; len];
        }
        out.resize(len, 0);
        self.upscale_to_rgb8(rgb, ws, out)
    }

    /// As [`FastEngine::upscale_into_rgb8`], into `out`, which holds exactly the output's
    /// samples (3 s^2 per input pixel; panics otherwise); every byte of it is written. For
    /// callers that own the output's memory (a NumPy array).
    pub fn upscale_to_rgb8(&self, rgb: &Image<f32>, ws: &mut Workspace, out: &mut [u8]) -> Result<(), InputError> {
        self.check(rgb)?;
        let s = self.config.scale;
        let (out_h, out_w) = (rgb.height * s, rgb.width * s);
        assert_eq!(out.len(), out_h * out_w * 3, "the 8-bit output holds the whole image");
        self.run(Input::Planes(rgb), ws, Sink::Rgb8(Shared(out.as_mut_ptr())), out_w);
        Ok(())
    }

    /// As [`FastEngine::upscale_to_rgb8`] from interleaved 8-bit RGB (`height` rows of `3 *
    /// width` samples), each sample scaled as an 8-bit file's is as the input rows are made:
    /// no float input frame (the Python package's arrays).
    pub fn upscale_rgb8_to_rgb8(
        &self,
        samples: &[u8],
        (height, width): (usize, usize),
        ws: &mut Workspace,
        out: &mut [u8],
    ) -> Result<(), InputError> {
        crate::model::network::check_input_size(&self.config, height, width)?;
        assert_eq!(samples.len(), height * width * 3, "3 samples a pixel");
        let s = self.config.scale;
        let (out_h, out_w) = (height * s, width * s);
        assert_eq!(out.len(), out_h * out_w * 3, "the 8-bit output holds the whole image");
        let input = Input::Rgb8 { samples, height, width };
        self.run(input, ws, Sink::Rgb8(Shared(out.as_mut_ptr())), out_w);
        Ok(())
    }

    /// Upscales a frame of a video stream, read as YUV and written as 4:2:0: its rows are
    /// converted to RGB as the bands read them, and each 2s x 2s block of the pixel shuffle
    /// holds whole 2x2 chroma areas, so the last layer's stores convert to YUV as they go. No
    /// float frame is made on either side, and the conversions run in the bands, spread over
    /// the cores with the network. `out` is resized to the 4:2:0 frame's samples as a y4m
    /// stream stores them: the Y, U and V planes one after the other, a byte a sample up to 8
    /// bits, else two (little-endian).
    pub fn upscale_yuv_to_yuv420(
        &self,
        frame: &Frame,
        conversion: &YuvToRgb,
        ws: &mut Workspace,
        coefficients: YuvCoefficients,
        out: &mut Vec<u8>,
    ) -> Result<(), InputError> {
        let (height, width) = conversion.size();
        crate::model::network::check_input_size(&self.config, height, width)?;
        let (cw, ch) = conversion.chroma().plane_size(width, height);
        assert!(
            frame.y.len() == width * height && frame.u.len() == cw * ch && frame.v.len() == cw * ch,
            "the frame's planes are of the conversion's size and layout"
        );
        let s = self.config.scale;
        let (out_h, out_w) = (height * s, width * s);
        let bytes = coefficients.bytes_per_sample();
        let luma = out_h * out_w * bytes;
        out.resize(luma * 3 / 2, 0);
        let (y_plane, chroma) = out.split_at_mut(luma);
        let (u_plane, v_plane) = chroma.split_at_mut(luma / 4);
        let sink = Sink::Yuv420(YuvPlanes {
            planes: [y_plane, u_plane, v_plane].map(|plane| Shared(plane.as_mut_ptr())),
            coefficients,
        });
        self.run(Input::Yuv { frame, conversion }, ws, sink, out_w);
        Ok(())
    }

    fn check(&self, rgb: &Image<f32>) -> Result<(), InputError> {
        crate::model::network::check_input_size(&self.config, rgb.height, rgb.width)?;
        if rgb.channels != 3 {
            return Err(InputError::Channels(rgb.channels));
        }
        Ok(())
    }

    /// The whole network over a checked frame, the output going to `sink` (`out_w` wide).
    fn run(&self, rgb: Input, ws: &mut Workspace, sink: Sink, out_w: usize) {
        let (h, w) = (rgb.height() / 2, rgb.width() / 2);
        let f = self.config.feature_channels;
        let step = self.step;
        let steps = h.div_ceil(step);
        let g = Geometry::new(h, w);
        if ws.calling_thread {
            ws.prepare(g, f, self.layers.len() - 1, 1, step);
            let (zero, rings) = (ws.zero.as_slice(), ws.rings.as_mut_slice());
            self.stream_band(rgb, zero, rings, g, (0, steps, Share::Whole), sink, out_w);
            store::store_fence();
            return;
        }
        // Bands in pairs, each pair sharing a segment of the frame that its two bands take
        // from either end until they meet: neither core waits at the frame's end for the
        // other's band, as with a fixed edge between them, and the rows about the meeting
        // point are computed by both, as about a fixed edge. An odd band out takes a part of
        // its own.
        let bands = rayon::current_num_threads().clamp(1, steps);
        ws.prepare(g, f, self.layers.len() - 1, bands, step);
        let zero = ws.zero.as_slice();
        let steps_per_band = steps.div_ceil(bands);
        let claimed: Vec<AtomicUsize> = (0..bands / 2).map(|_| AtomicUsize::new(0)).collect();
        ws.rings
            .as_mut_slice()
            .par_chunks_mut(ws.band_len)
            .enumerate()
            .for_each(|(band, rings)| {
                let pair = band / 2;
                let (a, parts) = if pair < claimed.len() { (2 * pair, 2) } else { (band, 1) };
                let (a, b) = (
                    (a * steps_per_band).min(steps),
                    ((a + parts) * steps_per_band).min(steps),
                );
                let share = match (parts, band % 2) {
                    (1, _) => Share::Whole,
                    (_, 0) => Share::FromTop(&claimed[pair]),
                    _ => Share::FromBottom(&claimed[pair]),
                };
                if a < b {
                    self.stream_band(rgb, zero, rings, g, (a, b, share), sink, out_w);
                    store::store_fence();
                }
            });
    }

    /// Computes the final rows of the steps of segment `a..b` of the frame that `share` gives
    /// this band (a step: the rows the path computes at a time, [`kernels::rows_per_step`]),
    /// streaming every layer through rings of [`ring_rows`] rows: layer 0 leads, each later
    /// layer one step behind the one before (top down, or bottom up for a band that starts at
    /// its segment's end), computing the steps its band needs from it (the band's own steps
    /// widened by one per later layer).
    #[allow(clippy::too_many_arguments)]
    fn stream_band(
        &self,
        rgb: Input,
        zero: &[f32],
        band: &mut [f32],
        g: Geometry,
        (a, b, share): (usize, usize, Share),
        sink: Sink,
        out_w: usize,
    ) {
        let n = self.layers.len();
        let f = self.config.feature_channels;
        let row_len = g.row_len(f);
        let step = self.step;
        let steps = g.h.div_ceil(step) as isize;
        let ring_len = ring_rows(step) * row_len;
        let split_len = f * TILE * g.pitch();
        // The transformed input's ring, the layers' rings, the phase-split rows of the input's
        // unshuffle (only its pixels inside the frame are ever written: the rest stays zero),
        // then those of a layer's step.
        let input_len = g.row_len(INPUT_CHANNELS);
        let (input, band) = band.split_at_mut(ring_rows(step) * input_len);
        let (rings, band) = band.split_at_mut((n - 1) * ring_len);
        let (input_split, splits) = band[SPLIT_SHIFT..].split_at_mut(INPUT_CHANNELS * TILE * g.pitch());
        let max_co = self.layers.iter().map(|l| l.co).max().unwrap_or(0);
        // The calls whose epilogue is not fused (the last layer's among them) go through `blocks`.
        let unfused_per_call = kernels::blocks_per_call(self.isa.path(), false);
        // Both cache-line aligned: the AVX-512 and AMX kernels write and read them in 64-byte
        // vectors and tile rows, which each straddled two lines in a plain Vec (glibc aligns to
        // 16 bytes; a 64-byte store across two lines took 2.3x a whole one's time in a
        // microbenchmark here). Single-thread pairs, x3: AVX-512 5-8 % and AMX 7-8 % faster.
        let mut blocks = CacheAligned::zeros(unfused_per_call * step * TILE * max_co * BLOCK);
        let blocks = blocks.as_mut_slice();
        let max_ci = self.layers.iter().map(|l| l.ci).max().unwrap_or(0);
        let mut scratch = CacheAligned::zeros(kernels::scratch_len(max_ci));
        let scratch = scratch.as_mut_slice();
        let mut lines = store::StoreLines::new();
        let mut input_lines = vec![0f32; input_lines_len(rgb)];
        // Which of its ring's rows row y of the input or of a layer's output is.
        let ring_slot = |y: usize| y % ring_rows(step);
        let ring_row = |y: usize| ring_slot(y) * row_len;
        let reach = |k: usize| (n - 1 - k) as isize;
        let (a, b) = (a as isize, b as isize);
        let window = |k: usize| ((a - reach(k)).max(0), (b + reach(k)).min(steps));
        let down = !matches!(share, Share::FromBottom(_));
        // The direction the band goes in, in steps.
        let ahead = if down { 1 } else { -1 };
        // Layer k's step at progress p: layer 0 starts at its window's first step (down) or
        // last (up), and layer k follows k steps behind.
        let step_at = |p: isize, k: usize| match down {
            true => window(0).0 + p - k as isize,
            false => window(0).1 - 1 - p + k as isize,
        };
        // The input's steps are made as the head needs them (steps u - 1 ..= u + 1 for its
        // step u), so that they are read back from the cache; the whole frame's transformed
        // input (17 MB at 720p) made first went through memory.
        let mut next_input = (step_at(0, 0) - ahead).clamp(0, steps - 1);
        for p in 0.. {
            let output = step_at(p, n - 1);
            let done = if down { output >= b } else { output < a };
            if done || ((a..b).contains(&output) && !share.claim((b - a) as usize)) {
                break;
            }
            for k in 0..n {
                let u = step_at(p, k);
                let (lo, hi) = window(k);
                if u < lo || u >= hi {
                    continue;
                }
                if k == 0 {
                    let needed = (u + ahead).clamp(0, steps - 1);
                    while (next_input - needed) * ahead <= 0 {
                        let top = next_input as usize * step;
                        for y in top..(top + step).min(g.h) {
                            unshuffle_row(self.isa, rgb, y, input_split, g, &mut input_lines);
                            let dst = &mut input[ring_slot(y) * input_len..][..input_len];
                            kernels::transform_row(self.isa, input_split, INPUT_CHANNELS, g.pitch(), g.tiles, dst);
                        }
                        next_input += ahead;
                    }
                }
                let layer = &self.layers[k];
                // Ring k-1 is read, ring k written: disjoint parts of `rings`.
                let (prev, cur) = rings.split_at_mut(k * ring_len);
                // Input row y: the head reads the transformed input, later layers the previous
                // layer's ring; above the first row and below the last, zeros.
                let row = |y: isize| -> &[f32] {
                    if y < 0 || y >= g.h as isize {
                        zero
                    } else if k == 0 {
                        &input[ring_slot(y as usize) * input_len..][..input_len]
                    } else {
                        &prev[(k - 1) * ring_len + ring_row(y as usize)..][..row_len]
                    }
                };
                let top = u as usize * step;
                // The rows of this step inside the frame (the second of a pair may lie below).
                let valid = (g.h - top).min(step);
                let block_len = TILE * layer.co * BLOCK;
                let fused = k + 1 < n && kernels::fuses_epilogue(self.isa.path(), layer.co);
                let per_call = kernels::blocks_per_call(self.isa.path(), fused);
                for t0 in (0..g.tiles).step_by(per_call * BLOCK) {
                    // Blocks of this call: the last layer stops at the frame's right edge.
                    let edge = if k + 1 == n {
                        g.w.saturating_sub(TILE * t0).div_ceil(TILE * BLOCK)
                    } else {
                        usize::MAX
                    };
                    let count = ((g.tiles - t0) / BLOCK).min(per_call).min(edge);
                    if count == 0 {
                        break;
                    }
                    let inputs = |y: isize| &row(y)[t0 * POINTS * layer.ci..][..count * POINTS * layer.ci * BLOCK];
                    let top = top as isize;
                    if fused {
                        // The epilogue in the convolution, straight into the phase-split rows.
                        let rows: [&[f32]; 6] = std::array::from_fn(|r| inputs(top - 1 + r as isize));
                        let split = &mut splits[1 + t0..];
                        let layout = (split_len, g.pitch());
                        kernels::conv_epilogue(self.isa, layer, &rows[..step + 2], count, split, layout, scratch);
                        continue;
                    }
                    if step == 1 {
                        let rows = [inputs(top - 1), inputs(top), inputs(top + 1)];
                        kernels::conv_block(self.isa, layer, rows, count, blocks, scratch);
                    } else {
                        // Rows top - 1 .. top + step (the most any path's step reads).
                        let rows: [&[f32]; 6] = std::array::from_fn(|r| inputs(top - 1 + r as isize));
                        kernels::conv_rows(self.isa, layer, &rows[..step + 2], count, blocks, scratch);
                    }
                    // Block b of the call, row j of the step, at (b * step + j) * block_len.
                    for (index, block) in blocks.chunks_exact_mut(block_len).take(count * step).enumerate() {
                        let (b, j) = (index / step, index % step);
                        if j >= valid {
                            continue;
                        }
                        let t = t0 + b * BLOCK;
                        if k + 1 < n {
                            let split = &mut splits[j * split_len..][..split_len];
                            for (phase, result) in block.chunks_exact_mut(layer.co * BLOCK).take(TILE).enumerate() {
                                // Straight into the phase-split row, at stored tile t + 1.
                                let dst = &mut split[phase * g.pitch() + 1 + t..];
                                kernels::epilogue(self.isa, &layer.epilogue, layer.co, result, dst, TILE * g.pitch());
                            }
                            continue;
                        }
                        let seg = Segment {
                            block,
                            co: layer.co,
                            y: top as usize + j,
                            first: TILE * t,
                            count: (g.w - TILE * t).min(TILE * BLOCK),
                        };
                        let r_up = 2 * self.config.scale;
                        match sink {
                            Sink::Rgb(out) => kernels::store_float(self.isa, seg, r_up, out, out_w, g.h, &mut lines),
                            Sink::Rgb8(out) => kernels::store_rgb8(self.isa, seg, r_up, out, out_w, g.h),
                            Sink::Yuv420(target) => {
                                kernels::store_yuv420(self.isa, seg, r_up, &target, out_w, g.h, &mut lines)
                            }
                        }
                    }
                }
                if k + 1 < n {
                    for j in 0..valid {
                        let split = &mut splits[j * split_len..][..split_len];
                        // Pixels past the right edge were computed with the rest of their tile;
                        // the next layer must see them as the zero padding.
                        for c in 0..layer.co {
                            for x in g.w..TILE * g.tiles {
                                split[(c * TILE + x % TILE) * g.pitch() + 1 + x / TILE] = 0.0;
                            }
                        }
                        let dst = &mut cur[ring_row(top + j)..][..row_len];
                        kernels::transform_row(self.isa, split, layer.co, g.pitch(), g.tiles, dst);
                    }
                }
            }
        }
    }
}

/// Which output steps of its segment a band computes.
#[derive(Clone, Copy)]
enum Share<'a> {
    /// All of them, top down.
    Whole,
    /// Those it claims from the top, a step at a time, sharing the segment with a band that
    /// claims from the bottom until the two meet; the count is both bands' claims so far.
    FromTop(&'a AtomicUsize),
    /// Those it claims from the bottom, sharing the segment with a band that claims from the top.
    FromBottom(&'a AtomicUsize),
}

impl Share<'_> {
    /// Whether the band's next step (from its end of a segment of `steps` steps) is its own: the
    /// two bands' claims, counted together, take every step of the segment once.
    fn claim(&self, steps: usize) -> bool {
        match self {
            Share::Whole => true,
            // Relaxed: the count alone decides, and the bands' rows pass to no one before the
            // pool's join.
            Share::FromTop(claims) | Share::FromBottom(claims) => claims.fetch_add(1, Ordering::Relaxed) < steps,
        }
    }
}

/// Rows of a ring of transformed rows (the input's or a layer's output) for steps of `step`
/// rows: when a layer computes its step u (rows u * step .. + step, from the rows one above to
/// one below them), the layer before has just written its step u + 1, so that the rows from
/// u * step - 1 to (u + 2) * step - 1 are in use; the next step written replaces the oldest.
/// Going up, the layer before has just written its step u - 1: rows (u - 1) * step to
/// (u + 1) * step, as many.
fn ring_rows(step: usize) -> usize {
    2 * step + 1
}

/// The LR frame the network reads: float planes, interleaved 8-bit RGB scaled as it is read,
/// or a YUV frame converted as it is read.
#[derive(Clone, Copy)]
enum Input<'a> {
    Planes(&'a Image<f32>),
    Rgb8 {
        samples: &'a [u8],
        height: usize,
        width: usize,
    },
    Yuv {
        frame: &'a Frame,
        conversion: &'a YuvToRgb,
    },
}

impl Input<'_> {
    fn height(&self) -> usize {
        match *self {
            Input::Planes(rgb) => rgb.height,
            Input::Rgb8 { height, .. } => height,
            Input::Yuv { conversion, .. } => conversion.size().0,
        }
    }

    fn width(&self) -> usize {
        match *self {
            Input::Planes(rgb) => rgb.width,
            Input::Rgb8 { width, .. } => width,
            Input::Yuv { conversion, .. } => conversion.size().1,
        }
    }
}

/// Pixel unshuffle of LR rows 2y and 2y+1 into one phase-split head row: channel
/// c*4 + dy*2 + dx (pixels past the right edge stay zero). A YUV input's two rows are converted
/// into `lines` first ([`input_lines_len`] floats).
#[inline(never)]
fn unshuffle_row(isa: Isa, input: Input, y: usize, split: &mut [f32], g: Geometry, lines: &mut [f32]) {
    let width = input.width();
    if let Input::Yuv { frame, conversion } = input {
        let (rgb, chroma) = lines.split_at_mut(6 * width);
        for (dy, row) in rgb.chunks_exact_mut(3 * width).enumerate() {
            let (red, rest) = row.split_at_mut(width);
            let (green, blue) = rest.split_at_mut(width);
            conversion.row(frame, 2 * y + dy, [red, green, blue], chroma);
        }
    }
    let layout = (TILE * g.pitch(), g.pitch());
    for c in 0..3 {
        for dy in 0..2 {
            let row = 2 * y + dy;
            let floats = match input {
                Input::Planes(rgb) => &rgb.plane(c)[row * width..][..width],
                Input::Yuv { .. } => &lines[(dy * 3 + c) * width..][..width],
                Input::Rgb8 { samples, .. } => {
                    let interleaved = &samples[row * width * 3..][..width * 3];
                    for dx in 0..2 {
                        let channel = &mut split[(c * 4 + dy * 2 + dx) * TILE * g.pitch()..][..TILE * g.pitch()];
                        // Phase by phase, so that the writes run along the phase's tiles (pixel
                        // 4t + q of the unshuffled row is sample 8t + 2q + dx of the LR row);
                        // pixel by pixel the writes jumped between the four phases (`perf`: 15 %
                        // less time here, which is 3 % of a frame).
                        for (q, phase) in channel.chunks_exact_mut(g.pitch()).enumerate() {
                            let samples = interleaved.iter().skip((2 * q + dx) * 3 + c).step_by(2 * TILE * 3);
                            for (dst, &v) in phase[1..].iter_mut().zip(samples) {
                                *dst = crate::imaging::picture::unit_u8(v);
                            }
                        }
                    }
                    continue;
                }
            };
            kernels::unshuffle_samples(isa, floats, split, c * 4 + dy * 2, layout);
        }
    }
}

/// The scratch floats [`unshuffle_row`] needs for an input: two rows of RGB and the
/// conversion's scratch for a YUV frame, none otherwise.
fn input_lines_len(input: Input) -> usize {
    match input {
        Input::Yuv { conversion, .. } => 6 * input.width() + conversion.scratch_len(),
        _ => 0,
    }
}

/// Floats before a band's phase-split rows: its rings end on a cache line, and stored tile 1
/// (the first of the row) then starts one.
const SPLIT_SHIFT: usize = 15;

/// The feature map of a frame: `h` x `w` pixels at half the LR resolution, rows cut into
/// `tiles` Winograd tiles (rounded up to whole blocks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Geometry {
    h: usize,
    w: usize,
    tiles: usize,
}

impl Geometry {
    fn new(h: usize, w: usize) -> Self {
        Self {
            h,
            w,
            tiles: w.div_ceil(TILE * BLOCK) * BLOCK,
        }
    }

    /// Stored tiles per phase of a phase-split row (one zero tile on each side, then up to the
    /// next cache line: with [`SPLIT_SHIFT`], every phase's first tile starts a line, so that the
    /// epilogue's 64-byte stores and the transform's loads of blocks never straddle two).
    fn pitch(&self) -> usize {
        let lines = (self.tiles + 2).div_ceil(16);
        16 * (lines | 1)
    }

    /// Values in a transformed row of `channels` channels.
    fn row_len(&self, channels: usize) -> usize {
        POINTS * channels * self.tiles
    }
}

/// Why the fast engine does not run a model on a path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unfit {
    #[error(
        "the fast engine does not implement this configuration (merged HF branch, channel attention, block residual, feature channels not a multiple of 6, or scale above 4)"
    )]
    Configuration,
    #[error("the {0} path needs feature channels that are a multiple of 12 and at most 32")]
    Path(Path),
}

/// Measures a path's multiply-accumulate peak: every core runs the path's fastest
/// multiply-accumulate on independent accumulators (enough to hide the latency) for about
/// `millis` ms. Returns GMAC/s over all cores.
pub fn measure_peak_gmacs(isa: Isa, millis: u64) -> f64 {
    let threads = rayon::current_num_threads();
    let per_thread: Vec<f64> = (0..threads)
        .into_par_iter()
        .map(|_| {
            let start = std::time::Instant::now();
            let mut macs = 0u64;
            while start.elapsed().as_millis() < millis as u128 {
                macs += kernels::mac_burst(isa);
            }
            macs as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    per_thread.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::perturbed_weights;

    #[test]
    fn unsupported_configurations_fall_back() {
        let mut c = ModelConfig::official(2);
        assert!(FastEngine::supports(&c));
        c.eca = true;
        assert!(!FastEngine::supports(&c));
        let w = perturbed_weights(&c, Form::Folded, 1);
        assert!(FastEngine::new(&w).unwrap().is_none());
    }

    #[test]
    fn steps_of_several_rows_stream_the_same_rows_as_one_row_steps() {
        // The rings, the bands' windows and the last step's rows below the frame at the AVX2
        // and AVX-512 paths' four rows a step (and two and three), on any CPU: the portable
        // path computes every row alike at any step, so the frame must come out bit for bit.
        // Heights after the unshuffle that no step divides, partial last blocks, one to four
        // bands (pairs meeting where their cores' pace puts them: top down and bottom up), and
        // the calling thread's one band.
        for (scale, h, w) in [(2, 26, 38), (3, 22, 70), (4, 14, 30)] {
            let weights = perturbed_weights(&ModelConfig::official(scale), Form::Training, 11);
            let engine = FastEngine::with_isa(&weights, Isa::portable()).unwrap().unwrap();
            let data = (0..3 * h * w)
                .map(|i| ((i * 7919) % 1000) as f32 / 900.0 - 0.05)
                .collect();
            let rgb = Image::new(3, h, w, data);
            let in_bands = |engine: &FastEngine, bands: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(bands).build().unwrap();
                pool.install(|| engine.upscale(&rgb, &mut Workspace::default()).unwrap())
            };
            let want = in_bands(&engine, 1);
            for step in [2, 3, 4] {
                let engine = engine.clone().at_step(step);
                for bands in [1, 2, 3, 4] {
                    let got = in_bands(&engine, bands);
                    assert!(got.data == want.data, "x{scale}, {step} rows a step, {bands} bands");
                }
                // One band on the calling thread, however many threads rayon's pool has.
                let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
                let got = pool.install(|| engine.upscale(&rgb, &mut Workspace::for_calling_thread()).unwrap());
                assert!(
                    got.data == want.data,
                    "x{scale}, {step} rows a step, the calling thread"
                );
            }
        }
    }

    #[test]
    fn yuv_in_and_out_equals_converting_around_the_rgb_network() {
        use crate::video::color::{ColorSpec, FrameEncoder, Matrix, frame_to_rgb, rgb_to_frame};
        use crate::video::y4m::{Header, write_frame_with};
        // Widths that leave a partial last block; depths and ranges that change the arithmetic.
        for (scale, h, w, depth, full_range) in [(2, 10, 38, 8, false), (3, 8, 46, 10, true), (3, 6, 32, 8, false)] {
            let weights = perturbed_weights(&ModelConfig::official(scale), Form::Training, 7);
            let tag = if depth == 8 {
                "C420".to_string()
            } else {
                format!("C420p{depth}")
            };
            let header =
                |w: usize, h: usize| Header::read(&mut format!("YUV4MPEG2 W{w} H{h} {tag}\n").as_bytes()).unwrap();
            let spec = ColorSpec {
                matrix: Matrix::Bt709,
                full_range,
                depth,
            };
            let data = (0..3 * h * w)
                .map(|i| ((i * 7919) % 1000) as f32 / 900.0 - 0.05)
                .collect();
            let frame = rgb_to_frame(&Image::new(3, h, w, data), &header(w, h), spec);
            let conversion = YuvToRgb::new(w, h, crate::yuv::Chroma::C420, spec);
            for isa in Isa::survey().into_iter().filter_map(|(_, isa)| isa.ok()) {
                let engine = FastEngine::with_isa(&weights, isa).unwrap().unwrap();
                let mut ws = Workspace::default();
                let float = engine
                    .upscale(&frame_to_rgb(&frame, &header(w, h), spec), &mut ws)
                    .unwrap();
                let out_header = header(w * scale, h * scale);
                let mut want = Vec::new();
                write_frame_with(
                    &mut want,
                    &out_header,
                    FrameEncoder::default().encode(&float, &out_header, spec),
                    &mut Vec::new(),
                )
                .unwrap();
                let want = &want[b"FRAME\n".len()..];
                let mut fused = vec![3u8; 7];
                engine
                    .upscale_yuv_to_yuv420(&frame, &conversion, &mut ws, YuvCoefficients::new(spec), &mut fused)
                    .unwrap();
                assert_eq!(fused.len(), want.len(), "x{scale} {isa}");
                let luma = w * h * scale * scale * depth.div_ceil(8) as usize;
                assert!(fused[..luma] == want[..luma], "x{scale} {isa} luma");
                assert!(fused[luma..] == want[luma..], "x{scale} {isa} chroma");
                let levels: std::collections::BTreeSet<_> = fused[luma..].iter().collect();
                assert!(levels.len() > 20, "a colourful test frame");
                // As a stream computing a frame per core runs it.
                let mut alone = Vec::new();
                let mut ws = Workspace::for_calling_thread();
                engine
                    .upscale_yuv_to_yuv420(&frame, &conversion, &mut ws, YuvCoefficients::new(spec), &mut alone)
                    .unwrap();
                assert!(alone == fused, "x{scale} {isa}: one band on the calling thread");
            }
        }
    }

    #[test]
    fn fused_rgb8_output_equals_rounding_the_float_output() {
        // Partial last blocks, x2 to x4, samples beyond 0..1 (clamped), on every path.
        for (scale, h, w) in [(2, 10, 38), (3, 8, 46), (4, 6, 30)] {
            let weights = perturbed_weights(&ModelConfig::official(scale), Form::Training, 5);
            for isa in Isa::survey().into_iter().filter_map(|(_, isa)| isa.ok()) {
                let engine = FastEngine::with_isa(&weights, isa).unwrap().unwrap();
                let data = (0..3 * h * w)
                    .map(|i| ((i * 7919) % 1000) as f32 / 800.0 - 0.1)
                    .collect();
                let rgb = Image::new(3, h, w, data);
                let mut ws = Workspace::default();
                let float = engine.upscale(&rgb, &mut ws).unwrap();
                let want = crate::imaging::picture::interleave_u8(&float, None);
                let mut fused = vec![7u8; 5];
                engine.upscale_into_rgb8(&rgb, &mut ws, &mut fused).unwrap();
                assert_eq!(fused.len(), want.len(), "x{scale} {isa}");
                assert!(fused == want, "x{scale} {isa}: fused 8-bit store differs");
                // 8-bit input read straight: the same as its planes converted first.
                let samples: Vec<u8> = (0..h * w * 3).map(|i| (i * 7919 % 256) as u8).collect();
                let mut planes = Image::zeros(0, 0, 0);
                crate::imaging::picture::rgb8_to_planes(&samples, h, w, &mut planes);
                let mut want = vec![0u8; fused.len()];
                engine.upscale_to_rgb8(&planes, &mut ws, &mut want).unwrap();
                let mut direct = vec![0u8; fused.len()];
                engine
                    .upscale_rgb8_to_rgb8(&samples, (h, w), &mut ws, &mut direct)
                    .unwrap();
                assert!(direct == want, "x{scale} {isa}: 8-bit input differs from its planes");
                let levels: std::collections::BTreeSet<_> = fused.iter().collect();
                assert!(levels.len() > 50, "x{scale}: a varied test frame");
            }
        }
    }
}
