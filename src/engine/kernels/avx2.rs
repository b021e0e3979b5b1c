//! AVX2 + FMA: 8 lanes, each block of 16 tiles as two vectors.

use super::super::math::{ERF_ALPHA, ERF_BETA};
use super::super::store::{self, LINE, Segment, Shared, StoreLines, YuvPlanes};
use super::super::winograd::{POINTS, ROW_QUAD, TILE};
use super::{
    BLOCK, Epilogue, GROUP, LN_EPS, LRELU_SLOPE, Layer, QUAD_CHANNELS_PER_PASS, QUAD_POINT_PRODUCTS, QUAD_SUMS,
};
use crate::model::Activation;
use std::arch::x86_64::*;

/// Groups computed point by point before the output transform: the point's weight panels
/// (ci * 24 floats) and vertical points stay in L1 while all groups use them.
const GROUPS_PER_CHUNK: usize = QUAD_CHANNELS_PER_PASS / GROUP;

/// Four output rows from six input rows over `blocks` blocks of tiles (see
/// [`super::conv_rows`]), block by block.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn conv_quad(
    layer: &Layer,
    weights: &[f32],
    rows: [&[f32]; POINTS],
    blocks: usize,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let (input_len, output_len) = (POINTS * layer.ci * BLOCK, ROW_QUAD * TILE * layer.co * BLOCK);
    for b in 0..blocks {
        let rows = rows.map(|row| &row[b * input_len..]);
        // SAFETY: the caller's bounds, block b's part of them.
        unsafe { conv_quad_block(layer, weights, rows, &mut out[b * output_len..], scratch) };
    }
}

/// Four output rows from six input rows over one block of tiles: per chunk of 24 output
/// channels and point, the point's six vertical points (B^T of F(4,3) down the columns), their
/// products, and A^T down the columns while the products are in L1; at the chunk's end A^T
/// along the rows.
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_quad_block(
    layer: &Layer,
    weights: &[f32],
    rows: [&[f32]; POINTS],
    blocks: &mut [f32],
    scratch: &mut [f32],
) {
    let (ci, co) = (layer.ci, layer.co);
    let groups = co / GROUP;
    // The column outputs of a chunk (`[row][point][channel][16 tiles]`), one point's products
    // (`[v][channel][16 tiles]`), then the vertical points (`[point][v][ci][16 tiles]`), made
    // by the first chunk point by point (used at once, from L1) and read again by the others.
    let (sums, scratch) = scratch.split_at_mut(QUAD_SUMS);
    let (products, columns) = scratch.split_at_mut(QUAD_POINT_PRODUCTS);
    let (sums, products, columns, out) = (
        sums.as_mut_ptr(),
        products.as_mut_ptr(),
        columns.as_mut_ptr(),
        blocks.as_mut_ptr(),
    );
    let chunk_channels = GROUPS_PER_CHUNK * GROUP;
    for chunk in (0..groups).step_by(GROUPS_PER_CHUNK) {
        let chunk_groups = GROUPS_PER_CHUNK.min(groups - chunk);
        for m in 0..POINTS {
            // SAFETY: point m's vertical points, inside the scratch (asserted by the caller).
            let columns = unsafe { columns.add(m * POINTS * ci * BLOCK) };
            if chunk == 0 {
                for i in 0..ci {
                    for half in [0, 8] {
                        // SAFETY: the rows hold POINTS * ci * BLOCK values, the vertical points
                        // POINTS * POINTS * ci * BLOCK (asserted by the caller).
                        unsafe {
                            let d = rows.map(|row| _mm256_loadu_ps(row.as_ptr().add((m * ci + i) * BLOCK + half)));
                            for (v, x) in input_points8(d).into_iter().enumerate() {
                                _mm256_storeu_ps(columns.add((v * ci + i) * BLOCK + half), x);
                            }
                        }
                    }
                }
            }
            // The next point's inputs (the next block's first after the last point), a few
            // lines after each group's products: read from L2 or beyond, they held the
            // vertical points' loop up when left to the hardware's prefetcher.
            let next_lines = POINTS * ci;
            let per_call = next_lines.div_ceil(POINTS * chunk_groups);
            let mut next_line = 0;
            for v in 0..POINTS {
                for gi in 0..chunk_groups {
                    if chunk == 0 {
                        for line in next_line..(next_line + per_call).min(next_lines) {
                            let (r, l) = (line / ci, line % ci);
                            let at = rows[r].as_ptr().wrapping_add(((m + 1) * ci + l) * BLOCK);
                            // A prefetch reads nothing and never faults (safe, the address
                            // made with wrapping_add).
                            _mm_prefetch::<_MM_HINT_T0>(at as *const i8);
                        }
                        next_line += per_call;
                    }
                    // SAFETY: bounds asserted by the caller; the panel holds ci * GROUP weights,
                    // the vertical point ci * BLOCK values.
                    let (lo, hi) = unsafe {
                        let panel = weights
                            .as_ptr()
                            .add((((v * POINTS + m) * groups) + chunk + gi) * ci * GROUP);
                        group_products(panel, columns.add(v * ci * BLOCK), ci)
                    };
                    for c in 0..GROUP {
                        let at = (v * chunk_channels + gi * GROUP + c) * BLOCK;
                        // SAFETY: inside this point's products (asserted by the caller).
                        unsafe {
                            _mm256_storeu_ps(products.add(at), lo[c]);
                            _mm256_storeu_ps(products.add(at + 8), hi[c]);
                        }
                    }
                }
            }
            for c in 0..chunk_groups * GROUP {
                for half in [0, 8] {
                    // SAFETY: the products written above; the sums inside QUAD_SUMS.
                    unsafe {
                        let p = std::array::from_fn(|v| {
                            _mm256_loadu_ps(products.add((v * chunk_channels + c) * BLOCK + half))
                        });
                        for (row, y) in output_points8(p).into_iter().enumerate() {
                            _mm256_storeu_ps(sums.add(((row * POINTS + m) * chunk_channels + c) * BLOCK + half), y);
                        }
                    }
                }
            }
        }
        // A^T of F(4,3) along the rows: each row's 6 column outputs of a channel to its 4 pixels.
        for c in 0..chunk_groups * GROUP {
            let channel = chunk * GROUP + c;
            let bias = _mm256_set1_ps(layer.bias[channel]);
            for row in 0..ROW_QUAD {
                for half in [0, 8] {
                    // SAFETY: written above for every point; the stores inside `blocks` (four
                    // blocks, asserted by the caller).
                    unsafe {
                        let points = std::array::from_fn(|m| {
                            _mm256_loadu_ps(sums.add(((row * POINTS + m) * chunk_channels + c) * BLOCK + half))
                        });
                        for (phase, y) in row_pixels(points, bias).into_iter().enumerate() {
                            _mm256_storeu_ps(out.add((row * TILE * co + phase * co + channel) * BLOCK + half), y);
                        }
                    }
                }
            }
        }
    }
}

/// B^T of F(4,3) on 8 tiles: six inputs to their six points ([`input_points`]).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn input_points8([d0, d1, d2, d3, d4, d5]: [__m256; 6]) -> [__m256; POINTS] {
    let k = |v: f32| _mm256_set1_ps(v);
    let (d4_d2, d4_d3) = (_mm256_sub_ps(d4, d2), _mm256_sub_ps(d4, d3));
    let (d1_d2, d3_d1) = (_mm256_sub_ps(d1, d2), _mm256_sub_ps(d3, d1));
    [
        _mm256_fmadd_ps(k(4.0), d0, _mm256_fmadd_ps(k(-5.0), d2, d4)),
        _mm256_fmadd_ps(k(-4.0), _mm256_add_ps(d1, d2), _mm256_add_ps(d3, d4)),
        _mm256_fmadd_ps(k(4.0), d1_d2, d4_d3),
        _mm256_fmadd_ps(k(2.0), d3_d1, d4_d2),
        _mm256_fmadd_ps(k(-2.0), d3_d1, d4_d2),
        _mm256_fmadd_ps(k(4.0), d1, _mm256_fmadd_ps(k(-5.0), d3, d5)),
    ]
}

/// A^T of F(4,3) on 8 tiles: six products to their four outputs ([`output_pixels`]).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn output_points8(m: [__m256; POINTS]) -> [__m256; TILE] {
    let (s12, d12) = (_mm256_add_ps(m[1], m[2]), _mm256_sub_ps(m[1], m[2]));
    let (s34, d34) = (_mm256_add_ps(m[3], m[4]), _mm256_sub_ps(m[3], m[4]));
    [
        _mm256_add_ps(m[0], _mm256_add_ps(s12, s34)),
        _mm256_fmadd_ps(_mm256_set1_ps(2.0), d34, d12),
        _mm256_fmadd_ps(_mm256_set1_ps(4.0), s34, s12),
        _mm256_fmadd_ps(_mm256_set1_ps(8.0), d34, _mm256_add_ps(d12, m[5])),
    ]
}

/// A^T of F(4,3) plus bias: a channel's 6 products at 8 tiles to its 4 pixels. Point 1 enters
/// every output with weight 1, so the bias is added to it alone.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn row_pixels(mut m: [__m256; POINTS], bias: __m256) -> [__m256; TILE] {
    m[1] = _mm256_add_ps(m[1], bias);
    output_points8(m)
}

/// One group's products at one vertical point and point: 6 channels x 16 tiles (12
/// accumulators) over K = ci.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn group_products(panel: *const f32, input: *const f32, ci: usize) -> ([__m256; GROUP], [__m256; GROUP]) {
    let mut lo = [_mm256_setzero_ps(); GROUP];
    let mut hi = [_mm256_setzero_ps(); GROUP];
    // SAFETY: the caller passes a panel of ci * GROUP weights and ci * BLOCK values.
    unsafe {
        for i in 0..ci {
            let (v0, v1) = (
                _mm256_loadu_ps(input.add(i * BLOCK)),
                _mm256_loadu_ps(input.add(i * BLOCK + 8)),
            );
            let wk = panel.add(i * GROUP);
            for c in 0..GROUP {
                let w = _mm256_broadcast_ss(&*wk.add(c));
                lo[c] = _mm256_fmadd_ps(w, v0, lo[c]);
                hi[c] = _mm256_fmadd_ps(w, v1, hi[c]);
            }
        }
    }
    (lo, hi)
}

/// 12 independent chains of 8-wide FMAs: enough to cover the FMA latency on two pipes.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn fma_burst() -> u64 {
    let iters = 1u64 << 16;
    let mut acc = [_mm256_set1_ps(1.0); 12];
    let m = _mm256_set1_ps(0.999_999);
    let a = _mm256_set1_ps(1e-7);
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, m, a);
        }
    }
    std::hint::black_box(acc);
    iters * 12 * 8
}

#[target_feature(enable = "avx2,fma")]
unsafe fn gelu8(v: __m256) -> __m256 {
    let x = _mm256_mul_ps(v, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-4.0)), _mm256_set1_ps(4.0));
    let x2 = _mm256_mul_ps(x, x);
    let mut p = _mm256_set1_ps(ERF_ALPHA[0]);
    for &c in &ERF_ALPHA[1..] {
        p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(c));
    }
    let mut q = _mm256_set1_ps(ERF_BETA[0]);
    for &c in &ERF_BETA[1..] {
        q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(c));
    }
    // p / q by a reciprocal estimate and one Newton step (~23 bits): a division would
    // hold the divider for several cycles per vector. q <= -0.014 everywhere.
    let r = _mm256_rcp_ps(q);
    let r = _mm256_mul_ps(r, _mm256_fnmadd_ps(q, r, _mm256_set1_ps(2.0)));
    let erf = _mm256_mul_ps(_mm256_mul_ps(x, p), r);
    let half_v = _mm256_mul_ps(v, _mm256_set1_ps(0.5));
    _mm256_fmadd_ps(half_v, erf, half_v)
}

#[target_feature(enable = "avx2,fma")]
pub unsafe fn epilogue(epilogue: &Epilogue, co: usize, block: &mut [f32], dst: &mut [f32], dst_stride: usize) {
    let src = block.as_mut_ptr();
    let out = dst.as_mut_ptr();
    // SAFETY (whole body): `block` holds co * BLOCK values and `dst` reaches
    // (co - 1) * dst_stride + BLOCK, both asserted by the caller.
    unsafe {
        let activate = |v: __m256| match epilogue.activation {
            None => v,
            Some(Activation::Gelu) => gelu8(v),
            Some(Activation::Relu) => _mm256_max_ps(v, _mm256_setzero_ps()),
            Some(Activation::Lrelu) => {
                let neg = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
                _mm256_blendv_ps(v, _mm256_mul_ps(v, _mm256_set1_ps(LRELU_SLOPE)), neg)
            }
        };
        let Some((weight, bias)) = &epilogue.norm else {
            for c in 0..co {
                for half in [0, 8] {
                    let v = _mm256_loadu_ps(src.add(c * BLOCK + half));
                    _mm256_storeu_ps(out.add(c * dst_stride + half), activate(v));
                }
            }
            return;
        };
        if epilogue.activation.is_some() {
            for i in (0..co * BLOCK).step_by(8) {
                _mm256_storeu_ps(src.add(i), activate(_mm256_loadu_ps(src.add(i))));
            }
        }
        let n = _mm256_set1_ps(1.0 / co as f32);
        for half in [0, 8] {
            let mut sum = _mm256_setzero_ps();
            for c in 0..co {
                sum = _mm256_add_ps(sum, _mm256_loadu_ps(src.add(c * BLOCK + half)));
            }
            let mean = _mm256_mul_ps(sum, n);
            let mut sq = _mm256_setzero_ps();
            for c in 0..co {
                let d = _mm256_sub_ps(_mm256_loadu_ps(src.add(c * BLOCK + half)), mean);
                sq = _mm256_fmadd_ps(d, d, sq);
            }
            let var = _mm256_mul_ps(sq, n);
            let inv = _mm256_div_ps(
                _mm256_set1_ps(1.0),
                _mm256_sqrt_ps(_mm256_add_ps(var, _mm256_set1_ps(LN_EPS))),
            );
            for c in 0..co {
                let d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(src.add(c * BLOCK + half)), mean), inv);
                let r = _mm256_fmadd_ps(d, _mm256_set1_ps(weight[c]), _mm256_set1_ps(bias[c]));
                _mm256_storeu_ps(out.add(c * dst_stride + half), r);
            }
        }
    }
}

/// As the portable transform, 8 tiles at a time.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn transform_row(src: &[f32], channels: usize, pitch: usize, tiles: usize, dst: &mut [f32]) {
    for b in 0..tiles / BLOCK {
        for c in 0..channels {
            // SAFETY: the reads stay inside channel c (stored tiles up to b * 16 + 17 < pitch)
            // and the writes inside block b of `dst`, as the dispatch asserts.
            unsafe {
                let phase = |i: usize, first: usize| src.as_ptr().add((c * TILE + i) * pitch + first + b * BLOCK);
                let out = dst.as_mut_ptr().add(b * POINTS * channels * BLOCK + c * BLOCK);
                for half in [0, 8] {
                    // Pixels 4t - 1 .. 4t + 5 of 8 tiles: phase 3 of the tile before, the
                    // tile's four phases, phase 0 of the tile after.
                    let points = input_points8(
                        [(3, 0), (0, 1), (1, 1), (2, 1), (3, 1), (0, 2)]
                            .map(|(i, first)| _mm256_loadu_ps(phase(i, first).add(half))),
                    );
                    for (m, v) in points.into_iter().enumerate() {
                        _mm256_storeu_ps(out.add(m * channels * BLOCK + half), v);
                    }
                }
            }
        }
    }
}

/// The 4:2:0 store compiled for AVX2 (the same bits as the portable code: no contraction).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn store_yuv420(seg: Segment, r: usize, target: &YuvPlanes, out_w: usize, h: usize, lines: &mut StoreLines) {
    // SAFETY: AVX2 detected (the caller's contract).
    unsafe { store::yuv420(seg, r, target, out_w, h, shuffle_line, lines) }
}

/// The interleaved 8-bit store compiled for AVX2 (integer rounding: the same bytes on every path).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn store_rgb8(seg: Segment, r: usize, out: Shared<u8>, out_w: usize, h: usize) {
    // SAFETY: AVX2 detected (the caller's contract).
    unsafe { store::rgb8(seg, r, out, out_w, h, shuffle_line) }
}

/// The float store compiled for AVX2.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn store_float(seg: Segment, r: usize, out: Shared<f32>, out_w: usize, h: usize, lines: &mut StoreLines) {
    // SAFETY: AVX2 detected (the caller's contract).
    unsafe { store::store_shuffled(seg, r, out, out_w, h, shuffle_line, lines) }
}

/// [`store::shuffle_line`] as 8 x 8 transposes in registers (4r rows of the segment's channel
/// matrix: a multiple of 8 for the even shuffle factors, of 4 for the odd ones the 4:2:0
/// store's chroma takes, whose last four rows go by 4 x 8 transposes): a load and a store per 8
/// floats and 3 shuffles each, where the scalar form loads and stores each float (the scatter
/// was most of the float store's time).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn shuffle_line(seg: &Segment, ch: usize, i: usize, r: usize, line: &mut [f32; LINE]) {
    let rows = TILE * r;
    let out = line.as_mut_ptr();
    let first = (ch * r + i) * r;
    // Row q = phase * r + j of the matrix, counted along without a division per row.
    let (mut phase, mut j) = (0, 0);
    let mut next_channel = || {
        let values = seg.channel(phase, first + j);
        j += 1;
        if j == r {
            (phase, j) = (phase + 1, 0);
        }
        values
    };
    for q0 in (0..rows - rows % 8).step_by(8) {
        let channels: [&[f32; BLOCK]; 8] = std::array::from_fn(|_| next_channel());
        for p0 in (0..BLOCK).step_by(8) {
            // SAFETY: each channel holds BLOCK values (p0 + 8 <= BLOCK); the line's rows p0 + k
            // of `rows` floats end inside it (16 * 4r <= LINE).
            unsafe {
                let m = channels.map(|values| _mm256_loadu_ps(values.as_ptr().add(p0)));
                for (k, column) in transpose8(m).into_iter().enumerate() {
                    _mm256_storeu_ps(out.add((p0 + k) * rows + q0), column);
                }
            }
        }
    }
    if rows % 8 == 4 {
        let q0 = rows - 4;
        let channels: [&[f32; BLOCK]; 4] = std::array::from_fn(|_| next_channel());
        for p0 in (0..BLOCK).step_by(8) {
            // SAFETY: as above, 4 floats of each of the line's rows p0 .. p0 + 8.
            unsafe {
                let [a, b, c, d] = channels.map(|values| _mm256_loadu_ps(values.as_ptr().add(p0)));
                // Per 128-bit lane, rows interleaved in pairs, then the pairs: u[k] holds
                // column k in its low half and column k + 4 in its high half.
                let (ab_lo, ab_hi) = (_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
                let (cd_lo, cd_hi) = (_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
                let u = [
                    _mm256_shuffle_ps::<0x44>(ab_lo, cd_lo),
                    _mm256_shuffle_ps::<0xEE>(ab_lo, cd_lo),
                    _mm256_shuffle_ps::<0x44>(ab_hi, cd_hi),
                    _mm256_shuffle_ps::<0xEE>(ab_hi, cd_hi),
                ];
                for (k, column) in u.into_iter().enumerate() {
                    _mm_storeu_ps(out.add((p0 + k) * rows + q0), _mm256_castps256_ps128(column));
                    _mm_storeu_ps(out.add((p0 + k + 4) * rows + q0), _mm256_extractf128_ps::<1>(column));
                }
            }
        }
    }
}

/// [`super::unshuffle_samples`] 8 tiles at a time: their 64 samples as 8 rows of 8, transposed
/// in registers, so that each phase's 8 values go in one store (one by one, the samples were
/// 2 % of a 720p y4m stream's time at x3, `perf`); the tiles left over as the portable code.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn unshuffle_samples(row: &[f32], split: &mut [f32], channel_len: usize, pitch: usize) {
    let groups = row.len() / (8 * 2 * TILE);
    let out = split.as_mut_ptr();
    for g in 0..groups {
        // SAFETY: samples 64g .. 64g + 64 lie inside `row` (`groups`); stored tiles 8g + 1 ..
        // 8g + 9 of every phase of both channels inside `split` (the dispatch's assert).
        unsafe {
            let m = std::array::from_fn(|k| _mm256_loadu_ps(row.as_ptr().add((8 * g + k) * 2 * TILE)));
            for (s, values) in transpose8(m).into_iter().enumerate() {
                _mm256_storeu_ps(out.add((s % 2) * channel_len + (s / 2) * pitch + 1 + 8 * g), values);
            }
        }
    }
    super::portable::unshuffle_samples(row, split, channel_len, pitch, 8 * groups);
}

/// The transpose of an 8 x 8 matrix of floats held as 8 rows.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn transpose8(m: [__m256; 8]) -> [__m256; 8] {
    // Pairs of rows interleaved, then quads, then the 128-bit halves exchanged.
    let t: [__m256; 8] = std::array::from_fn(|k| {
        let (a, b) = (m[k / 2 * 2], m[k / 2 * 2 + 1]);
        if k % 2 == 0 {
            _mm256_unpacklo_ps(a, b)
        } else {
            _mm256_unpackhi_ps(a, b)
        }
    });
    let u: [__m256; 8] = std::array::from_fn(|k| {
        // Quad q = k / 4 of rows; within it, k % 4 picks (unpack lo/hi) x (shuffle lo/hi).
        let (base, half) = (k / 4 * 4, k % 4);
        let (a, b) = (t[base + half / 2], t[base + 2 + half / 2]);
        if half % 2 == 0 {
            _mm256_shuffle_ps::<0x44>(a, b)
        } else {
            _mm256_shuffle_ps::<0xEE>(a, b)
        }
    });
    // u[0..4] hold columns 0..4 of rows 0..4 (and 4..8 in their high halves); u[4..8] the same
    // of rows 4..8.
    std::array::from_fn(|k| {
        let (a, b) = (u[k % 4], u[4 + k % 4]);
        if k < 4 {
            _mm256_permute2f128_ps::<0x20>(a, b)
        } else {
            _mm256_permute2f128_ps::<0x31>(a, b)
        }
    })
}
