//! AMX-BF16 in split precision. Each fp32 value v is held as two bf16 values, high = bf16(v)
//! and low = bf16(v - high), and a product as three tile products, high*high + high*low +
//! low*high, accumulated in fp32 (the dropped low*low term is below 2^-16 of the product):
//! about 16 significant bits of every operand instead of bf16's 8. A layer of
//! [`Bf16Terms::Plain`] (the upsample conv, see [`super::super::FastEngine`]) sums high*high
//! alone: a third of the products.
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
//! accumulate (two weight tiles by two blocks), tmm4/5 hold two weight tiles, tmm6/7 two
//! blocks' input tiles (each the high or the low parts).

use super::super::pack::{Bf16Terms, MAX_TILE_CI, TILE_ROWS};
use super::super::winograd::{POINTS, TILE};
use super::{BLOCK, ConvOutput, Layer, avx512};
use std::arch::asm;
use std::arch::x86_64::*;
use std::cell::Cell;

/// Output channels of a pass: two weight tiles of 12, over two blocks of tiles (four
/// accumulators, each block's products in its own part of the scratch).
pub const PASS_TILES: usize = 2;
/// Blocks of tiles one pass takes (see [`conv_blocks`]).
const PASS_BLOCKS: usize = 2;
/// Blocks of tiles one call takes: a whole row of a 1080p frame's network (15 blocks) for the
/// layers whose epilogue is fused, so that the pipeline of [`conv_blocks`] runs along the row;
/// a pair for the last layer, whose blocks the stores read next (its passes overlap within the
/// pair; calls of 4 or 16 blocks were no faster, single-thread pairs at x2 and x3).
pub const fn blocks_per_call(fused: bool) -> usize {
    if fused { 16 } else { PASS_BLOCKS }
}
/// Floats of one pass's products: two blocks x 6 points x 24 channels of 16 tiles.
const PASS_PRODUCTS: usize = PASS_BLOCKS * POINTS * PASS_TILES * TILE_ROWS * BLOCK;
const _: () = assert!(2 * PASS_PRODUCTS <= super::SCRATCH_LEN);

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

/// One layer over `blocks` consecutive blocks of one row (at most [`blocks_per_call`]):
/// products, output transform and bias, block b into `out` (see [`ConvOutput`]; split rows:
/// one).
///
/// The work is a sequence of passes, each of two weight tiles (24 output channels) over a pair
/// of blocks: four accumulators, tmm(2j + b) for weight tile j and block b, so that no product
/// of a group of four waits on another (one block a call, with three products in a row on each
/// of two accumulators, was 5-10 % slower a frame at x3) and each weight tile loaded serves two
/// blocks. The operands take three loads a group: weights high and inputs high, then weights
/// low, then inputs low and weights high again: ten loads for twelve products, six of them
/// weight tiles (9 cache lines at 24 inputs) and four input tiles (12 lines), where inputs high
/// loaded twice took 108 lines a step instead of 102 (with its inputs from L2 the step is bound
/// by its tile loads, about one cache line per 0.7 ns in a microbenchmark of it; from L1 the
/// loads hide behind the products: docs/speed.md, eighteenth session). No software
/// prefetches: those of the next step's operands, once 5-10 % faster at x3, measured 2-5 %
/// slower at x3 and no faster at x2 (the same section).
///
/// A pipeline: a pass's products go to one half of the scratch while the output transform (and
/// epilogue) of the pass before, in the other half, runs a channel or so after each group of
/// products (54 groups a pass of split products, 18 of plain ones; [`avx512::PassFinish`]), so
/// that its vector instructions can execute while the tile unit works on the products issued
/// before them. Only a little of it can: the core holds about a hundred vector instructions
/// behind a step's tile products, fewer where the step loads its tiles (a microbenchmark: 96
/// register FMAs after a step of 12 products cost 4 ns more than the step; 192 cost 16 ns more
/// after products alone and their whole 30 ns after the step; `tools/amx_load_microbench.rs`),
/// so the finish goes in small pieces between the groups. Measured by
/// leaving each part out, a frame's tile and vector work mostly add up (31 and 25 ms of a 62 ms
/// x2 frame in the slow state of docs/speed.md's seventeenth session); the finish run after each
/// step instead of each group was 5-9 % slower a frame, after each pass 2 % slower still; after
/// every two products (the channels spread evenly) it was 0-5 % slower, before each group's
/// products 3 % slower at x3.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx512vbmi,avx2,fma")]
pub unsafe fn conv_blocks(
    layer: &Layer,
    weights: &[u16],
    rows: [&[f32]; 3],
    blocks: usize,
    out: ConvOutput,
    scratch: &mut [f32],
) {
    let (ci, co) = (layer.ci, layer.co);
    let tiles = co / TILE_ROWS;
    let fused = matches!(out, ConvOutput::Split { .. });
    assert!(
        ci <= MAX_TILE_CI
            && ci.is_multiple_of(2)
            && co.is_multiple_of(TILE_ROWS)
            && weights.len() >= POINTS * 3 * 2 * ci * co
            && (1..=blocks_per_call(fused)).contains(&blocks)
            && scratch.len() >= 2 * PASS_PRODUCTS
    );
    assert!(
        !fused || tiles <= PASS_TILES,
        "the epilogue needs all the channels of a pixel from one pass"
    );
    // SAFETY: the dispatch's Isa guarantees AMX and its permission.
    unsafe { configure(ci, || conv_config(ci)) };
    let target = match out {
        ConvOutput::Blocks(out) => avx512::FinishTarget::Blocks(out.as_mut_ptr()),
        ConvOutput::Split { rows, pitch, .. } => avx512::FinishTarget::Split {
            rows: rows.as_mut_ptr(),
            pitch,
        },
    };
    let halves = [scratch.as_mut_ptr(), scratch[PASS_PRODUCTS..].as_mut_ptr()];
    // The pass before's output transform, still to finish.
    let mut pending: Option<avx512::PassFinish> = None;
    let mut parity = 0;
    for pair in (0..blocks).step_by(PASS_BLOCKS) {
        let pair_blocks = (blocks - pair).min(PASS_BLOCKS);
        // Block b of the pair starts POINTS * ci * BLOCK floats after block b - 1.
        let inputs: [[*const u16; PASS_BLOCKS]; 3] = rows.map(|row| {
            std::array::from_fn(|b| row[(pair + b.min(pair_blocks - 1)) * POINTS * ci * BLOCK..].as_ptr() as *const u16)
        });
        let mut first = 0;
        while first < tiles {
            let pass_tiles = (tiles - first).min(PASS_TILES);
            let operands = Operands {
                weights: weights[first * 2 * TILE_ROWS * ci..].as_ptr(),
                tiles,
                ci,
                inputs,
            };
            let products = halves[parity];
            // The pending finish spread over the pass's groups of products.
            let groups = POINTS * 3 * if layer.bf16_terms == Bf16Terms::Split { 3 } else { 1 };
            let per_group = pending.as_ref().map_or(0, |f| f.units().div_ceil(groups));
            // Its products are in the other half of the scratch, which this pass does not write.
            let mut between = Between {
                pending: &mut pending,
                per_group,
            };
            // SAFETY: weight tiles first.. of every point and kernel row, inside `weights`; the
            // inputs' block-point regions inside the rows (asserted by the dispatch); the products
            // of 2 blocks x 6 points x 24 channels inside this half of the scratch.
            unsafe {
                match (pass_tiles, pair_blocks, layer.bf16_terms) {
                    (2, 2, Bf16Terms::Split) => pass::<2, 2, true>(operands, products, &mut between),
                    (2, _, Bf16Terms::Split) => pass::<2, 1, true>(operands, products, &mut between),
                    (_, 2, Bf16Terms::Split) => pass::<1, 2, true>(operands, products, &mut between),
                    (_, _, Bf16Terms::Split) => pass::<1, 1, true>(operands, products, &mut between),
                    (2, 2, Bf16Terms::Plain) => pass::<2, 2, false>(operands, products, &mut between),
                    (2, _, Bf16Terms::Plain) => pass::<2, 1, false>(operands, products, &mut between),
                    (_, 2, Bf16Terms::Plain) => pass::<1, 2, false>(operands, products, &mut between),
                    (_, _, Bf16Terms::Plain) => pass::<1, 1, false>(operands, products, &mut between),
                }
            }
            if let Some(mut finish) = pending.take() {
                // SAFETY: as above.
                unsafe { finish.advance(usize::MAX) };
            }
            let stride = POINTS * PASS_TILES * TILE_ROWS * BLOCK;
            let target = match target {
                avx512::FinishTarget::Blocks(out) => {
                    // SAFETY: block `pair` of the call's blocks, inside `out` (the dispatch).
                    avx512::FinishTarget::Blocks(unsafe { out.add(pair * TILE * co * BLOCK) })
                }
                avx512::FinishTarget::Split { rows, pitch } => avx512::FinishTarget::Split {
                    // SAFETY: the call's block `pair` of the split rows (the dispatch).
                    rows: unsafe { rows.add(pair * BLOCK) },
                    pitch,
                },
            };
            let pass = (pass_tiles * TILE_ROWS, first * TILE_ROWS, pair_blocks);
            // SAFETY: the products were stored by the pass just above, `stride` floats a block;
            // the target's blocks are the pair's (asserted by the dispatch); one pass holds all
            // the channels where the epilogue is fused (asserted above).
            pending = Some(unsafe { avx512::PassFinish::new(layer, products, stride, pass, target) });
            parity ^= 1;
            first += pass_tiles;
        }
    }
    if let Some(mut finish) = pending {
        // SAFETY: as above.
        unsafe { finish.advance(usize::MAX) };
    }
}

/// The pending finish of the pass before, advanced by `per_group` units after each group of
/// a pass's tile products (see [`conv_blocks`]).
struct Between<'a, 'b> {
    pending: &'a mut Option<avx512::PassFinish<'b>>,
    per_group: usize,
}

impl Between<'_, '_> {
    /// Always inlined, with the finish's work (as is [`avx512::PassFinish::advance`]): a call
    /// per group of tile products, as LLVM's own choice sometimes left it, made the AMX frame
    /// 4-5 % slower.
    ///
    /// # Safety
    /// AVX-512F (the AMX Isa implies it); the contract of the finish.
    #[inline(always)]
    unsafe fn run(&mut self) {
        if let Some(finish) = self.pending.as_mut() {
            // SAFETY: the caller's contract.
            unsafe { finish.advance(self.per_group) }
        }
    }
}

/// Where a pass reads: the weight tiles from its first output tile on (`[point][ky][tile of
/// the layer][high, low][12][ci]`, `tiles` a point and kernel row), and each kernel row's
/// blocks (a block-point region: ci * 16 high bf16 values, then ci * 16 low ones).
#[derive(Clone, Copy)]
struct Operands {
    weights: *const u16,
    tiles: usize,
    ci: usize,
    inputs: [[*const u16; PASS_BLOCKS]; 3],
}

/// Loads tile register `$t` from `$ptr`, rows `$stride` bytes apart.
macro_rules! load {
    ($t:literal, $ptr:expr, $stride:expr) => {
        asm!(
            concat!("tileloadd tmm", $t, ", [{p} + {s} * 1]"),
            p = in(reg) $ptr, s = in(reg) $stride,
            options(nostack, readonly)
        )
    };
}

/// tmm`$c` += tmm`$a` (weights) x tmm`$b` (inputs).
macro_rules! product {
    ($c:literal, $a:literal, $b:literal) => {
        asm!(
            concat!("tdpbf16ps tmm", $c, ", tmm", $a, ", tmm", $b),
            options(nostack, nomem)
        )
    };
}

/// The products of `J` weight tiles (tmm4, tmm5) and `B` input tiles (tmm6, tmm7) into the
/// accumulators tmm(2j + b), weight tile by weight tile.
macro_rules! products {
    ($j:expr, $b:expr) => {{
        product!("0", "4", "6");
        if $b == 2 {
            product!("1", "4", "7");
        }
        if $j == 2 {
            product!("2", "5", "6");
            if $b == 2 {
                product!("3", "5", "7");
            }
        }
    }};
}

/// A pass of `J` weight tiles over `B` blocks at every point (see [`conv_blocks`]), of the three
/// split products or, `SPLIT` false, of the high parts alone ([`Bf16Terms`]); block b's
/// products of point m, channel c of the pass at `products[(b * POINTS * 24 + m * 12 J + c) *
/// BLOCK..]` (per block, the layout [`avx512::PassFinish`] reads). `between` runs after each
/// group of products is issued (three a step of split products, one of plain ones).
///
/// # Safety
/// The tile registers configured for `ci` inputs; the operands and products as `conv_blocks`
/// asserts.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx512vbmi,avx2,fma")]
#[inline]
unsafe fn pass<const J: usize, const B: usize, const SPLIT: bool>(
    operands: Operands,
    products: *mut f32,
    between: &mut Between,
) {
    let Operands {
        weights,
        tiles,
        ci,
        inputs,
    } = operands;
    let (weight_stride, input_stride) = (2 * ci, 64usize);
    let tile_len = TILE_ROWS * ci;
    // SAFETY (whole body): the caller's contract; every load reads 12 rows of 2 ci bytes from a
    // weight tile or ci / 2 rows of 64 bytes from a block-point region, every store writes 12
    // rows of 64 bytes inside the products.
    unsafe {
        for m in 0..POINTS {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
            for (ky, row) in inputs.iter().enumerate() {
                let high = |j: usize| weights.add(((m * 3 + ky) * tiles + j) * 2 * tile_len);
                let (w0, w1) = (high(0), high(J - 1));
                let (v0, v1) = (row[0].add(m * ci * BLOCK * 2), row[B - 1].add(m * ci * BLOCK * 2));
                // High weights x high inputs.
                load!("4", w0, weight_stride);
                if J == 2 {
                    load!("5", w1, weight_stride);
                }
                load!("6", v0, input_stride);
                if B == 2 {
                    load!("7", v1, input_stride);
                }
                products!(J, B);
                between.run();
                if !SPLIT {
                    continue;
                }
                // Low weights x high inputs.
                load!("4", w0.add(tile_len), weight_stride);
                if J == 2 {
                    load!("5", w1.add(tile_len), weight_stride);
                }
                products!(J, B);
                between.run();
                // High weights x low inputs.
                load!("6", v0.add(ci * BLOCK), input_stride);
                if B == 2 {
                    load!("7", v1.add(ci * BLOCK), input_stride);
                }
                load!("4", w0, weight_stride);
                if J == 2 {
                    load!("5", w1, weight_stride);
                }
                products!(J, B);
                between.run();
            }
            let at = |j: usize, b: usize| {
                products.add((b * POINTS * PASS_TILES * TILE_ROWS + (m * J + j) * TILE_ROWS) * BLOCK)
            };
            asm!("tilestored [{d} + {s} * 1], tmm0", d = in(reg) at(0, 0), s = in(reg) 64usize, options(nostack));
            if B == 2 {
                asm!("tilestored [{d} + {s} * 1], tmm1", d = in(reg) at(0, 1), s = in(reg) 64usize, options(nostack));
            }
            if J == 2 {
                asm!("tilestored [{d} + {s} * 1], tmm2", d = in(reg) at(1, 0), s = in(reg) 64usize, options(nostack));
                if B == 2 {
                    asm!("tilestored [{d} + {s} * 1], tmm3", d = in(reg) at(1, 1), s = in(reg) 64usize, options(nostack));
                }
            }
        }
    }
}

/// Two channels' 16 values each rounded to bf16 (nearest even) as the VNNI pairs the tile
/// products read, `[tile][channel c, channel c + 1]`: one conversion of both and one byte
/// permute (VBMI's `vpermb` is one micro-op where the word permute `vpermw` is two, and the
/// row transform does two of these a channel pair and point).
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx512vbmi,avx2,fma")]
#[inline]
fn pair_bf16(even: __m512, odd: __m512) -> __m512i {
    // SAFETY: __m512bh and __m512i are both 64 bytes of plain lanes.
    let both = unsafe { std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(odd, even)) };
    // Output pair t: the even channel's bf16 t (bytes 2t, 2t + 1 of `both`), then the odd
    // one's (bytes 32 + 2t, 33 + 2t).
    // SAFETY: PAIR_BYTES is 64 bytes.
    let index = unsafe { _mm512_loadu_si512(PAIR_BYTES.0.as_ptr().cast()) };
    _mm512_permutexvar_epi8(index, both)
}

/// The byte index of [`pair_bf16`]'s permute.
#[repr(C, align(64))]
struct PairBytes([u8; 64]);
static PAIR_BYTES: PairBytes = {
    let mut index = [0u8; 64];
    let mut t = 0;
    while t < 16 {
        let (even, odd) = (2 * t as u8, 32 + 2 * t as u8);
        (index[4 * t], index[4 * t + 1]) = (even, even + 1);
        (index[4 * t + 2], index[4 * t + 3]) = (odd, odd + 1);
        t += 1;
    }
    PairBytes(index)
};

/// As the AVX-512 transform, each block-point region then split into bf16 high and low pairs
/// (a layer of [`Bf16Terms::Plain`] reads the high ones alone).
/// The high pairs' f32 values come back out of the pairs themselves (a bf16 is the top half of
/// an f32): the even channel's in a lane's low half, the odd one's in its high half.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx512vbmi,avx2,fma")]
pub unsafe fn transform_row(src: &[f32], channels: usize, pitch: usize, tiles: usize, dst: &mut [f32]) {
    let top_half = _mm512_set1_epi32(0xFFFF_0000u32 as i32);
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
                    let high = pair_bf16(even[m], odd[m]);
                    let high_even = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(high));
                    let high_odd = _mm512_castsi512_ps(_mm512_and_si512(high, top_half));
                    let low = pair_bf16(_mm512_sub_ps(even[m], high_even), _mm512_sub_ps(odd[m], high_odd));
                    let at = (c / 2) * 2 * BLOCK;
                    _mm512_storeu_si512(region.add(at) as *mut _, high);
                    _mm512_storeu_si512(region.add(channels * BLOCK + at) as *mut _, low);
                }
            }
        }
    }
}

/// Full 16x16x32 tile products on the four accumulators, for the path's peak.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx512vbmi,avx2,fma")]
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
