//! AMX-BF16 in split precision. Each fp32 value v is held as two bf16 values, high = bf16(v)
//! and low = bf16(v - high), and a product as three tile products, high*high + high*low +
//! low*high, accumulated in fp32 (the dropped low*low term is below 2^-16 of the product):
//! about 16 significant bits of every operand instead of bf16's 8.
//!
//! Per point of a block, the products are `C[co][16 tiles] += W[co][ci] x V[ci][16 tiles]`
//! for each kernel row: C tiles of 12 output channels by 16 tiles (fp32), weight tiles of 12
//! channels by ci inputs ([`PackedWeights::Bf16Tiles`](super::super::pack::PackedWeights)),
//! input tiles of ci/2 rows of 16 tiles x 2 channels (the VNNI pairs the instruction reads).
//! The transformed rows hold, for each block and point, the high pairs then the low pairs of
//! its ci x 16 values: the same 4 bytes a value as the fp32 layout, so rows, rings and their
//! offsets are the same on every path. Transforms, output transform and epilogue are AVX-512.
//!
//! Tile registers are named in the instructions (Rust has no operand class for them): tmm0-3
//! accumulate, tmm4/5 hold a weight tile's high and low parts, tmm6/7 an input tile's.

use super::super::pack::{MAX_TILE_CI, TILE_ROWS};
use super::super::winograd::POINTS;
use super::{BLOCK, Layer, avx512};
use std::arch::asm;
use std::arch::x86_64::*;
use std::cell::Cell;

/// Accumulator tiles: output channels per pass = 4 x 12.
const ACCUMULATORS: usize = 4;
const _: () = assert!(ACCUMULATORS * TILE_ROWS <= super::CHANNELS_PER_PASS);

/// The 64-byte tile configuration LDTILECFG reads (palette 1).
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
    /// `shapes[t]` = (rows, bytes per row) of tile register t.
    fn new(shapes: [(u8, u16); 8]) -> Self {
        let mut b = [0u8; 64];
        b[0] = 1;
        for (t, (rows, bytes)) in shapes.into_iter().enumerate() {
            b[16 + 2 * t..18 + 2 * t].copy_from_slice(&bytes.to_le_bytes());
            b[48 + t] = rows;
        }
        TileConfig(b)
    }
}

thread_local! {
    /// What this thread's tile registers are configured for: the input channels of the
    /// convolution shapes, or `BURST` (0: not configured). LDTILECFG is skipped when it matches.
    static CONFIGURED: Cell<usize> = const { Cell::new(0) };
}
const BURST: usize = usize::MAX;

/// Loads the tile configuration for `key` unless this thread already has it.
///
/// # Safety
/// AMX-TILE must be detected and the tile state granted to the process.
unsafe fn configure(key: usize, config: impl FnOnce() -> TileConfig) {
    if CONFIGURED.get() != key {
        let config = config();
        // SAFETY: AMX-TILE present and permitted (the caller's contract); the configuration
        // is 64 valid bytes (palette 1, rows <= 16, bytes per row <= 64).
        unsafe { asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack, readonly)) };
        CONFIGURED.set(key);
    }
}

/// The convolution shapes for `ci` input channels.
fn conv_config(ci: usize) -> TileConfig {
    let c = (TILE_ROWS as u8, 64);
    let w = (TILE_ROWS as u8, (2 * ci) as u16);
    let v = ((ci / 2) as u8, 64);
    TileConfig::new([c, c, c, c, w, w, v, v])
}

/// Runs `$m!(N)` with the accumulator tile register `j` as a literal (0..=3).
macro_rules! with_accumulator {
    ($j:expr, $m:ident) => {
        match $j {
            0 => $m!("0"),
            1 => $m!("1"),
            2 => $m!("2"),
            _ => $m!("3"),
        }
    };
}

#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma")]
pub unsafe fn conv_block(layer: &Layer, weights: &[u16], rows: [&[f32]; 3], block: &mut [f32], scratch: &mut [f32]) {
    let (ci, co) = (layer.ci, layer.co);
    let tiles = co / TILE_ROWS;
    assert!(
        ci <= MAX_TILE_CI
            && ci.is_multiple_of(2)
            && co.is_multiple_of(TILE_ROWS)
            && weights.len() >= POINTS * 3 * 2 * ci * co
    );
    // SAFETY: the dispatch's Isa guarantees AMX and its permission.
    unsafe { configure(ci, || conv_config(ci)) };
    let (weight_stride, input_stride) = (2 * ci, 64usize);
    let products = scratch.as_mut_ptr();
    let mut first = 0;
    while first < tiles {
        let count = (tiles - first).min(ACCUMULATORS);
        for m in 0..POINTS {
            for j in 0..count {
                macro_rules! zero {
                    ($t:literal) => {
                        // SAFETY: tile registers configured above.
                        unsafe { asm!(concat!("tilezero tmm", $t), options(nostack, nomem)) }
                    };
                }
                with_accumulator!(j, zero);
            }
            for (ky, row) in rows.iter().enumerate() {
                // SAFETY: block-point region (m) of the row: ci * 16 high then ci * 16 low
                // bf16 values, inside the row (asserted by the dispatch).
                let (high, low) = unsafe {
                    let high = row.as_ptr().add(m * ci * BLOCK) as *const u16;
                    (high, high.add(ci * BLOCK))
                };
                // SAFETY: reads ci/2 rows of 64 bytes from each, inside the region.
                unsafe {
                    asm!(
                        "tileloadd tmm6, [{h} + {s} * 1]",
                        "tileloadd tmm7, [{l} + {s} * 1]",
                        h = in(reg) high, l = in(reg) low, s = in(reg) input_stride,
                        options(nostack, readonly)
                    );
                }
                for j in 0..count {
                    let tile = ((m * 3 + ky) * tiles + first + j) * 2;
                    // SAFETY: tile `tile` and `tile + 1` of the packing: 12 rows of ci values
                    // each, inside `weights` (length asserted above).
                    let w = unsafe { weights.as_ptr().add(tile * TILE_ROWS * ci) };
                    let w_low = unsafe { w.add(TILE_ROWS * ci) };
                    macro_rules! multiply {
                        ($t:literal) => {
                            // SAFETY: reads 12 rows of 2 ci bytes from each weight tile.
                            unsafe {
                                asm!(
                                    "tileloadd tmm4, [{h} + {s} * 1]",
                                    "tileloadd tmm5, [{l} + {s} * 1]",
                                    concat!("tdpbf16ps tmm", $t, ", tmm4, tmm6"),
                                    concat!("tdpbf16ps tmm", $t, ", tmm4, tmm7"),
                                    concat!("tdpbf16ps tmm", $t, ", tmm5, tmm6"),
                                    h = in(reg) w, l = in(reg) w_low, s = in(reg) weight_stride,
                                    options(nostack, readonly)
                                )
                            }
                        };
                    }
                    with_accumulator!(j, multiply);
                }
            }
            for j in 0..count {
                // SAFETY: 12 rows of 16 floats at channel j * 12 of point m's products, inside
                // scratch (SCRATCH_LEN >= POINTS * 48 * BLOCK, asserted by the dispatch).
                let dst = unsafe { products.add((m * count * TILE_ROWS + j * TILE_ROWS) * BLOCK) };
                macro_rules! store {
                    ($t:literal) => {
                        // SAFETY: as above.
                        unsafe {
                            asm!(
                                concat!("tilestored [{d} + {s} * 1], tmm", $t),
                                d = in(reg) dst, s = in(reg) 64usize,
                                options(nostack)
                            )
                        }
                    };
                }
                with_accumulator!(j, store);
            }
        }
        // SAFETY: the products of `count * 12` channels at every point were stored above.
        unsafe { avx512::output_transform(scratch, count * TILE_ROWS, first * TILE_ROWS, layer, block) };
        first += count;
    }
}

/// 16 bf16 values as their f32 values (a bf16 is the top half of an f32).
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma")]
#[inline]
fn widen(v: __m256i) -> __m512 {
    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(v)))
}

/// Rounds 16 floats to bf16 (nearest even), as 16 u16 lanes.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma")]
#[inline]
fn round_bf16(v: __m512) -> __m256i {
    // SAFETY: __m256bh and __m256i are both 32 bytes of plain lanes.
    unsafe { std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(v)) }
}

/// Two channels' 16 values each into the VNNI pairs `[tile][channel c, channel c + 1]`.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma")]
#[inline]
fn pair(even: __m256i, odd: __m256i) -> __m512i {
    let both = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(even), odd);
    let index = _mm512_set_epi16(
        31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
        16, 0,
    );
    _mm512_permutexvar_epi16(index, both)
}

/// As the AVX-512 transform, each block-point region then split into bf16 high and low pairs.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma")]
pub unsafe fn transform_row(src: &[f32], channels: usize, pitch: usize, tiles: usize, dst: &mut [f32]) {
    for b in 0..tiles / BLOCK {
        for c in (0..channels).step_by(2) {
            // SAFETY: reads as the AVX-512 transform (channels c and c + 1 < channels, even);
            // writes 64 bytes at pair c / 2 of the high and of the low half of each region of
            // block b, inside `dst` (asserted by the dispatch).
            unsafe {
                let even = avx512::block_points(src, c, pitch, b);
                let odd = avx512::block_points(src, c + 1, pitch, b);
                for m in 0..POINTS {
                    let region = dst.as_mut_ptr().add((b * POINTS + m) * channels * BLOCK) as *mut u16;
                    let (high_even, high_odd) = (round_bf16(even[m]), round_bf16(odd[m]));
                    let low_even = round_bf16(_mm512_sub_ps(even[m], widen(high_even)));
                    let low_odd = round_bf16(_mm512_sub_ps(odd[m], widen(high_odd)));
                    let at = (c / 2) * 2 * BLOCK;
                    _mm512_storeu_si512(region.add(at) as *mut _, pair(high_even, high_odd));
                    _mm512_storeu_si512(region.add(channels * BLOCK + at) as *mut _, pair(low_even, low_odd));
                }
            }
        }
    }
}

/// Full 16x16x32 tile products on the four accumulators, for the path's peak.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma")]
pub unsafe fn tile_burst() -> u64 {
    const ITERS: u64 = 1 << 12;
    let operand = [0x3f80u16; 16 * 32];
    let full = (16u8, 64u16);
    // SAFETY: AMX detected and permitted (the dispatch's Isa); the loads read 16 rows of 64
    // bytes from `operand`, which holds exactly that.
    unsafe {
        configure(BURST, || TileConfig::new([full; 8]));
        asm!(
            "tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
            "tileloadd tmm4, [{p} + {s} * 1]", "tileloadd tmm5, [{p} + {s} * 1]",
            "tileloadd tmm6, [{p} + {s} * 1]", "tileloadd tmm7, [{p} + {s} * 1]",
            p = in(reg) operand.as_ptr(), s = in(reg) 64usize, options(nostack, readonly)
        );
        for _ in 0..ITERS {
            asm!(
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm5, tmm6",
                "tdpbf16ps tmm2, tmm4, tmm7",
                "tdpbf16ps tmm3, tmm5, tmm7",
                options(nostack, nomem)
            );
        }
    }
    ITERS * 4 * 16 * 16 * 32
}
