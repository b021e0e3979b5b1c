//! Winograd F(4,3) along rows: the 3x3 convolutions as three 1-D row convolutions (one per
//! kernel row), each computing 4 output pixels from 6 inputs with 6 multiplications instead of
//! 12: half the multiply-accumulates of the direct convolution, one output row at a time (the
//! portable and AMX paths). The AVX2 and AVX-512 paths add F(4,3) down the columns
//! ([`ROW_QUAD`]): four output rows from six transformed input rows with 6 x 6 products per
//! tile instead of 4 x 3 x 6, a quarter of the direct multiply-accumulates, the engine streaming
//! steps of four rows instead of rows. Measured against the official outputs: 6e-6 at most
//! (F(2,3) down the columns, the AVX-512 path's two rows a step before: 4e-6).
//!
//! Interpolation points 0, 1, -1, 2, -2 and infinity (Lavin & Gray, 2016). A feature row is
//! kept in two layouts:
//! - phase-split: `[channel][phase][1 + tile]`, pixel `4 * tile + phase`, with a zero tile on
//!   each side (the convolution's zero padding);
//! - transformed: `[block][point][channel][16 tiles]`, what the convolution reads: a block's
//!   inputs lie together, so that its reads stream through memory.

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

/// The 6 transformed values of a kernel row (G g), in f64: what every path's packing
/// ([`super::pack`]) rounds to its own format.
pub fn kernel_row_points(taps: &[f32]) -> [f64; POINTS] {
    G.map(|row| (0..3).map(|kx| row[kx] * taps[kx] as f64).sum())
}

/// The 6 transformed values of one tile from its inputs `d` = pixels `4t - 1 .. 4t + 5` (B^T d).
#[inline(always)]
pub fn input_points(d: [f32; 6]) -> [f32; POINTS] {
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

/// Output rows per step of the AVX2 and AVX-512 paths: F(4,3) down the columns as well as
/// along the rows, four output rows from six transformed input rows with 6 x 6 products per
/// tile instead of 2 x 4 x 6 in two pairs of rows by F(2,3) down the columns: a quarter fewer
/// multiply-accumulates. The vertical points are the rows' ([`input_points`] on a column,
/// [`output_pixels`] back).
pub const ROW_QUAD: usize = TILE;

/// The 6 x 6 transformed values of a 3x3 kernel (`taps[ky * 3 + kx]`) for [`ROW_QUAD`]:
/// `[v][m]`, G applied down the columns to the rows' points, in f64.
pub fn kernel_points_quad(taps: &[f32]) -> [[f64; POINTS]; POINTS] {
    let rows: [[f64; POINTS]; 3] = std::array::from_fn(|ky| kernel_row_points(&taps[ky * 3..][..3]));
    G.map(|g| std::array::from_fn(|m| (0..3).map(|ky| g[ky] * rows[ky][m]).sum()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_quad_tile_equals_the_direct_convolution() {
        // A 6 x 6 input window (rows r - 1 .. r + 4, pixels 4t - 1 .. 4t + 5) to the 4 x 4
        // outputs of rows r .. r + 4 and pixels 4t .. 4t + 4, F(4,3) both ways.
        let taps = [0.3f32, -1.25, 0.7, 2.0, 0.5, -0.25, 1.5, -0.75, 0.125];
        let d: [[f32; 6]; 6] =
            std::array::from_fn(|y| std::array::from_fn(|x| ((y * 7 + x * 3) % 11) as f32 / 5.0 - 1.0));
        let rows = d.map(input_points);
        let columns: [[f32; POINTS]; POINTS] = std::array::from_fn(|m| input_points(rows.map(|r| r[m])));
        let u = kernel_points_quad(&taps);
        let products: [[f32; POINTS]; POINTS] =
            std::array::from_fn(|v| std::array::from_fn(|m| u[v][m] as f32 * columns[m][v]));
        let outputs: [[f32; ROW_QUAD]; POINTS] = std::array::from_fn(|m| output_pixels(products.map(|p| p[m])));
        for r in 0..ROW_QUAD {
            let got = output_pixels(outputs.map(|c| c[r]));
            for (x, y) in got.into_iter().enumerate() {
                let want: f32 = (0..9).map(|k| taps[k] * d[r + k / 3][x + k % 3]).sum();
                assert!((y - want).abs() < 1e-5, "row {r} pixel {x}: {y} vs {want}");
            }
        }
    }

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
        let want = direct(taps, &row);
        let u = kernel_row_points(&taps);
        let pixel = |x: isize| {
            if x < 0 || x >= row.len() as isize {
                0.0
            } else {
                row[x as usize]
            }
        };
        for t in 0..3isize {
            let d = std::array::from_fn(|i| pixel(4 * t - 1 + i as isize));
            let v = input_points(d);
            let m = std::array::from_fn(|m| u[m] as f32 * v[m]);
            for (i, y) in output_pixels(m).into_iter().enumerate() {
                if let Some(&w) = want.get(4 * t as usize + i) {
                    assert!((y - w).abs() < 1e-5, "pixel {}: {y} vs {w}", 4 * t as usize + i);
                }
            }
        }
    }
}
