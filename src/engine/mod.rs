//! The fast CPU inference engine for the folded network.
//!
//! Why not burn for this: a 3x3 24->24 conv runs at ~12 GMAC/s in burn-flex on this machine
//! (`rt4ksr bench`), a seventh of the fp32 peak. Here each conv is a row-wise Winograd F(4,3)
//! convolution (half the multiply-accumulates, see [`winograd`]), vectorised over 16 tiles of a
//! row and blocked over 6 output channels (12 AVX2 accumulators), with the activation and the
//! next block's LayerNorm fused into its epilogue, the pixel unshuffle folded into the input
//! packing and the pixel shuffle into the last layer's stores. The frame is cut into one band
//! of rows per core, and each band streams its rows through all layers with three-row rings, so
//! the features never leave the cache; the buffers live in a reusable [`Workspace`], and the
//! dead HF branch is never computed.

mod kernels;
pub mod math;
pub mod winograd;

use crate::imaging::Image;
use crate::model::{Activation, Form, ModelConfig};
use crate::video::color::YuvCoefficients;
use crate::video::y4m::Frame;
use crate::{ModelWeights, TensorMap};
use rayon::prelude::*;
use winograd::{POINTS, TILE};

/// Winograd tiles per vector block of a row (64 pixels).
pub const BLOCK: usize = 16;

/// What follows a layer's convolution, per pixel.
#[derive(Clone, Debug)]
pub struct Epilogue {
    pub activation: Option<Activation>,
    /// LayerNorm of the next block, applied to this layer's output (weight, bias).
    pub norm: Option<(Vec<f32>, Vec<f32>)>,
}

/// One 3x3 convolution with its weights in the Winograd domain (see
/// [`winograd::transform_weights`]; groups of [`kernels::GROUP`] output channels).
#[derive(Clone, Debug)]
pub struct Layer {
    pub ci: usize,
    pub co: usize,
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub epilogue: Epilogue,
}

impl Layer {
    fn new(weight: &crate::HostTensor, bias: &crate::HostTensor, epilogue: Epilogue) -> Self {
        let (co, ci) = (weight.shape[0], weight.shape[1]);
        Self {
            ci,
            co,
            weights: winograd::transform_weights(&weight.data, co, ci, kernels::GROUP),
            bias: bias.data.clone(),
            epilogue,
        }
    }
}

/// Which instruction set the kernels use, chosen once at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx2Fma,
    Portable,
}

impl Isa {
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return Isa::Avx2Fma;
        }
        Isa::Portable
    }
}

/// The folded network, ready for the fast kernels.
#[derive(Clone, Debug)]
pub struct FastEngine {
    pub config: ModelConfig,
    /// Head, body blocks, tail (all F outputs), then the upsample conv.
    pub layers: Vec<Layer>,
    pub isa: Isa,
}

/// Buffers for one frame size, reused from frame to frame: the transformed head input (one
/// row per unshuffled row), a transformed zero row (the padding above and below), and per band
/// of rows, three-row rings for every layer's output plus the phase-split row a layer writes
/// before it is transformed.
#[derive(Default)]
pub struct Workspace {
    geometry: Geometry,
    input: Vec<f32>,
    zero: Vec<f32>,
    rings: Vec<f32>,
    bands: usize,
    band_len: usize,
}

impl Workspace {
    fn prepare(&mut self, g: Geometry, features: usize, ring_layers: usize, bands: usize) {
        let band_len = ring_layers * 3 * g.row_len(features) + features * TILE * g.pitch();
        if (self.geometry, self.bands, self.band_len) == (g, bands, band_len) {
            return;
        }
        *self = Self {
            geometry: g,
            input: vec![0.0; g.h * g.row_len(12)],
            zero: vec![0.0; g.row_len(features.max(12))],
            rings: vec![0.0; bands * band_len],
            bands,
            band_len,
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

    /// Builds the engine from weights (folding them first); `None` when unsupported.
    pub fn new(weights: &ModelWeights) -> Result<Option<Self>, crate::WeightError> {
        if !Self::supports(&weights.config) {
            return Ok(None);
        }
        let folded = weights.folded(false)?;
        Ok(Some(Self::from_folded(&folded.config, &folded.tensors, Isa::detect())))
    }

    /// As [`FastEngine::new`] with a chosen instruction set (for tests and benchmarks).
    pub fn from_folded(config: &ModelConfig, t: &TensorMap, isa: Isa) -> Self {
        debug_assert!(crate::weights::check_layout(config, Form::Folded, t).is_ok());
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
            ));
        }
        layers.push(Layer::new(
            &t["tail.1.rep_conv.weight"],
            &t["tail.1.rep_conv.bias"],
            Epilogue {
                activation: None,
                norm: None,
            },
        ));
        layers.push(Layer::new(
            &t["upsample.0.weight"],
            &t["upsample.0.bias"],
            Epilogue {
                activation: None,
                norm: None,
            },
        ));
        Self {
            config: config.clone(),
            layers,
            isa,
        }
    }

    /// Upscales an RGB image with even sides; output not clamped.
    pub fn upscale(&self, rgb: &Image<f32>, ws: &mut Workspace) -> Result<Image<f32>, String> {
        let mut out = Image::zeros(0, 0, 0);
        self.upscale_into(rgb, ws, &mut out)?;
        Ok(out)
    }

    /// As [`FastEngine::upscale`], writing into `out`, which is reallocated only when the frame
    /// size changes: for streams of frames, where fresh 4K buffers would cost page faults.
    pub fn upscale_into(&self, rgb: &Image<f32>, ws: &mut Workspace, out: &mut Image<f32>) -> Result<(), String> {
        self.check(rgb)?;
        let s = self.config.scale;
        if (out.channels, out.height, out.width) != (3, rgb.height * s, rgb.width * s) {
            *out = Image::zeros(3, rgb.height * s, rgb.width * s);
        }
        let sink = Sink::Rgb(Shared(out.data.as_mut_ptr()));
        self.run(rgb, ws, sink, out.width);
        Ok(())
    }

    /// Upscales straight into a 4:2:0 frame (planes resized as needed): each 2s x 2s block of
    /// the pixel shuffle holds whole 2x2 chroma areas, so the last layer's stores convert to
    /// YUV as they go, and a video stream neither writes nor reads a float 4K frame.
    pub fn upscale_into_yuv420(
        &self,
        rgb: &Image<f32>,
        ws: &mut Workspace,
        coefficients: YuvCoefficients,
        frame: &mut Frame,
    ) -> Result<(), String> {
        self.check(rgb)?;
        let s = self.config.scale;
        let (out_h, out_w) = (rgb.height * s, rgb.width * s);
        frame.y.resize(out_h * out_w, 0);
        frame.u.resize(out_h * out_w / 4, 0);
        frame.v.resize(out_h * out_w / 4, 0);
        let sink = Sink::Yuv420(YuvPlanes {
            planes: [&mut frame.y, &mut frame.u, &mut frame.v].map(|plane| Shared(plane.as_mut_ptr())),
            coefficients,
        });
        self.run(rgb, ws, sink, out_w);
        Ok(())
    }

    fn check(&self, rgb: &Image<f32>) -> Result<(), String> {
        crate::model::network::check_input_size(&self.config, rgb.height, rgb.width)?;
        if rgb.channels != 3 {
            return Err(format!("the network takes RGB images, got {} channels", rgb.channels));
        }
        Ok(())
    }

    /// The whole network over a checked frame, the output going to `sink` (`out_w` wide).
    fn run(&self, rgb: &Image<f32>, ws: &mut Workspace, sink: Sink, out_w: usize) {
        let (h, w) = (rgb.height / 2, rgb.width / 2);
        let f = self.config.feature_channels;
        let bands = rayon::current_num_threads().clamp(1, h);
        let g = Geometry::new(h, w);
        ws.prepare(g, f, self.layers.len() - 1, bands);
        // Pixel unshuffle into phase-split rows, transformed for the head (in parallel:
        // single-threaded it was ~2% of a frame).
        let isa = self.isa;
        ws.input.par_chunks_mut(g.row_len(12)).enumerate().for_each_init(
            || vec![0f32; 12 * TILE * g.pitch()],
            |split, (y, row)| {
                unshuffle_row(rgb, y, split, g);
                winograd::transform_row(isa, split, 12, g.pitch(), g.tiles, row);
            },
        );
        let (input, zero) = (&ws.input, &ws.zero);
        let rows_per_band = h.div_ceil(bands);
        ws.rings
            .par_chunks_mut(ws.band_len)
            .enumerate()
            .for_each(|(band, rings)| {
                let (a, b) = (band * rows_per_band, ((band + 1) * rows_per_band).min(h));
                if a < b {
                    self.stream_band(input, zero, rings, g, a, b, sink, out_w);
                }
            });
    }

    /// Computes final rows `a..b` of the frame, streaming every layer through three-row rings:
    /// at step t, layer k computes its row t - k, when that row lies in the rows the band needs
    /// from it (its own rows widened by one per later layer).
    #[allow(clippy::too_many_arguments)]
    fn stream_band(
        &self,
        input: &[f32],
        zero: &[f32],
        band: &mut [f32],
        g: Geometry,
        a: usize,
        b: usize,
        sink: Sink,
        out_w: usize,
    ) {
        let n = self.layers.len();
        let f = self.config.feature_channels;
        let row_len = g.row_len(f);
        let (rings, split) = band.split_at_mut((n - 1) * 3 * row_len);
        let mut block = vec![0f32; TILE * self.layers.iter().map(|l| l.co).max().unwrap_or(0) * BLOCK];
        let mut scratch = vec![0f32; kernels::SCRATCH_LEN];
        let reach = |k: usize| (n - 1 - k) as isize;
        let window = |k: usize| {
            (
                (a as isize - reach(k)).max(0),
                (b as isize + reach(k)).min(g.h as isize),
            )
        };
        let first = window(0).0;
        let last = window(n - 1).1 - 1 + (n - 1) as isize;
        for t in first..=last {
            for k in 0..n {
                let r = t - k as isize;
                let (lo, hi) = window(k);
                if r < lo || r >= hi {
                    continue;
                }
                let layer = &self.layers[k];
                // Ring k-1 is read, ring k written: disjoint parts of `rings`.
                let (prev, cur) = rings.split_at_mut(k * 3 * row_len);
                // The three input rows: the head reads the transformed input, later layers the
                // previous layer's ring; above the first row and below the last, zeros.
                let rows: [&[f32]; 3] = std::array::from_fn(|ky| {
                    let src = r + ky as isize - 1;
                    if src < 0 || src >= g.h as isize {
                        zero
                    } else if k == 0 {
                        &input[src as usize * g.row_len(12)..][..g.row_len(12)]
                    } else {
                        &prev[(k - 1) * 3 * row_len + (src as usize % 3) * row_len..][..row_len]
                    }
                });
                let r = r as usize;
                for t0 in (0..g.tiles).step_by(BLOCK) {
                    if k + 1 == n && TILE * t0 >= g.w {
                        break;
                    }
                    let inputs = rows.map(|row| &row[t0 * POINTS * layer.ci..][..POINTS * layer.ci * BLOCK]);
                    kernels::conv_block(self.isa, layer, inputs, &mut block, &mut scratch);
                    if k + 1 < n {
                        for (phase, result) in block.chunks_exact_mut(layer.co * BLOCK).take(TILE).enumerate() {
                            // Straight into the phase-split row, at stored tile t0 + 1.
                            let dst = &mut split[phase * g.pitch() + 1 + t0..];
                            kernels::epilogue(self.isa, &layer.epilogue, layer.co, result, dst, TILE * g.pitch());
                        }
                        continue;
                    }
                    let seg = Segment {
                        block: &block,
                        co: layer.co,
                        y: r,
                        first: TILE * t0,
                        count: (g.w - TILE * t0).min(TILE * BLOCK),
                    };
                    let r_up = 2 * self.config.scale;
                    match sink {
                        Sink::Rgb(out) => store_shuffled(seg, r_up, out, out_w, g.h),
                        Sink::Yuv420(target) => store_yuv420(self.isa, seg, r_up, &target, out_w, g.h),
                    }
                }
                if k + 1 < n {
                    // Pixels past the right edge were computed with the rest of their tile; the
                    // next layer must see them as the zero padding.
                    for c in 0..layer.co {
                        for x in g.w..TILE * g.tiles {
                            split[(c * TILE + x % TILE) * g.pitch() + 1 + x / TILE] = 0.0;
                        }
                    }
                    let dst = &mut cur[(r % 3) * row_len..][..row_len];
                    winograd::transform_row(self.isa, split, layer.co, g.pitch(), g.tiles, dst);
                }
            }
        }
    }
}

/// Pixel unshuffle of LR rows 2y and 2y+1 into one phase-split head row: channel
/// c*4 + dy*2 + dx (pixels past the right edge stay zero).
#[inline(never)]
fn unshuffle_row(rgb: &Image<f32>, y: usize, split: &mut [f32], g: Geometry) {
    for c in 0..3 {
        let src = rgb.plane(c);
        for dy in 0..2 {
            let row = &src[(2 * y + dy) * rgb.width..][..rgb.width];
            for dx in 0..2 {
                let channel = &mut split[(c * 4 + dy * 2 + dx) * TILE * g.pitch()..][..TILE * g.pitch()];
                for (x, pair) in row.chunks_exact(2).enumerate() {
                    channel[(x % TILE) * g.pitch() + 1 + x / TILE] = pair[dx];
                }
            }
        }
    }
}

/// The largest pixel shuffle factor (2 x scale 4), for the stores' row buffers.
const MAX_SHUFFLE: usize = 8;

/// The part of a block that is inside the image: output rows `y * r ..`, LR-half columns
/// `first .. first + count` (block layout as [`kernels::conv_block`] writes it).
#[derive(Clone, Copy)]
struct Segment<'a> {
    block: &'a [f32],
    co: usize,
    y: usize,
    first: usize,
    count: usize,
}

impl Segment<'_> {
    /// Channel `c` of phase `phase`: pixels `first + 4p + phase`.
    fn channel(&self, phase: usize, c: usize) -> &[f32; BLOCK] {
        self.block[(phase * self.co + c) * BLOCK..][..BLOCK]
            .try_into()
            .expect("a whole block")
    }
}

/// PixelShuffle(r): conv channel c = (ch, i, j) of pixel x goes to output row y*r + i, column
/// x*r + j of plane ch. Each output row of the segment is assembled in a small buffer and
/// copied out in one piece, so the 4K frame is written in runs rather than scattered floats.
fn store_shuffled(seg: Segment, r: usize, out: Shared<f32>, out_w: usize, h: usize) {
    let out_plane = h * r * out_w;
    let mut line = [0f32; TILE * BLOCK * MAX_SHUFFLE];
    for ch in 0..3 {
        for i in 0..r {
            for j in 0..r {
                for phase in 0..TILE {
                    let values = seg.channel(phase, (ch * r + i) * r + j);
                    for (p, &v) in values.iter().enumerate() {
                        line[(TILE * p + phase) * r + j] = v;
                    }
                }
            }
            let start = ch * out_plane + (seg.y * r + i) * out_w + seg.first * r;
            let len = seg.count * r;
            assert!(
                (seg.first + seg.count) * r <= out_w && seg.y * r + i < h * r,
                "shuffle store inside the image"
            );
            // SAFETY: inside row y*r + i of plane ch (asserted); bands write disjoint rows y.
            unsafe { std::ptr::copy_nonoverlapping(line.as_ptr(), out.0.add(start), len) };
        }
    }
}

/// The pixel shuffle of a block (as [`store_shuffled`]) converted to YUV 4:2:0 on the way:
/// the (i, j) 2x2 areas of each pixel's r x r output block are whole chroma areas, averaged as
/// [`FrameEncoder`](crate::video::color::FrameEncoder) averages them.
fn store_yuv420(isa: Isa, seg: Segment, r: usize, target: &YuvPlanes, out_w: usize, h: usize) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 and FMA were detected before `Isa::Avx2Fma` was chosen.
        Isa::Avx2Fma => unsafe { store_yuv420_avx2(seg, r, target, out_w, h) },
        _ => store_yuv420_any(seg, r, target, out_w, h),
    }
}

/// The same code vectorised 8 wide. Rust never contracts a * b + c into an FMA, so the values
/// are the same bits as the portable code's and FrameEncoder's.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn store_yuv420_avx2(seg: Segment, r: usize, target: &YuvPlanes, out_w: usize, h: usize) {
    store_yuv420_any(seg, r, target, out_w, h)
}

#[inline(always)]
fn store_yuv420_any(seg: Segment, r: usize, target: &YuvPlanes, out_w: usize, h: usize) {
    let YuvPlanes {
        planes: [luma, cb_plane, cr_plane],
        coefficients,
    } = target;
    let (chroma_w, rr) = (out_w / 2, r * r);
    assert!(
        (seg.first + seg.count) * r <= out_w
            && seg.y * r + r <= h * r
            && r.is_multiple_of(2)
            && out_w.is_multiple_of(2),
        "4:2:0 store inside the frame"
    );
    const LINE: usize = TILE * BLOCK * MAX_SHUFFLE;
    let (mut luma_lines, mut cb_line, mut cr_line) = ([[0u16; LINE]; 2], [0u16; LINE / 2], [0u16; LINE / 2]);
    for i in (0..r).step_by(2) {
        for j in (0..r).step_by(2) {
            for phase in 0..TILE {
                // Summed as FrameEncoder sums an area, ((t0 + t1) + b0) + b1 (0 + t0 is exact).
                let mut cb_sum = [0f32; BLOCK];
                let mut cr_sum = [0f32; BLOCK];
                for (di, dj) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let c = (i + di) * r + j + dj;
                    let (red, green, blue) = (
                        seg.channel(phase, c),
                        seg.channel(phase, rr + c),
                        seg.channel(phase, 2 * rr + c),
                    );
                    // Converted in a fixed-length loop (it vectorises), then scattered.
                    let mut luma_values = [0u16; BLOCK];
                    for p in 0..BLOCK {
                        let (l, cb, cr) = coefficients.pixel(red[p], green[p], blue[p]);
                        luma_values[p] = l;
                        cb_sum[p] += cb;
                        cr_sum[p] += cr;
                    }
                    for (p, l) in luma_values.into_iter().enumerate() {
                        luma_lines[di][(TILE * p + phase) * r + j + dj] = l;
                    }
                }
                let (mut cb_values, mut cr_values) = ([0u16; BLOCK], [0u16; BLOCK]);
                for p in 0..BLOCK {
                    cb_values[p] = coefficients.chroma(cb_sum[p] / 4.0);
                    cr_values[p] = coefficients.chroma(cr_sum[p] / 4.0);
                }
                for p in 0..BLOCK {
                    let at = ((TILE * p + phase) * r + j) / 2;
                    cb_line[at] = cb_values[p];
                    cr_line[at] = cr_values[p];
                }
            }
        }
        let (len, column) = (seg.count * r, seg.first * r);
        let chroma_at = ((seg.y * r + i) / 2) * chroma_w + column / 2;
        // SAFETY: rows y*r + i and y*r + i + 1 and their chroma row, columns inside the frame
        // (asserted); bands write disjoint rows y.
        unsafe {
            for (di, line) in luma_lines.iter().enumerate() {
                let at = (seg.y * r + i + di) * out_w + column;
                std::ptr::copy_nonoverlapping(line.as_ptr(), luma.0.add(at), len);
            }
            std::ptr::copy_nonoverlapping(cb_line.as_ptr(), cb_plane.0.add(chroma_at), len / 2);
            std::ptr::copy_nonoverlapping(cr_line.as_ptr(), cr_plane.0.add(chroma_at), len / 2);
        }
    }
}

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

    /// Stored tiles per phase of a phase-split row (one zero tile on each side).
    fn pitch(&self) -> usize {
        self.tiles + 2
    }

    /// Values in a transformed row of `channels` channels.
    fn row_len(&self, channels: usize) -> usize {
        POINTS * channels * self.tiles
    }
}

/// A raw pointer into an output buffer shared by the band workers: each writes disjoint rows.
#[derive(Clone, Copy)]
struct Shared<T>(*mut T);
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

/// Where the last layer's shuffled output goes.
#[derive(Clone, Copy)]
enum Sink {
    /// Planar RGB floats.
    Rgb(Shared<f32>),
    /// The planes of a 4:2:0 frame.
    Yuv420(YuvPlanes),
}

/// The Y, U and V planes of a 4:2:0 frame and the conversion into them.
#[derive(Clone, Copy)]
struct YuvPlanes {
    planes: [Shared<u16>; 3],
    coefficients: YuvCoefficients,
}

/// Measures the machine's fp32 multiply-accumulate peak: every core runs independent FMA chains
/// (enough to hide the FMA latency) for about `millis` ms. Returns GMAC/s over all cores.
pub fn measure_peak_gmacs(millis: u64) -> f64 {
    let threads = rayon::current_num_threads();
    let per_thread: Vec<f64> = (0..threads)
        .into_par_iter()
        .map(|_| {
            let start = std::time::Instant::now();
            let mut macs = 0u64;
            while start.elapsed().as_millis() < millis as u128 {
                macs += kernels::fma_burst(Isa::detect());
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
    fn packing_puts_output_channels_innermost() {
        let w = crate::HostTensor::new(vec![2, 1, 3, 3], (0..18).map(|v| v as f32).collect());
        let weights = winograd::transform_weights(&w.data, 2, 1, 2);
        // Point 0 is a quarter of the first tap, point 5 the last tap:
        // [point][group][ky][ci][channel of the group].
        assert_eq!(weights.len(), 6 * 3 * 2);
        assert_eq!(&weights[..4], &[0.0, 9.0 / 4.0, 3.0 / 4.0, 12.0 / 4.0]);
        assert_eq!(&weights[(5 * 3 + 2) * 2..], &[8.0, 17.0]);
    }

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
    fn fused_yuv420_output_equals_converting_the_rgb_output() {
        use crate::video::color::{ColorSpec, FrameEncoder, Matrix};
        use crate::video::y4m::Header;
        // Widths that leave a partial last block; depths and ranges that change the arithmetic.
        for (scale, h, w, depth, full_range) in [(2, 10, 38, 8, false), (3, 8, 46, 10, true), (3, 6, 32, 8, false)] {
            let engine = FastEngine::new(&perturbed_weights(&ModelConfig::official(scale), Form::Training, 7))
                .unwrap()
                .unwrap();
            let data = (0..3 * h * w)
                .map(|i| ((i * 7919) % 1000) as f32 / 900.0 - 0.05)
                .collect();
            let rgb = Image::new(3, h, w, data);
            let spec = ColorSpec {
                matrix: Matrix::Bt709,
                full_range,
                depth,
            };
            let mut ws = Workspace::default();
            let float = engine.upscale(&rgb, &mut ws).unwrap();
            let header =
                Header::read(&mut format!("YUV4MPEG2 W{} H{} C420p10\n", w * scale, h * scale).as_bytes()).unwrap();
            let mut encoder = FrameEncoder::default();
            let want = encoder.encode(&float, &header, spec);
            let mut fused = Frame::default();
            engine
                .upscale_into_yuv420(&rgb, &mut ws, YuvCoefficients::new(spec), &mut fused)
                .unwrap();
            assert_eq!(fused.y, want.y, "x{scale} luma");
            assert_eq!((&fused.u, &fused.v), (&want.u, &want.v), "x{scale} chroma");
            let levels: std::collections::BTreeSet<_> = fused.u.iter().collect();
            assert!(levels.len() > 20, "a colourful test frame");
        }
    }
}
