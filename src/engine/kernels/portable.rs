//! The kernels in plain Rust: any CPU, and the reference the vector paths are tested against.

use super::super::math::gelu;
use super::super::winograd::{POINTS, TILE, input_points, output_pixels};
use super::{BLOCK, Epilogue, GROUP, LN_EPS, LRELU_SLOPE, Layer};
use crate::model::Activation;

pub fn conv_block(layer: &Layer, weights: &[f32], rows: [&[f32]; 3], block: &mut [f32]) {
    let (ci, co) = (layer.ci, layer.co);
    let (groups, k) = (co / GROUP, 3 * ci);
    for g in 0..groups {
        let mut products = [[[0f32; BLOCK]; GROUP]; POINTS];
        for (m, acc) in products.iter_mut().enumerate() {
            let panel = &weights[(m * groups + g) * k * GROUP..][..k * GROUP];
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

pub fn epilogue(epilogue: &Epilogue, co: usize, block: &mut [f32], dst: &mut [f32], dst_stride: usize) {
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

/// The transformed values of one channel of one block: `[point][16 tiles]`. Stored tile index
/// = tile + 1; pixel 4t - 1 is phase 3 of tile t - 1, pixel 4t + 4 phase 0 of tile t + 1.
#[inline(always)]
pub fn block_points(src: &[f32], c: usize, pitch: usize, b: usize) -> [[f32; BLOCK]; POINTS] {
    let phase = |i: usize, first: usize| -> &[f32; BLOCK] {
        src[(c * TILE + i) * pitch + first + b * BLOCK..][..BLOCK]
            .try_into()
            .expect("a block")
    };
    let d = [
        phase(3, 0),
        phase(0, 1),
        phase(1, 1),
        phase(2, 1),
        phase(3, 1),
        phase(0, 2),
    ];
    let mut v = [[0f32; BLOCK]; POINTS];
    for t in 0..BLOCK {
        let points = input_points(d.map(|p| p[t]));
        for m in 0..POINTS {
            v[m][t] = points[m];
        }
    }
    v
}

pub fn transform_row(src: &[f32], channels: usize, pitch: usize, tiles: usize, dst: &mut [f32]) {
    let block_len = POINTS * channels * BLOCK;
    for (b, out) in dst[..tiles * POINTS * channels].chunks_exact_mut(block_len).enumerate() {
        for c in 0..channels {
            for (m, values) in block_points(src, c, pitch, b).iter().enumerate() {
                out[(m * channels + c) * BLOCK..][..BLOCK].copy_from_slice(values);
            }
        }
    }
}

/// The samples of `row` from tile `first_tile` on (samples 8 first_tile ..), each to its phase
/// of the two channels at `split` (see [`super::unshuffle_samples`]): phase by phase, so that
/// the writes run along the phase's tiles.
pub fn unshuffle_samples(row: &[f32], split: &mut [f32], channel_len: usize, pitch: usize, first_tile: usize) {
    for s in 0..2 * TILE {
        let phase = &mut split[(s % 2) * channel_len + (s / 2) * pitch..][1 + first_tile..];
        let samples = row.iter().skip(2 * TILE * first_tile + s).step_by(2 * TILE);
        for (dst, &v) in phase.iter_mut().zip(samples) {
            *dst = v;
        }
    }
}

pub fn fma_burst() -> u64 {
    const ITERS: u64 = 1 << 16;
    let mut acc = [[1f32; 8]; 12];
    for _ in 0..ITERS {
        for a in acc.iter_mut() {
            for v in a.iter_mut() {
                *v = *v * 0.999_999 + 1e-7;
            }
        }
    }
    std::hint::black_box(acc);
    ITERS * 12 * 8
}
