//! AVX-512F: 16 lanes, each block of 16 tiles one vector. With 32 registers a pass holds 24
//! output channels (4 weight panels of 6) at a point, so each input vector loaded feeds 24
//! FMAs (AVX2: 12). The epilogue and the output transform also serve the AMX path.

use super::super::math::{ERF_ALPHA, ERF_BETA};
use super::super::store::{Segment, Shared, StoreLines, YuvPlanes};
use super::super::winograd::{POINTS, ROW_QUAD, TILE};
use super::{
    BLOCK, ConvOutput, Epilogue, GROUP, LN_EPS, LRELU_SLOPE, Layer, QUAD_CHANNELS_PER_PASS, QUAD_POINT_PRODUCTS,
    QUAD_SUMS,
};
use crate::model::Activation;
use std::arch::x86_64::*;

/// Weight panels (of [`GROUP`] channels) accumulated in one pass: 24 accumulators.
const PANELS_PER_PASS: usize = QUAD_CHANNELS_PER_PASS / GROUP;

/// Four output rows from six input rows over `blocks` blocks of tiles (see
/// [`super::conv_rows`]), block by block, into blocks or, with the epilogue, into the split rows
/// ([`ConvOutput`]): per chunk of 24 output channels and point, the point's six vertical points
/// (B^T of F(4,3) down the columns, made by the first chunk and read again by the others),
/// their products (24 accumulators, each input vector loaded feeding 24 FMAs), and A^T down the
/// columns while the products are in L1; at the chunk's end A^T along the rows. 36 products a
/// tile of 4 x 4 pixels, where F(2,3) down the columns took 48.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn conv_quad(
    layer: &Layer,
    weights: &[f32],
    rows: [&[f32]; POINTS],
    blocks: usize,
    mut out: ConvOutput,
    scratch: &mut [f32],
) {
    let (ci, co) = (layer.ci, layer.co);
    let groups = co / GROUP;
    // The column outputs of a chunk (`[row][point][channel][16 tiles]`), one point's products
    // (`[v][channel][16 tiles]`), then the vertical points (`[point][v][ci][16 tiles]`).
    let (sums, scratch) = scratch.split_at_mut(QUAD_SUMS);
    let (products, columns) = scratch.split_at_mut(QUAD_POINT_PRODUCTS);
    let (sums, products, columns) = (sums.as_mut_ptr(), products.as_mut_ptr(), columns.as_mut_ptr());
    let input_len = POINTS * ci * BLOCK;
    for b in 0..blocks {
        let rows = rows.map(|row| &row[b * input_len..]);
        // With the epilogue fused: each row's sums over the channels per phase, across chunks.
        let mut phase_sums = [[_mm512_setzero_ps(); TILE]; ROW_QUAD];
        for first in (0..groups).step_by(PANELS_PER_PASS) {
            let panels = (groups - first).min(PANELS_PER_PASS);
            let chunk_channels = panels * GROUP;
            for m in 0..POINTS {
                // SAFETY: point m's vertical points, inside the scratch (asserted by the caller).
                let columns = unsafe { columns.add(m * POINTS * ci * BLOCK) };
                if first == 0 {
                    for i in 0..ci {
                        // SAFETY: the rows hold POINTS * ci * BLOCK values from block b on, the
                        // vertical points POINTS * POINTS * ci * BLOCK (asserted by the caller).
                        unsafe {
                            let d = rows.map(|row| _mm512_loadu_ps(row.as_ptr().add((m * ci + i) * BLOCK)));
                            for (v, x) in input_points(d).into_iter().enumerate() {
                                _mm512_storeu_ps(columns.add((v * ci + i) * BLOCK), x);
                            }
                        }
                    }
                }
                for (v, row) in rows.iter().enumerate() {
                    if first == 0 {
                        // The next point's inputs (the next block's first after the last
                        // point), a row's lines after each vertical point's products: read
                        // from L2 or beyond, they held the vertical points up when left to the
                        // hardware's prefetcher.
                        let next = row.as_ptr().wrapping_add((m + 1) * ci * BLOCK);
                        for i in 0..ci {
                            // A prefetch reads nothing and never faults (the address made with
                            // wrapping_add).
                            _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(i * BLOCK) as *const i8);
                        }
                    }
                    // SAFETY: the panels of (v, m) from group `first` on hold panels * ci *
                    // GROUP weights (the packing); the vertical point ci * BLOCK values; the
                    // products' slot inside QUAD_POINT_PRODUCTS.
                    unsafe {
                        let panel = weights.as_ptr().add(((v * POINTS + m) * groups + first) * ci * GROUP);
                        let (input, dst) = (columns.add(v * ci * BLOCK), products.add(v * chunk_channels * BLOCK));
                        match panels {
                            4 => quad_products::<4>(panel, input, ci, dst),
                            3 => quad_products::<3>(panel, input, ci, dst),
                            2 => quad_products::<2>(panel, input, ci, dst),
                            _ => quad_products::<1>(panel, input, ci, dst),
                        }
                    }
                }
                for c in 0..chunk_channels {
                    // SAFETY: the products written above; the sums inside QUAD_SUMS.
                    unsafe {
                        let p =
                            std::array::from_fn(|v| _mm512_loadu_ps(products.add((v * chunk_channels + c) * BLOCK)));
                        for (row, y) in output_points(p).into_iter().enumerate() {
                            _mm512_storeu_ps(sums.add(((row * POINTS + m) * chunk_channels + c) * BLOCK), y);
                        }
                    }
                }
            }
            // A^T of F(4,3) along the rows: each row's 6 column outputs of a channel to its 4
            // pixels, channel by channel in order (the epilogue's sums go in that order).
            for c in 0..chunk_channels {
                let channel = first * GROUP + c;
                let bias = _mm512_set1_ps(layer.bias[channel]);
                for (row, phase_sum) in phase_sums.iter_mut().enumerate() {
                    // SAFETY: the sums written above for every point; the writes inside the
                    // blocks or split rows of the step (asserted by the dispatch).
                    unsafe {
                        let points = std::array::from_fn(|m| {
                            _mm512_loadu_ps(sums.add(((row * POINTS + m) * chunk_channels + c) * BLOCK))
                        });
                        let pixels = row_pixels(points, bias);
                        match &mut out {
                            ConvOutput::Blocks(out) => {
                                let dst = out.as_mut_ptr().add((b * ROW_QUAD + row) * TILE * co * BLOCK);
                                for (phase, y) in pixels.into_iter().enumerate() {
                                    _mm512_storeu_ps(dst.add((phase * co + channel) * BLOCK), y);
                                }
                            }
                            ConvOutput::Split { rows, row_len, pitch } => {
                                let dst = rows
                                    .as_mut_ptr()
                                    .add(row * *row_len + channel * TILE * *pitch + b * BLOCK);
                                activate_into(layer, pixels, dst, *pitch, phase_sum);
                            }
                        }
                    }
                }
            }
        }
        if let ConvOutput::Split { rows, row_len, pitch } = &mut out {
            for (row, sum) in phase_sums.into_iter().enumerate() {
                // SAFETY: every channel's activated values of block b were stored above.
                unsafe {
                    let dst = rows.as_mut_ptr().add(row * *row_len + b * BLOCK);
                    normalize(&layer.epilogue, co, dst, (TILE * *pitch, *pitch), sum)
                };
            }
        }
    }
}

/// The products of `P` weight panels (6 channels each, ci x 6 weights one after another) with
/// one vertical point (ci x 16 tiles) over K = ci, stored `[channel][16 tiles]` at `dst`.
///
/// # Safety
/// `panels` holds P * ci * GROUP weights, `input` ci * BLOCK values, `dst` P * GROUP * BLOCK.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
// Index loops on purpose: with the accumulators stored at the end through an iterator (as
// clippy suggests), LLVM kept them in registers but also stored each to the stack after every
// FMA (measured 1.3x slower a frame; `objdump` shows the stores).
#[allow(clippy::needless_range_loop)]
unsafe fn quad_products<const P: usize>(panels: *const f32, input: *const f32, ci: usize, dst: *mut f32) {
    let mut acc = [[_mm512_setzero_ps(); GROUP]; P];
    // SAFETY (whole body): the caller's contract.
    unsafe {
        for i in 0..ci {
            let x = _mm512_loadu_ps(input.add(i * BLOCK));
            for g in 0..P {
                let w = panels.add((g * ci + i) * GROUP);
                for c in 0..GROUP {
                    acc[g][c] = _mm512_fmadd_ps(_mm512_set1_ps(*w.add(c)), x, acc[g][c]);
                }
            }
        }
        for g in 0..P {
            for c in 0..GROUP {
                _mm512_storeu_ps(dst.add((g * GROUP + c) * BLOCK), acc[g][c]);
            }
        }
    }
}

/// B^T of F(4,3) on 16 tiles: six inputs to their six points (see the portable `input_points`).
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn input_points([d0, d1, d2, d3, d4, d5]: [__m512; 6]) -> [__m512; POINTS] {
    let k = |v: f32| _mm512_set1_ps(v);
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

/// A^T of F(4,3) on 16 tiles: six products to their four outputs (see the portable
/// `output_pixels`).
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
fn output_points(m: [__m512; POINTS]) -> [__m512; TILE] {
    let (s12, d12) = (_mm512_add_ps(m[1], m[2]), _mm512_sub_ps(m[1], m[2]));
    let (s34, d34) = (_mm512_add_ps(m[3], m[4]), _mm512_sub_ps(m[3], m[4]));
    [
        _mm512_add_ps(m[0], _mm512_add_ps(s12, s34)),
        _mm512_fmadd_ps(_mm512_set1_ps(2.0), d34, d12),
        _mm512_fmadd_ps(_mm512_set1_ps(4.0), s34, s12),
        _mm512_fmadd_ps(_mm512_set1_ps(8.0), d34, _mm512_add_ps(d12, m[5])),
    ]
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
/// groups of tile products, so that some of these vector instructions execute while the tile
/// unit works (see [`super::amx::conv_blocks`]).
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
    /// Always inlined, into the AMX pass's steps (compiled for AVX-512, so that its intrinsics
    /// are inlined too): as a `target_feature` function of its own, LLVM's choice to inline it
    /// went either way as unrelated code changed, and a call per group of tile products left
    /// 22 % of a 720p stream's samples in it (`perf`, x3).
    ///
    /// # Safety
    /// AVX-512F; the contract of [`PassFinish::new`].
    #[inline(always)]
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
    // GELU(v) = v (1/2 + erf(x) / 2) with x = v / sqrt(2), erf(x) = x p(x^2) / q(x^2): the
    // polynomials taken in y = v^2 (coefficient k over 2^k), the factor 1 / (2 sqrt(2)) into p,
    // so that no product of v by a constant is left (19 vector instructions instead of 21).
    let bound = 4.0 * std::f32::consts::SQRT_2;
    let vc = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-bound)), _mm512_set1_ps(bound));
    let y = _mm512_mul_ps(vc, vc);
    // Coefficient i of `coefficients` (highest power first) over 2^power, times `scale`.
    let scaled = |coefficients: &[f32], i: usize, scale: f32| {
        let power = (coefficients.len() - 1 - i) as i32;
        _mm512_set1_ps(coefficients[i] * 0.5f32.powi(power) * scale)
    };
    let half_over_sqrt2 = 0.5 * std::f32::consts::FRAC_1_SQRT_2;
    let mut p = scaled(&ERF_ALPHA, 0, half_over_sqrt2);
    for i in 1..ERF_ALPHA.len() {
        p = _mm512_fmadd_ps(p, y, scaled(&ERF_ALPHA, i, half_over_sqrt2));
    }
    let mut q = scaled(&ERF_BETA, 0, 1.0);
    for i in 1..ERF_BETA.len() {
        q = _mm512_fmadd_ps(q, y, scaled(&ERF_BETA, i, 1.0));
    }
    // p / q by a 14-bit reciprocal estimate and one Newton step (~28 bits): a division would
    // hold the divider for several cycles per vector. q <= -0.014 everywhere.
    let r = _mm512_rcp14_ps(q);
    let r = _mm512_mul_ps(r, _mm512_fnmadd_ps(q, r, _mm512_set1_ps(2.0)));
    // 1/2 + erf(x) / 2 = 1/2 + vc p r.
    _mm512_mul_ps(v, _mm512_fmadd_ps(_mm512_mul_ps(vc, p), r, _mm512_set1_ps(0.5)))
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
    // SAFETY: the reads stay inside channel c (stored tiles up to b * 16 + 17 < pitch), as the
    // dispatch asserts.
    unsafe {
        let phase = |i: usize, first: usize| {
            _mm512_loadu_ps(src.as_ptr().add((super::TILE * c + i) * pitch + first + b * BLOCK))
        };
        // Pixels 4t - 1 .. 4t + 4: phase 3 of tile t - 1, phases 0-3 of tile t, phase 0 of
        // tile t + 1 (each stored one place on).
        let (d0, d1, d2) = (phase(3, 0), phase(0, 1), phase(1, 1));
        let (d3, d4, d5) = (phase(2, 1), phase(3, 1), phase(0, 2));
        input_points([d0, d1, d2, d3, d4, d5])
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
    // transposes' instruction set).
    unsafe { super::super::store::yuv420(seg, r, target, out_w, h, super::avx2::shuffle_line, lines) }
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
