//! The convolution block kernel and the fused epilogue, in AVX2+FMA and in portable Rust.
//!
//! A block is 16 consecutive output pixels of one row and every output channel, written to
//! `block[co * 16 + p]`. It reads three input rows (above, at, below), each holding all its
//! channels one after another (`[c * stride + x]`) with a zero column on each side: padded
//! columns `x0..x0+18` are read for output columns `x0..x0+16`.

use super::math::{ERF_ALPHA, ERF_BETA, gelu};
use super::{BLOCK, Epilogue, Isa, Layer};
use crate::model::Activation;

/// Output channels accumulated together: 6 channels x 2 vectors of 8 pixels = 12 registers.
const GROUP: usize = 6;
const LN_EPS: f32 = 1e-6;
const LRELU_SLOPE: f32 = 0.05;

#[allow(clippy::too_many_arguments)]
pub fn conv_block(isa: Isa, layer: &Layer, rows: [&[f32]; 3], stride: usize, x0: usize, block: &mut [f32]) {
    assert!(layer.co.is_multiple_of(GROUP) && block.len() >= layer.co * BLOCK);
    for row in rows {
        assert!(
            (layer.ci - 1) * stride + x0 + BLOCK + 2 <= row.len(),
            "conv_block reads inside the rows"
        );
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2Fma` is only chosen after detecting both features; the reads are
        // bounded by the assert above.
        Isa::Avx2Fma => unsafe { avx2::conv_block(layer, rows, stride, x0, block) },
        _ => conv_block_portable(layer, rows, stride, x0, block),
    }
}

/// Applies the epilogue to a computed block and writes channel `c` of the result to
/// `dst[c * dst_stride..][..BLOCK]` (for a full block, straight into the next layer's ring row,
/// saving a copy). `block` is used as scratch.
pub fn epilogue(isa: Isa, epilogue: &Epilogue, co: usize, block: &mut [f32], dst: &mut [f32], dst_stride: usize) {
    assert!(block.len() >= co * BLOCK && dst.len() >= (co - 1) * dst_stride + BLOCK);
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, the features were detected; the writes are bounded by the assert.
        Isa::Avx2Fma => unsafe { avx2::epilogue(epilogue, co, block, dst, dst_stride) },
        _ => epilogue_portable(epilogue, co, block, dst, dst_stride),
    }
}

fn conv_block_portable(layer: &Layer, rows: [&[f32]; 3], stride: usize, x0: usize, block: &mut [f32]) {
    let co = layer.co;
    for g in (0..co).step_by(GROUP) {
        let mut acc = [[0f32; BLOCK]; GROUP];
        for (c, a) in acc.iter_mut().enumerate() {
            *a = [layer.bias[g + c]; BLOCK];
        }
        for ci in 0..layer.ci {
            for k in 0..9 {
                let (ky, kx) = (k / 3, k % 3);
                let row = &rows[ky][ci * stride + x0 + kx..][..BLOCK];
                let w = &layer.weights[(ci * 9 + k) * co + g..][..GROUP];
                for c in 0..GROUP {
                    for p in 0..BLOCK {
                        acc[c][p] += w[c] * row[p];
                    }
                }
            }
        }
        for c in 0..GROUP {
            block[(g + c) * BLOCK..][..BLOCK].copy_from_slice(&acc[c]);
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
    pub unsafe fn conv_block(layer: &Layer, rows: [&[f32]; 3], stride: usize, x0: usize, block: &mut [f32]) {
        let co = layer.co;
        let out = block.as_mut_ptr();
        for g in (0..co).step_by(GROUP) {
            let mut lo = [_mm256_setzero_ps(); GROUP];
            let mut hi = [_mm256_setzero_ps(); GROUP];
            for c in 0..GROUP {
                let b = _mm256_set1_ps(layer.bias[g + c]);
                lo[c] = b;
                hi[c] = b;
            }
            for ci in 0..layer.ci {
                // SAFETY (whole loop): bounds asserted by the caller.
                unsafe {
                    let wbase = layer.weights.as_ptr().add(ci * 9 * co + g);
                    for (ky, row) in rows.iter().enumerate() {
                        let base = row.as_ptr().add(ci * stride + x0);
                        for kx in 0..3 {
                            let p = base.add(kx);
                            let v0 = _mm256_loadu_ps(p);
                            let v1 = _mm256_loadu_ps(p.add(8));
                            let wk = wbase.add((ky * 3 + kx) * co);
                            for c in 0..GROUP {
                                let w = _mm256_broadcast_ss(&*wk.add(c));
                                lo[c] = _mm256_fmadd_ps(w, v0, lo[c]);
                                hi[c] = _mm256_fmadd_ps(w, v1, hi[c]);
                            }
                        }
                    }
                }
            }
            for c in 0..GROUP {
                unsafe {
                    _mm256_storeu_ps(out.add((g + c) * BLOCK), lo[c]);
                    _mm256_storeu_ps(out.add((g + c) * BLOCK + 8), hi[c]);
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
        let erf = _mm256_div_ps(_mm256_mul_ps(x, p), q);
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
