//! The convolution block kernel and the fused epilogue, in AVX2+FMA and in portable Rust.
//!
//! A block is 16 consecutive Winograd tiles of one row (64 output pixels) and every output
//! channel, written phase by phase: `block[(phase * co + c) * 16 + p]` is channel `c` of pixel
//! `4 * (t0 + p) + phase`. It reads the block's part of three transformed input rows (above,
//! at, below), each `[point][ci][16 tiles]` (see [`super::winograd`]).

use super::math::{ERF_ALPHA, ERF_BETA, gelu};
use super::winograd::{POINTS, TILE, output_pixels};
use super::{BLOCK, Epilogue, Isa, Layer};
use crate::model::Activation;

/// Output channels accumulated together: 6 channels x 2 vectors of 8 tiles = 12 registers.
pub const GROUP: usize = 6;
/// Groups computed point by point before the output transform: the point's weight panels
/// (3 * ci * 24 floats) and input slices stay in L1 while all groups use them.
const GROUPS_PER_CHUNK: usize = 4;
/// Floats of scratch [`conv_block`] needs: a chunk's products at every point (passed in, as
/// zeroing a stack array per call showed up as a memset in profiles).
pub const SCRATCH_LEN: usize = POINTS * GROUPS_PER_CHUNK * GROUP * BLOCK;
const LN_EPS: f32 = 1e-6;
const LRELU_SLOPE: f32 = 0.05;

pub fn conv_block(isa: Isa, layer: &Layer, rows: [&[f32]; 3], block: &mut [f32], scratch: &mut [f32]) {
    assert!(layer.co.is_multiple_of(GROUP) && block.len() >= TILE * layer.co * BLOCK && scratch.len() >= SCRATCH_LEN);
    for row in rows {
        assert!(
            row.len() >= POINTS * layer.ci * BLOCK,
            "conv_block reads inside the rows"
        );
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2Fma` is only chosen after detecting both features; the reads are
        // bounded by the assert above.
        Isa::Avx2Fma => unsafe { avx2::conv_block(layer, rows, block, scratch) },
        _ => conv_block_portable(layer, rows, block),
    }
}

/// Applies the epilogue to one phase of a computed block (`co * BLOCK` values) and writes
/// channel `c` of the result to `dst[c * dst_stride..][..BLOCK]` (straight into the next
/// layer's phase-split row). `block` is used as scratch.
pub fn epilogue(isa: Isa, epilogue: &Epilogue, co: usize, block: &mut [f32], dst: &mut [f32], dst_stride: usize) {
    assert!(block.len() >= co * BLOCK && dst.len() >= (co - 1) * dst_stride + BLOCK);
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, the features were detected; the writes are bounded by the assert.
        Isa::Avx2Fma => unsafe { avx2::epilogue(epilogue, co, block, dst, dst_stride) },
        _ => epilogue_portable(epilogue, co, block, dst, dst_stride),
    }
}

fn conv_block_portable(layer: &Layer, rows: [&[f32]; 3], block: &mut [f32]) {
    let (ci, co) = (layer.ci, layer.co);
    let (groups, k) = (co / GROUP, 3 * ci);
    for g in 0..groups {
        let mut products = [[[0f32; BLOCK]; GROUP]; POINTS];
        for (m, acc) in products.iter_mut().enumerate() {
            let panel = &layer.weights[(m * groups + g) * k * GROUP..][..k * GROUP];
            for (ky, row) in rows.iter().enumerate() {
                for i in 0..ci {
                    let v = &row[(m * ci + i) * BLOCK..][..BLOCK];
                    let w = &panel[(ky * ci + i) * GROUP..][..GROUP];
                    for c in 0..GROUP {
                        for p in 0..BLOCK {
                            acc[c][p] += w[c] * v[p];
                        }
                    }
                }
            }
        }
        for (c, channel) in (g * GROUP..).take(GROUP).enumerate() {
            for p in 0..BLOCK {
                let pixels = output_pixels(std::array::from_fn(|m| products[m][c][p]));
                for (phase, y) in pixels.into_iter().enumerate() {
                    block[(phase * co + channel) * BLOCK + p] = y + layer.bias[channel];
                }
            }
        }
    }
}

fn epilogue_portable(epilogue: &Epilogue, co: usize, block: &mut [f32], dst: &mut [f32], dst_stride: usize) {
    if let Some(act) = epilogue.activation {
        for v in block[..co * BLOCK].iter_mut() {
            *v = match act {
                Activation::Gelu => gelu(*v),
                Activation::Relu => v.max(0.0),
                Activation::Lrelu => {
                    if *v < 0.0 {
                        *v * LRELU_SLOPE
                    } else {
                        *v
                    }
                }
            };
        }
    }
    if let Some((weight, bias)) = &epilogue.norm {
        for p in 0..BLOCK {
            let mean = (0..co).map(|c| block[c * BLOCK + p]).sum::<f32>() / co as f32;
            let var = (0..co).map(|c| (block[c * BLOCK + p] - mean).powi(2)).sum::<f32>() / co as f32;
            let inv = 1.0 / (var + LN_EPS).sqrt();
            for c in 0..co {
                dst[c * dst_stride + p] = (block[c * BLOCK + p] - mean) * inv * weight[c] + bias[c];
            }
        }
    } else {
        for c in 0..co {
            dst[c * dst_stride..][..BLOCK].copy_from_slice(&block[c * BLOCK..][..BLOCK]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn conv_block(layer: &Layer, rows: [&[f32]; 3], block: &mut [f32], scratch: &mut [f32]) {
        let (ci, co) = (layer.ci, layer.co);
        let (groups, k) = (co / GROUP, 3 * ci);
        let out = block.as_mut_ptr();
        for chunk in (0..groups).step_by(GROUPS_PER_CHUNK) {
            let chunk_groups = GROUPS_PER_CHUNK.min(groups - chunk);
            // Per point, per group of the chunk, per channel: 16 tiles, in `scratch`.
            let products = scratch.as_mut_ptr();
            let at = |m: usize, gi: usize, c: usize| ((m * GROUPS_PER_CHUNK + gi) * GROUP + c) * BLOCK;
            for m in 0..POINTS {
                for gi in 0..chunk_groups {
                    let mut lo = [_mm256_setzero_ps(); GROUP];
                    let mut hi = [_mm256_setzero_ps(); GROUP];
                    // SAFETY (whole loop): bounds asserted by the caller; the panel holds
                    // k * GROUP weights.
                    unsafe {
                        let panel = layer.weights.as_ptr().add((m * groups + chunk + gi) * k * GROUP);
                        for (ky, row) in rows.iter().enumerate() {
                            let base = row.as_ptr().add(m * ci * BLOCK);
                            let wrow = panel.add(ky * ci * GROUP);
                            for i in 0..ci {
                                let p = base.add(i * BLOCK);
                                let v0 = _mm256_loadu_ps(p);
                                let v1 = _mm256_loadu_ps(p.add(8));
                                let wk = wrow.add(i * GROUP);
                                for c in 0..GROUP {
                                    let w = _mm256_broadcast_ss(&*wk.add(c));
                                    lo[c] = _mm256_fmadd_ps(w, v0, lo[c]);
                                    hi[c] = _mm256_fmadd_ps(w, v1, hi[c]);
                                }
                            }
                        }
                    }
                    for c in 0..GROUP {
                        // SAFETY: inside `scratch` (SCRATCH_LEN, asserted by the caller).
                        unsafe {
                            _mm256_storeu_ps(products.add(at(m, gi, c)), lo[c]);
                            _mm256_storeu_ps(products.add(at(m, gi, c) + 8), hi[c]);
                        }
                    }
                }
            }
            // A^T: the 6 products of each channel to its 4 pixels.
            for gi in 0..chunk_groups {
                for c in 0..GROUP {
                    let channel = (chunk + gi) * GROUP + c;
                    let bias = _mm256_set1_ps(layer.bias[channel]);
                    for half in 0..2 {
                        // SAFETY: written above for every point of this group.
                        let m = |point: usize| unsafe { _mm256_loadu_ps(products.add(at(point, gi, c) + half * 8)) };
                        let (s12, d12) = (_mm256_add_ps(m(1), m(2)), _mm256_sub_ps(m(1), m(2)));
                        let (s34, d34) = (_mm256_add_ps(m(3), m(4)), _mm256_sub_ps(m(3), m(4)));
                        let pixels = [
                            _mm256_add_ps(_mm256_add_ps(m(0), bias), _mm256_add_ps(s12, s34)),
                            _mm256_fmadd_ps(_mm256_set1_ps(2.0), d34, _mm256_add_ps(d12, bias)),
                            _mm256_fmadd_ps(_mm256_set1_ps(4.0), s34, _mm256_add_ps(s12, bias)),
                            _mm256_fmadd_ps(_mm256_set1_ps(8.0), d34, _mm256_add_ps(_mm256_add_ps(d12, m(5)), bias)),
                        ];
                        for (phase, y) in pixels.into_iter().enumerate() {
                            // SAFETY: inside `block` (asserted by the caller).
                            unsafe { _mm256_storeu_ps(out.add((phase * co + channel) * BLOCK + half * 8), y) };
                        }
                    }
                }
            }
        }
    }

    /// 12 independent chains of 8-wide FMAs: enough to cover the FMA latency on two pipes.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma_burst(iters: u64) -> u64 {
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
}

/// Runs a fixed burst of independent FMA chains; returns the multiply-accumulates done.
pub fn fma_burst(isa: Isa) -> u64 {
    const ITERS: u64 = 1 << 16;
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the features were detected.
        Isa::Avx2Fma => unsafe { avx2::fma_burst(ITERS) },
        _ => {
            let mut acc = [[1f32; 8]; 12];
            for _ in 0..ITERS {
                for a in acc.iter_mut() {
                    for v in a.iter_mut() {
                        *v = v.mul_add(0.999_999, 1e-7);
                    }
                }
            }
            std::hint::black_box(acc);
            ITERS * 12 * 8
        }
    }
}
