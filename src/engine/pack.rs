//! The layouts in which each path reads a layer's Winograd-domain weights, defined here once.

use super::isa::Path;
use super::winograd::{POINTS, kernel_points_quad, kernel_row_points};
use half::bf16;

/// Output channels per AMX weight tile (rows of the tile, of the products' tile): 12 divides
/// every layer of the official models (24 features, 12 s^2 upsample channels), and a 12-row
/// product costs three quarters of a 16-row one (measured).
pub const TILE_ROWS: usize = 12;
/// The most input channels an AMX weight tile holds per kernel row (32 bf16 = 64 bytes).
pub const MAX_TILE_CI: usize = 32;

/// A layer's weights as one path reads them.
#[derive(Clone, Debug)]
pub enum PackedWeights {
    /// fp32 panels: `[point][co / group][ky][ci][group]`: for each point, one contiguous panel per
    /// group of output channels, read front to back over K = 3 * ci. The portable path's, one
    /// output row at a time.
    Fp32(Vec<f32>),
    /// fp32 panels of the 2-D scheme of four output rows at a time (see
    /// [`super::winograd::ROW_QUAD`]): `[vertical point][point][co / group][ci][group]`, one
    /// panel per vertical point, point and group, read front to back over K = ci. The AVX2 and
    /// AVX-512 paths'.
    Fp32Quads(Vec<f32>),
    /// bf16 tiles for AMX, each value split into a high part (the value rounded to bf16) and a
    /// low part (the remainder rounded to bf16): `[point][ky][co / 12][high, low][12][ci]`,
    /// each `[12][ci]` one tile of 12 rows of ci values.
    Bf16Tiles(Vec<u16>),
}

/// Which products of the split bf16 operands the AMX path sums for a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Terms {
    /// high*high + high*low + low*high: about 16 significant bits of every operand.
    Split,
    /// high*high alone: plain bf16 operands (fp32 accumulation), a third of the products.
    Plain,
}

/// Whether a layer of `ci` inputs and `co` outputs fits the AMX tiles.
pub fn fits_tiles(ci: usize, co: usize) -> bool {
    ci.is_multiple_of(2) && ci <= MAX_TILE_CI && co.is_multiple_of(TILE_ROWS)
}

/// Splits a value into bf16 high and low parts, rounding each to nearest even.
pub fn split_bf16(v: f32) -> (bf16, bf16) {
    let high = bf16::from_f32(v);
    (high, bf16::from_f32(v - high.to_f32()))
}

impl PackedWeights {
    /// Packs a conv weight `[co][ci][3][3]` for `path` (fp32 paths in panels of `group`).
    pub fn new(weight: &[f32], co: usize, ci: usize, path: Path, group: usize) -> Self {
        // points[((o * ci + i) * 3 + ky) * POINTS + m]
        let points: Vec<f64> = weight.chunks_exact(3).flat_map(kernel_row_points).collect();
        let at = |o: usize, i: usize, ky: usize, m: usize| points[((o * ci + i) * 3 + ky) * POINTS + m];
        match path {
            Path::Avx2 | Path::Avx512 => {
                assert!(co.is_multiple_of(group));
                let mut packed = vec![0f32; POINTS * POINTS * ci * co];
                for o in 0..co {
                    let (g, c) = (o / group, o % group);
                    for i in 0..ci {
                        let taps = &weight[(o * ci + i) * 9..][..9];
                        for (v, row) in kernel_points_quad(taps).iter().enumerate() {
                            for (m, &value) in row.iter().enumerate() {
                                packed[((((v * POINTS + m) * (co / group) + g) * ci) + i) * group + c] = value as f32;
                            }
                        }
                    }
                }
                PackedWeights::Fp32Quads(packed)
            }
            Path::Portable => {
                assert!(co.is_multiple_of(group));
                let mut packed = vec![0f32; POINTS * 3 * ci * co];
                for o in 0..co {
                    let (g, c) = (o / group, o % group);
                    for i in 0..ci {
                        for ky in 0..3 {
                            for m in 0..POINTS {
                                packed[(((m * (co / group) + g) * 3 + ky) * ci + i) * group + c] =
                                    at(o, i, ky, m) as f32;
                            }
                        }
                    }
                }
                PackedWeights::Fp32(packed)
            }
            Path::AmxBf16 => {
                assert!(fits_tiles(ci, co));
                let tiles = co / TILE_ROWS;
                let mut packed = vec![0u16; POINTS * 3 * 2 * ci * co];
                for m in 0..POINTS {
                    for ky in 0..3 {
                        for o in 0..co {
                            let (j, row) = (o / TILE_ROWS, o % TILE_ROWS);
                            for i in 0..ci {
                                let (high, low) = split_bf16(at(o, i, ky, m) as f32);
                                let tile = ((m * 3 + ky) * tiles + j) * 2;
                                packed[(tile * TILE_ROWS + row) * ci + i] = high.to_bits();
                                packed[((tile + 1) * TILE_ROWS + row) * ci + i] = low.to_bits();
                            }
                        }
                    }
                }
                PackedWeights::Bf16Tiles(packed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp32_panels_put_output_channels_innermost() {
        let w: Vec<f32> = (0..18).map(|v| v as f32).collect();
        let PackedWeights::Fp32(p) = PackedWeights::new(&w, 2, 1, Path::Portable, 2) else {
            unreachable!()
        };
        // Point 0 is a quarter of the first tap, point 5 the last tap:
        // [point][group][ky][ci][channel of the group].
        assert_eq!(p.len(), 6 * 3 * 2);
        assert_eq!(&p[..4], &[0.0, 9.0 / 4.0, 3.0 / 4.0, 12.0 / 4.0]);
        assert_eq!(&p[(5 * 3 + 2) * 2..], &[8.0, 17.0]);
    }

    #[test]
    fn quad_panels_hold_the_six_vertical_points() {
        // Vertical point 0 is a quarter of the first kernel row's points, 5 the last row's.
        let w: Vec<f32> = (0..9).map(|v| v as f32 + 1.0).collect();
        let PackedWeights::Fp32Quads(p) = PackedWeights::new(&w, 1, 1, Path::Avx2, 1) else {
            unreachable!()
        };
        assert_eq!(p.len(), 6 * 6);
        let row = |ky: usize| kernel_row_points(&w[ky * 3..][..3]);
        for m in 0..POINTS {
            assert!((p[m] as f64 - row(0)[m] / 4.0).abs() < 1e-6);
            assert_eq!(p[5 * POINTS + m], row(2)[m] as f32);
        }
    }

    #[test]
    fn bf16_split_keeps_sixteen_bits() {
        for v in [1.0f32 / 3.0, -7.123_456, 1e-3, 0.0, 123_456.79] {
            let (h, l) = split_bf16(v);
            let back = h.to_f32() + l.to_f32();
            assert!((back - v).abs() <= v.abs() * 2f32.powi(-16), "{v}: {back}");
        }
    }

    #[test]
    fn tile_layout_holds_high_and_low_rows() {
        let (co, ci) = (24, 2);
        let w: Vec<f32> = (0..co * ci * 9).map(|v| (v as f32 * 0.37).sin()).collect();
        let PackedWeights::Bf16Tiles(p) = PackedWeights::new(&w, co, ci, Path::AmxBf16, 6) else {
            unreachable!()
        };
        // Output channel 13 = tile 1, row 1; input 1; ky 2; point 5: the last tap.
        let (o, i, ky, m) = (13, 1, 2, 5);
        let tile = ((m * 3 + ky) * 2 + 1) * 2;
        let high = bf16::from_bits(p[(tile * TILE_ROWS + 1) * ci + i]).to_f32();
        let low = bf16::from_bits(p[((tile + 1) * TILE_ROWS + 1) * ci + i]).to_f32();
        let want = w[((o * ci + i) * 3 + ky) * 3 + 2];
        assert!(
            (high + low - want).abs() < 1e-5 * want.abs().max(1.0),
            "{high} + {low} vs {want}"
        );
    }
}
