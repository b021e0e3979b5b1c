//! AVX-512F: 16 lanes, each block of 16 tiles one vector. With 32 registers a pass holds 24
//! output channels (4 weight panels of 6) at a point, so each input vector loaded feeds 24
//! FMAs (AVX2: 12). The epilogue and the output transform also serve the AMX path.

use super::super::math::{ERF_ALPHA, ERF_BETA};
use super::super::store::{Segment, Shared, StoreLines, YuvPlanes};
use super::super::winograd::{POINTS, TILE, VERTICAL_INPUT};
use super::{BLOCK, ConvOutput, Epilogue, GROUP, LN_EPS, LRELU_SLOPE, Layer, PAIR_CHANNELS_PER_PASS};
use crate::model::Activation;
use std::arch::x86_64::*;

/// Weight panels (of [`GROUP`] channels) accumulated in one pass: 24 accumulators.
const PANELS_PER_PASS: usize = PAIR_CHANNELS_PER_PASS / GROUP;

/// Two output rows from four input rows over `blocks` (1 or 2) blocks of tiles (see
/// [`super::conv_rows`]). Over two blocks a pass holds 12 channels of both, so that each
/// weight broadcast feeds two FMAs: 16 loads per 24 FMAs instead of 26.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn conv_pair(
    layer: &Layer,
    weights: &[f32],
    rows: [&[f32]; 4],
    blocks: usize,
    mut out: ConvOutput,
    scratch: &mut [f32],
) {
    let (ci, groups) = (layer.ci, layer.co / GROUP);
    let per_pass = PANELS_PER_PASS / blocks;
    // With the epilogue fused: the sums over the channels of each block, row and phase, carried
    // across the chunks (each holds some of the channels).
    let mut sums = [[_mm512_setzero_ps(); TILE]; 2 * 2];
    let mut first = 0;
    while first < groups {
        // A chunk of up to 24 channels, point by point: each point's inputs (two rows over the
        // blocks) serve every pass of the chunk while they are in L1, where a pass over all the
        // points before the next read them again from L2 (4 % a frame at x3, 2 % at x2).
        let chunk = (groups - first).min(PANELS_PER_PASS);
        for (v, &(a, b, add)) in VERTICAL_INPUT.iter().enumerate() {
            let inputs = [rows[a], rows[b]];
            let panel = &weights[v * POINTS * groups * ci * GROUP..];
            for m in 0..POINTS {
                let mut done = 0;
                while done < chunk {
                    let panels = (chunk - done).min(per_pass);
                    let products = &mut scratch[((v * POINTS + m) * chunk + done) * GROUP * blocks * BLOCK..];
                    let g = first + done;
                    macro_rules! products_at {
                        ($($p:literal, $nb:literal);*) => {
                            match (panels, blocks, add) {
                                $(
                                    ($p, $nb, true) => products_at::<$p, $nb, true>(panel, inputs, ci, groups, g, m, products),
                                    ($p, $nb, false) => products_at::<$p, $nb, false>(panel, inputs, ci, groups, g, m, products),
                                )*
                                _ => unreachable!("{panels} panels over {blocks} blocks"),
                            }
                        };
                    }
                    // SAFETY (every arm): bounds asserted by the dispatch (rows hold blocks *
                    // POINTS * ci * BLOCK, the panels ci * GROUP each, scratch SCRATCH_LEN).
                    unsafe { products_at!(4, 1; 3, 1; 2, 1; 1, 1; 2, 2; 1, 2) }
                    done += panels;
                }
            }
        }
        let pass = (chunk * GROUP, first * GROUP, blocks);
        match &mut out {
            // SAFETY: the products of this pass were written just above; `out` holds 2 * blocks
            // blocks of TILE * co * BLOCK values (asserted by the dispatch).
            ConvOutput::Blocks(out) => unsafe {
                pair_output_transform(scratch, pass, layer, |b, row, channel, pixels| {
                    let dst = out.as_mut_ptr().add((b * 2 + row) * TILE * layer.co * BLOCK);
                    for (phase, y) in pixels.into_iter().enumerate() {
                        _mm512_storeu_ps(dst.add((phase * layer.co + channel) * BLOCK), y);
                    }
                })
            },
            // SAFETY: as above; the split rows reach every channel and phase of the blocks of
            // both rows (asserted by the dispatch).
            ConvOutput::Split { rows, row_len, pitch } => unsafe {
                let (rows, row_len, pitch) = (rows.as_mut_ptr(), *row_len, *pitch);
                pair_output_transform(scratch, pass, layer, |b, row, channel, pixels| {
                    let dst = rows.add(row * row_len + channel * TILE * pitch + b * BLOCK);
                    activate_into(layer, pixels, dst, pitch, &mut sums[b * 2 + row]);
                })
            },
        }
        first += chunk;
    }
    if let ConvOutput::Split { rows, row_len, pitch } = out {
        for b in 0..blocks {
            for (row, split) in rows.chunks_mut(row_len).take(2).enumerate() {
                // SAFETY: every channel's activated values of block b were stored above.
                unsafe {
                    let dst = split[b * BLOCK..].as_mut_ptr();
                    normalize(&layer.epilogue, layer.co, dst, (TILE * pitch, pitch), sums[b * 2 + row])
                };
            }
        }
    }
}

/// The products of panels `first..first + P` of one vertical point at point `m`, over `NB`
/// blocks of tiles, into `scratch[((channel of the panels) * NB + block) * BLOCK..]`. The
/// vertical point's input is made as it is read, `rows[0]` plus (`ADD`) or minus `rows[1]` (B^T
/// of F(2,3)): one add per 24 FMAs, where writing the four inputs out first cost a sixth of the
/// convolution's time.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
// Index loops on purpose: with the accumulators stored at the end through an iterator (as
// clippy suggests), LLVM kept them in registers but also stored each to the stack after every
// FMA (measured 1.3x slower a frame; `objdump` shows the stores).
#[allow(clippy::needless_range_loop)]
unsafe fn products_at<const P: usize, const NB: usize, const ADD: bool>(
    weights: &[f32],
    rows: [&[f32]; 2],
    ci: usize,
    groups: usize,
    first: usize,
    m: usize,
    scratch: &mut [f32],
) {
    // Blocks of tiles lie one after another in a transformed row.
    let block_stride = POINTS * ci * BLOCK;
    let mut acc = [[[_mm512_setzero_ps(); NB]; GROUP]; P];
    // SAFETY (whole body): see `conv_pair`.
    unsafe {
        let panels: [*const f32; P] =
            std::array::from_fn(|g| weights.as_ptr().add((m * groups + first + g) * ci * GROUP));
        let (first_row, second_row) = (
            rows[0].as_ptr().add(m * ci * BLOCK),
            rows[1].as_ptr().add(m * ci * BLOCK),
        );
        for i in 0..ci {
            let v: [__m512; NB] = std::array::from_fn(|b| {
                let at = b * block_stride + i * BLOCK;
                let (x, y) = (_mm512_loadu_ps(first_row.add(at)), _mm512_loadu_ps(second_row.add(at)));
                if ADD { _mm512_add_ps(x, y) } else { _mm512_sub_ps(x, y) }
            });
            for g in 0..P {
                let w = panels[g].add(i * GROUP);
                for c in 0..GROUP {
                    let weight = _mm512_set1_ps(*w.add(c));
                    for b in 0..NB {
                        acc[g][c][b] = _mm512_fmadd_ps(weight, v[b], acc[g][c][b]);
                    }
                }
            }
        }
        let out = scratch.as_mut_ptr();
        for g in 0..P {
            for c in 0..GROUP {
                for b in 0..NB {
                    _mm512_storeu_ps(out.add(((g * GROUP + c) * NB + b) * BLOCK), acc[g][c][b]);
                }
            }
        }
    }
}

/// A^T of F(4,3) plus bias: a channel's 6 products at a row of tiles to its 4 pixels.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn row_pixels(m: [__m512; POINTS], bias: __m512) -> [__m512; TILE] {
    let (s12, d12) = (_mm512_add_ps(m[1], m[2]), _mm512_sub_ps(m[1], m[2]));
    let (s34, d34) = (_mm512_add_ps(m[3], m[4]), _mm512_sub_ps(m[3], m[4]));
    [
        _mm512_add_ps(_mm512_add_ps(m[0], bias), _mm512_add_ps(s12, s34)),
        _mm512_fmadd_ps(_mm512_set1_ps(2.0), d34, _mm512_add_ps(d12, bias)),
        _mm512_fmadd_ps(_mm512_set1_ps(4.0), s34, _mm512_add_ps(s12, bias)),
        _mm512_fmadd_ps(_mm512_set1_ps(8.0), d34, _mm512_add_ps(_mm512_add_ps(d12, m[5]), bias)),
    ]
}

/// Where a [`PassFinish`] writes: a block (`block[(phase * co + c) * BLOCK..]` is channel c
/// of the tiles' pixels of that phase), or the next layer's phase-split rows with the epilogue
/// applied (channel c of a phase at `rows[(c * TILE + phase) * pitch..]`).
#[derive(Clone, Copy)]
pub enum FinishTarget {
    Blocks(*mut f32),
    Split { rows: *mut f32, pitch: usize },
}

/// A^T plus bias of one pass's products over its blocks (each channel's 6 products of a row of
/// tiles to its 4 pixels), into blocks, or into the split rows with the epilogue: activated,
/// summed per pixel as they go, then the LayerNorm over the block's values once every channel is
/// in place (the arithmetic of [`epilogue`] in the same order: the same bits, without a block
/// between them, whose stores and reads cost about a fifth of an AMX frame). Done a few
/// channels at a time ([`PassFinish::advance`]): the AMX path runs it between the next pass's
/// tile instructions, so that these vector instructions execute while the tile unit works.
pub struct PassFinish<'a> {
    layer: &'a Layer,
    /// Block b's products at `products + b * block_stride`, `(m * channels + c) * BLOCK` within.
    products: *const f32,
    block_stride: usize,
    /// Channels `first..first + channels` of the layer, over `blocks` blocks.
    channels: usize,
    first: usize,
    blocks: usize,
    target: FinishTarget,
    /// The next unit of work: channel `next % units_per_block` of block `next / units_per_block`,
    /// the last unit of a block its LayerNorm (split rows only).
    next: usize,
    sum: [__m512; TILE],
}

impl<'a> PassFinish<'a> {
    /// # Safety
    /// `products` holds the products of `channels` channels at every point of `blocks` blocks
    /// (`block_stride` floats apart), until the finish is complete. A `Blocks` target reaches
    /// `blocks` blocks of TILE * co * BLOCK values; a `Split` one holds every channel (`first`
    /// is 0 and `channels` is co) and reaches ((co - 1) * TILE + 3) * pitch + blocks * BLOCK.
    pub unsafe fn new(
        layer: &'a Layer,
        products: *const f32,
        block_stride: usize,
        (channels, first, blocks): (usize, usize, usize),
        target: FinishTarget,
    ) -> Self {
        Self {
            layer,
            products,
            block_stride,
            channels,
            first,
            blocks,
            target,
            next: 0,
            // SAFETY: a zero vector needs no feature at run time (the path's Isa implies AVX-512).
            sum: unsafe { std::mem::zeroed() },
        }
    }

    fn units_per_block(&self) -> usize {
        self.channels + matches!(self.target, FinishTarget::Split { .. }) as usize
    }

    /// Units of work in all: a channel of a block, or a block's LayerNorm.
    pub fn units(&self) -> usize {
        self.blocks * self.units_per_block()
    }

    /// Does the next `count` units of work (fewer at the end).
    ///
    /// # Safety
    /// AVX-512F; the contract of [`PassFinish::new`].
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn advance(&mut self, count: usize) {
        let end = self.next.saturating_add(count).min(self.units());
        let per_block = self.units_per_block();
        while self.next < end {
            let (b, c) = (self.next / per_block, self.next % per_block);
            self.next += 1;
            let co = self.layer.co;
            // SAFETY (whole match): the contract of `new`: block b's products, and its block or
            // its tiles of the split rows.
            unsafe {
                let src = self.products.add(b * self.block_stride);
                if c == self.channels {
                    let FinishTarget::Split { rows, pitch } = self.target else {
                        unreachable!("only split rows have a LayerNorm unit")
                    };
                    let sum = std::mem::replace(&mut self.sum, [_mm512_setzero_ps(); TILE]);
                    normalize(
                        &self.layer.epilogue,
                        co,
                        rows.add(b * BLOCK),
                        (TILE * pitch, pitch),
                        sum,
                    );
                    continue;
                }
                let channel = self.first + c;
                let m = std::array::from_fn(|point| _mm512_loadu_ps(src.add((point * self.channels + c) * BLOCK)));
                let pixels = row_pixels(m, _mm512_set1_ps(self.layer.bias[channel]));
                match self.target {
                    FinishTarget::Blocks(out) => {
                        let out = out.add(b * TILE * co * BLOCK);
                        for (phase, y) in pixels.into_iter().enumerate() {
                            _mm512_storeu_ps(out.add((phase * co + channel) * BLOCK), y);
                        }
                    }
                    FinishTarget::Split { rows, pitch } => {
                        let dst = rows.add(channel * TILE * pitch + b * BLOCK);
                        activate_into(self.layer, pixels, dst, pitch, &mut self.sum);
                    }
                }
            }
        }
    }
}

/// The 4 pixels of one channel activated, stored a phase `pitch` apart from `dst`, and added to
/// the phases' sums over the channels (for the LayerNorm's mean).
///
/// # Safety
/// `dst` reaches 3 * pitch + BLOCK.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn activate_into(layer: &Layer, pixels: [__m512; TILE], dst: *mut f32, pitch: usize, sum: &mut [__m512; TILE]) {
    for (phase, y) in pixels.into_iter().enumerate() {
        let v = activate(layer.epilogue.activation, y);
        // SAFETY: the caller's contract.
        unsafe { _mm512_storeu_ps(dst.add(phase * pitch), v) };
        sum[phase] = _mm512_add_ps(sum[phase], v);
    }
}

/// The LayerNorm of the epilogue over `N` phases of a block whose activated values are in
/// place (channel c of phase p at `dst + c * channel_stride + p * phase_stride`, 16 values),
/// `sum` their sums over the channels per phase: mean, then the variance from the stored values,
/// then the normalised values over them. Every epilogue of this path runs it, in this order.
///
/// # Safety
/// `dst` reaches (co - 1) * channel_stride + (N - 1) * phase_stride + BLOCK.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn normalize<const N: usize>(
    epilogue: &Epilogue,
    co: usize,
    dst: *mut f32,
    (channel_stride, phase_stride): (usize, usize),
    sum: [__m512; N],
) {
    let Some((weight, bias)) = &epilogue.norm else {
        return;
    };
    let at = |c: usize, phase: usize| c * channel_stride + phase * phase_stride;
    let n = _mm512_set1_ps(1.0 / co as f32);
    let mean = sum.map(|s| _mm512_mul_ps(s, n));
    let mut sq = [_mm512_setzero_ps(); N];
    // SAFETY (whole body): the caller's contract.
    unsafe {
        for c in 0..co {
            for phase in 0..N {
                let d = _mm512_sub_ps(_mm512_loadu_ps(dst.add(at(c, phase))), mean[phase]);
                sq[phase] = _mm512_fmadd_ps(d, d, sq[phase]);
            }
        }
        let inv = sq.map(|sq| {
            let var = _mm512_mul_ps(sq, n);
            _mm512_div_ps(
                _mm512_set1_ps(1.0),
                _mm512_sqrt_ps(_mm512_add_ps(var, _mm512_set1_ps(LN_EPS))),
            )
        });
        for c in 0..co {
            let (w, b) = (_mm512_set1_ps(weight[c]), _mm512_set1_ps(bias[c]));
            for phase in 0..N {
                let x = dst.add(at(c, phase));
                let d = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x), mean[phase]), inv[phase]);
                _mm512_storeu_ps(x, _mm512_fmadd_ps(d, w, b));
            }
        }
    }
}

/// A^T of F(2,3) then of F(4,3), plus bias: the 4 x 6 products of each of `channels` channels
/// over `blocks` blocks of tiles (`products[(((v * POINTS + m) * channels + c) * blocks + b) *
/// BLOCK..]`, channel `first + c` of the layer; `(channels, first, blocks)` = `pass`) to its 4
/// pixels in each of the two rows, handed to `write(block, row, channel, pixels)` channel by
/// channel in order.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn pair_output_transform(
    products: &[f32],
    (channels, first, blocks): (usize, usize, usize),
    layer: &Layer,
    mut write: impl FnMut(usize, usize, usize, [__m512; TILE]),
) {
    let src = products.as_ptr();
    for c in 0..channels {
        let channel = first + c;
        let bias = _mm512_set1_ps(layer.bias[channel]);
        for b in 0..blocks {
            // SAFETY: the caller passes products of `channels` channels over `blocks` blocks at
            // every vertical point and point.
            let s = |v: usize, m: usize| unsafe {
                _mm512_loadu_ps(src.add((((v * POINTS + m) * channels + c) * blocks + b) * BLOCK))
            };
            let mut top = [_mm512_setzero_ps(); POINTS];
            let mut bottom = [_mm512_setzero_ps(); POINTS];
            for m in 0..POINTS {
                let (s1, s2) = (s(1, m), s(2, m));
                top[m] = _mm512_add_ps(_mm512_add_ps(s(0, m), s1), s2);
                bottom[m] = _mm512_sub_ps(_mm512_sub_ps(s1, s2), s(3, m));
            }
            for (row, m) in [top, bottom].into_iter().enumerate() {
                write(b, row, channel, row_pixels(m, bias));
            }
        }
    }
}

/// 24 independent chains of 16-wide FMAs: enough to cover the FMA latency on two pipes.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn fma_burst() -> u64 {
    let iters = 1u64 << 15;
    let mut acc = [_mm512_set1_ps(1.0); 24];
    let m = _mm512_set1_ps(0.999_999);
    let a = _mm512_set1_ps(1e-7);
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, m, a);
        }
    }
    std::hint::black_box(acc);
    iters * 24 * 16
}

#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn gelu16(v: __m512) -> __m512 {
    let x = _mm512_mul_ps(v, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
    let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-4.0)), _mm512_set1_ps(4.0));
    let x2 = _mm512_mul_ps(x, x);
    let mut p = _mm512_set1_ps(ERF_ALPHA[0]);
    for &c in &ERF_ALPHA[1..] {
        p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(c));
    }
    let mut q = _mm512_set1_ps(ERF_BETA[0]);
    for &c in &ERF_BETA[1..] {
        q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(c));
    }
    // p / q by a 14-bit reciprocal estimate and one Newton step (~28 bits): a division would
    // hold the divider for several cycles per vector. q <= -0.014 everywhere.
    let r = _mm512_rcp14_ps(q);
    let r = _mm512_mul_ps(r, _mm512_fnmadd_ps(q, r, _mm512_set1_ps(2.0)));
    let erf = _mm512_mul_ps(_mm512_mul_ps(x, p), r);
    let half_v = _mm512_mul_ps(v, _mm512_set1_ps(0.5));
    _mm512_fmadd_ps(half_v, erf, half_v)
}

/// The epilogue's activation of 16 values.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn activate(activation: Option<Activation>, v: __m512) -> __m512 {
    match activation {
        None => v,
        Some(Activation::Gelu) => gelu16(v),
        Some(Activation::Relu) => _mm512_max_ps(v, _mm512_setzero_ps()),
        Some(Activation::Lrelu) => {
            let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, _mm512_setzero_ps());
            _mm512_mask_mul_ps(v, neg, v, _mm512_set1_ps(LRELU_SLOPE))
        }
    }
}

/// The epilogue of one phase of a block: activation into `dst` (channel c at `c * dst_stride`),
/// summed over the channels as it goes, then the LayerNorm in place ([`normalize`], which the
/// fused convolutions share).
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn epilogue(epilogue: &Epilogue, co: usize, block: &mut [f32], dst: &mut [f32], dst_stride: usize) {
    let (src, out) = (block.as_ptr(), dst.as_mut_ptr());
    let mut sum = _mm512_setzero_ps();
    // SAFETY (whole body): `block` holds co * BLOCK values and `dst` reaches
    // (co - 1) * dst_stride + BLOCK, both asserted by the dispatch.
    unsafe {
        for c in 0..co {
            let v = activate(epilogue.activation, _mm512_loadu_ps(src.add(c * BLOCK)));
            _mm512_storeu_ps(out.add(c * dst_stride), v);
            sum = _mm512_add_ps(sum, v);
        }
        normalize(epilogue, co, out, (dst_stride, 0), [sum]);
    }
}

/// The 6 transformed vectors (16 tiles each) of channel `c` of block `b` (B^T d; see the
/// portable `block_points`).
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
pub unsafe fn block_points(src: &[f32], c: usize, pitch: usize, b: usize) -> [__m512; POINTS] {
    let k = |v: f32| _mm512_set1_ps(v);
    // SAFETY: the reads stay inside channel c (stored tiles up to b * 16 + 17 < pitch), as the
    // dispatch asserts.
    unsafe {
        let phase = |i: usize, first: usize| {
            _mm512_loadu_ps(src.as_ptr().add((super::TILE * c + i) * pitch + first + b * BLOCK))
        };
        let (d0, d1, d2) = (phase(3, 0), phase(0, 1), phase(1, 1));
        let (d3, d4, d5) = (phase(2, 1), phase(3, 1), phase(0, 2));
        let (d4_d2, d4_d3) = (_mm512_sub_ps(d4, d2), _mm512_sub_ps(d4, d3));
        let (d1_d2, d3_d1) = (_mm512_sub_ps(d1, d2), _mm512_sub_ps(d3, d1));
        [
            _mm512_fmadd_ps(k(4.0), d0, _mm512_fmadd_ps(k(-5.0), d2, d4)),
            _mm512_fmadd_ps(k(-4.0), _mm512_add_ps(d1, d2), _mm512_add_ps(d3, d4)),
            _mm512_fmadd_ps(k(4.0), d1_d2, d4_d3),
            _mm512_fmadd_ps(k(2.0), d3_d1, d4_d2),
            _mm512_fmadd_ps(k(-2.0), d3_d1, d4_d2),
            _mm512_fmadd_ps(k(4.0), d1, _mm512_fmadd_ps(k(-5.0), d3, d5)),
        ]
    }
}

#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn transform_row(src: &[f32], channels: usize, pitch: usize, tiles: usize, dst: &mut [f32]) {
    for b in 0..tiles / BLOCK {
        for c in 0..channels {
            // SAFETY: reads as in `block_points`; writes inside block b of `dst` (asserted by
            // the dispatch).
            unsafe {
                let points = block_points(src, c, pitch, b);
                let out = dst.as_mut_ptr().add(b * POINTS * channels * BLOCK + c * BLOCK);
                for (m, v) in points.into_iter().enumerate() {
                    _mm512_storeu_ps(out.add(m * channels * BLOCK), v);
                }
            }
        }
    }
}

/// The 4:2:0 store compiled for AVX-512, with the AVX2 path's line transposes and chroma rows
/// (the same bits as the portable code: no contraction).
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn store_yuv420(seg: Segment, r: usize, target: &YuvPlanes, out_w: usize, h: usize, lines: &mut StoreLines) {
    // SAFETY: AVX-512F detected, which this path's detection checks with AVX2 (the line
    // transposes' and chroma rows' instruction set).
    unsafe {
        use super::avx2::{chroma_row, shuffle_line};
        super::super::store::yuv420(seg, r, target, out_w, h, shuffle_line, chroma_row, lines)
    }
}

/// The interleaved 8-bit store compiled for AVX-512, with the AVX2 path's line transposes
/// (integer rounding: the same bytes on every path).
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn store_rgb8(seg: Segment, r: usize, out: Shared<u8>, out_w: usize, h: usize) {
    // SAFETY: as for the 4:2:0 store.
    unsafe { super::super::store::rgb8(seg, r, out, out_w, h, super::avx2::shuffle_line) }
}

/// The float store compiled for AVX-512, with the AVX2 path's line transposes.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn store_float(seg: Segment, r: usize, out: Shared<f32>, out_w: usize, h: usize, lines: &mut StoreLines) {
    // SAFETY: as for the 4:2:0 store.
    unsafe { super::super::store::store_shuffled(seg, r, out, out_w, h, super::avx2::shuffle_line, lines) }
}
