//! Winograd F(4,3) along rows: the 3x3 convolutions as three 1-D row convolutions (one per
//! kernel row), each computing 4 output pixels from 6 inputs with 6 multiplications instead of
//! 12. Half the multiply-accumulates of the direct convolution, and unlike 2-D Winograd it keeps
//! the row-by-row streaming of the engine (a 2-D tile would need two output rows at once).
//!
//! Interpolation points 0, 1, -1, 2, -2 and infinity (Lavin & Gray, 2016). A feature row is
//! kept in two layouts:
//! - phase-split: `[channel][phase][1 + tile]`, pixel `4 * tile + phase`, with a zero tile on
//!   each side (the convolution's zero padding);
//! - transformed: `[block][point][channel][16 tiles]`, what the convolution reads: a block's
//!   inputs lie together, so that its reads stream through memory.

use super::{BLOCK, Isa};

/// Output pixels per tile.
pub const TILE: usize = 4;
/// Transformed values per tile.
pub const POINTS: usize = 6;

/// G: a kernel row (3 taps) to its 6 transformed values.
const G: [[f64; 3]; POINTS] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// Packs a conv weight `[co][ci][3][3]` as `[point][co / group][ky][ci][group]`: for each
/// point, one contiguous panel per group of `group` output channels, read front to back by a
/// GEMM of the three transformed input rows (K = 3 * ci).
pub fn transform_weights(weight: &[f32], co: usize, ci: usize, group: usize) -> Vec<f32> {
    assert!(co.is_multiple_of(group));
    let mut packed = vec![0f32; POINTS * 3 * ci * co];
    for o in 0..co {
        let (g, c) = (o / group, o % group);
        for i in 0..ci {
            for ky in 0..3 {
                let taps = &weight[((o * ci + i) * 3 + ky) * 3..][..3];
                for (m, row) in G.iter().enumerate() {
                    let v: f64 = (0..3).map(|kx| row[kx] * taps[kx] as f64).sum();
                    packed[(((m * (co / group) + g) * 3 + ky) * ci + i) * group + c] = v as f32;
                }
            }
        }
    }
    packed
}

/// The 6 transformed values of one tile from its inputs `d` = pixels `4t - 1 .. 4t + 5` (B^T d).
#[inline(always)]
fn input_points(d: [f32; 6]) -> [f32; POINTS] {
    let [d0, d1, d2, d3, d4, d5] = d;
    [
        4.0 * d0 - 5.0 * d2 + d4,
        -4.0 * (d1 + d2) + d3 + d4,
        4.0 * (d1 - d2) - d3 + d4,
        2.0 * (d3 - d1) - d2 + d4,
        2.0 * (d1 - d3) - d2 + d4,
        4.0 * d1 - 5.0 * d3 + d5,
    ]
}

/// The 4 output pixels of a tile from its 6 products (A^T m); shared by the scalar kernel.
#[inline(always)]
pub fn output_pixels(m: [f32; POINTS]) -> [f32; TILE] {
    let [m0, m1, m2, m3, m4, m5] = m;
    let (s12, d12, s34, d34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
    [m0 + s12 + s34, d12 + 2.0 * d34, s12 + 4.0 * s34, d12 + 8.0 * d34 + m5]
}

/// Transforms a phase-split row of `channels` channels (`pitch` = tiles + 2 per phase) into
/// `dst`, `[block][point][channel][16 tiles]`; `tiles` is a whole number of blocks.
pub fn transform_row(isa: Isa, src: &[f32], channels: usize, pitch: usize, tiles: usize, dst: &mut [f32]) {
    assert!(
        tiles.is_multiple_of(BLOCK)
            && pitch >= tiles + 2
            && src.len() >= channels * TILE * pitch
            && dst.len() >= POINTS * channels * tiles
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 and FMA were detected before `Isa::Avx2Fma` was chosen.
        Isa::Avx2Fma => unsafe { transform_row_avx2(src, channels, pitch, tiles, dst) },
        _ => transform_row_any(src, channels, pitch, tiles, dst),
    }
}

/// As [`transform_row_any`], 8 tiles at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn transform_row_avx2(src: &[f32], channels: usize, pitch: usize, tiles: usize, dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let k = |v: f32| _mm256_set1_ps(v);
    for b in 0..tiles / BLOCK {
        for c in 0..channels {
            // SAFETY: the reads stay inside channel c (stored tiles up to b * 16 + 17 < pitch)
            // and the writes inside block b of `dst`, as asserted by `transform_row`.
            unsafe {
                let phase = |i: usize, first: usize| src.as_ptr().add((c * TILE + i) * pitch + first + b * BLOCK);
                let out = dst.as_mut_ptr().add(b * POINTS * channels * BLOCK + c * BLOCK);
                for half in [0, 8] {
                    let d0 = _mm256_loadu_ps(phase(3, 0).add(half));
                    let d1 = _mm256_loadu_ps(phase(0, 1).add(half));
                    let d2 = _mm256_loadu_ps(phase(1, 1).add(half));
                    let d3 = _mm256_loadu_ps(phase(2, 1).add(half));
                    let d4 = _mm256_loadu_ps(phase(3, 1).add(half));
                    let d5 = _mm256_loadu_ps(phase(0, 2).add(half));
                    let (d4_d2, d4_d3) = (_mm256_sub_ps(d4, d2), _mm256_sub_ps(d4, d3));
                    let (d1_d2, d3_d1) = (_mm256_sub_ps(d1, d2), _mm256_sub_ps(d3, d1));
                    let points = [
                        _mm256_fmadd_ps(k(4.0), d0, _mm256_fmadd_ps(k(-5.0), d2, d4)),
                        _mm256_fmadd_ps(k(-4.0), _mm256_add_ps(d1, d2), _mm256_add_ps(d3, d4)),
                        _mm256_fmadd_ps(k(4.0), d1_d2, d4_d3),
                        _mm256_fmadd_ps(k(2.0), d3_d1, d4_d2),
                        _mm256_fmadd_ps(k(-2.0), d3_d1, d4_d2),
                        _mm256_fmadd_ps(k(4.0), d1, _mm256_fmadd_ps(k(-5.0), d3, d5)),
                    ];
                    for (m, v) in points.into_iter().enumerate() {
                        _mm256_storeu_ps(out.add(m * channels * BLOCK + half), v);
                    }
                }
            }
        }
    }
}

#[inline(always)]
fn transform_row_any(src: &[f32], channels: usize, pitch: usize, tiles: usize, dst: &mut [f32]) {
    let block_len = POINTS * channels * BLOCK;
    for (b, out) in dst[..tiles * POINTS * channels].chunks_exact_mut(block_len).enumerate() {
        for c in 0..channels {
            // Stored tile index = tile + 1. Pixel 4t - 1 is phase 3 of tile t - 1, pixel 4t + 4
            // phase 0 of tile t + 1.
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
            for (m, values) in v.iter().enumerate() {
                out[(m * channels + c) * BLOCK..][..BLOCK].copy_from_slice(values);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(taps: [f32; 3], row: &[f32]) -> Vec<f32> {
        (0..row.len())
            .map(|x| {
                (0..3)
                    .map(|k| {
                        let i = x as isize + k as isize - 1;
                        if i < 0 || i >= row.len() as isize {
                            0.0
                        } else {
                            taps[k] * row[i as usize]
                        }
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn a_tile_equals_the_direct_row_convolution() {
        let taps = [0.3f32, -1.25, 0.7];
        let row: Vec<f32> = (0..11).map(|i| ((i * 37) % 11) as f32 / 5.0 - 1.0).collect();
        // One channel, one block of tiles (11 pixels, the rest zero), phase-split with zero end
        // tiles; transformed layout [point][tile] for a single block and channel.
        let tiles = BLOCK;
        let pitch = tiles + 2;
        let mut split = vec![0f32; TILE * pitch];
        for (x, &v) in row.iter().enumerate() {
            split[(x % TILE) * pitch + 1 + x / TILE] = v;
        }
        let mut points = vec![0f32; POINTS * tiles];
        for isa in [Isa::Portable, Isa::detect()] {
            transform_row(isa, &split, 1, pitch, tiles, &mut points);
            let u = transform_weights(&[0.0, 0.0, 0.0, taps[0], taps[1], taps[2], 0.0, 0.0, 0.0], 1, 1, 1);
            // Kernel row 1 (ky = 1) holds the taps: packed index (m * 3 + 1).
            let want = direct(taps, &row);
            for t in 0..3 {
                let m = std::array::from_fn(|m| u[m * 3 + 1] * points[m * tiles + t]);
                for (i, y) in output_pixels(m).into_iter().enumerate() {
                    if let Some(&w) = want.get(TILE * t + i) {
                        assert!((y - w).abs() < 1e-5, "{isa:?} pixel {}: {y} vs {w}", TILE * t + i);
                    }
                }
            }
        }
    }
}
