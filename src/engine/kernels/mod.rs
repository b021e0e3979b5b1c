//! The engine's kernels, one module per instruction set, and the dispatch on [`Isa`]:
//! exhaustive, so that a path is never silently replaced by another.
//!
//! The work of a layer, per block of 16 Winograd tiles of a row (64 output pixels):
//! - [`transform_row`]: a phase-split row (`[channel][phase][1 + tile]`) into the transformed
//!   row the convolution reads, `[block][point][channel][16 tiles]` in fp32 (the AMX path
//!   stores each block-point region as bf16 high and low parts instead, in the same space; see
//!   [`amx`]);
//! - [`conv_block`] (portable and AMX paths, one output row at a time, over one or two blocks):
//!   the 6 point products of every output channel and the output transform, written phase by
//!   phase: `block[(phase * co + c) * 16 + p]` is channel `c` of pixel `4 * (t0 + p) + phase`;
//! - [`conv_rows`] (AVX2 and AVX-512, four output rows at a time): the same for four rows from
//!   six by F(4,3) down the columns (6 x 6 products per tile instead of 4 x 3 x 6), into a
//!   block of that layout per row;
//! - [`epilogue`]: activation and the next LayerNorm, into the next layer's phase-split row;
//! - [`conv_epilogue`] (AMX and AVX-512, the layers before the last): the convolution and the
//!   epilogue in one, straight into the phase-split rows, with no block between them.

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;

use super::isa::{Isa, Path};
use super::pack::PackedWeights;
use super::store::{Segment, Shared, StoreLines, YuvPlanes};
use super::winograd::{POINTS, TILE};
use super::{BLOCK, Epilogue, Layer};

/// Output channels per weight panel of the fp32 paths (6 channels x 2 AVX2 vectors of 8 tiles =
/// 12 accumulators; AVX-512 takes 4 panels at once, 24 accumulators of 16 tiles).
pub const GROUP: usize = 6;
/// Output channels accumulated in one pass before the output transform, over the blocks of a
/// call: the largest pass of any row-by-row path (AMX: 2 tiles of 12 channels over 2 blocks,
/// twice: the pass and the one before it, see [`amx::conv_blocks`]).
const CHANNELS_PER_PASS: usize = 96;
/// Output channels of one chunk of [`conv_rows`] (AVX2: 4 panels one after another; AVX-512: 4
/// panels at once).
const QUAD_CHANNELS_PER_PASS: usize = 24;
/// Floats of the products of one point of a chunk: 6 vertical points of 24 channels of a
/// block.
const QUAD_POINT_PRODUCTS: usize = POINTS * QUAD_CHANNELS_PER_PASS * BLOCK;
/// Floats of a chunk's column outputs: 4 rows of 6 points of 24 channels of a block.
const QUAD_SUMS: usize = TILE * POINTS * QUAD_CHANNELS_PER_PASS * BLOCK;

/// Floats of scratch [`conv_block`] needs: a pass's products at every point over the blocks of
/// a call. Passed in, as zeroing a stack array per call showed up as a memset in profiles.
pub const SCRATCH_LEN: usize = POINTS * CHANNELS_PER_PASS * BLOCK;

/// Where a convolution writes a layer's output.
pub enum ConvOutput<'a> {
    /// The blocks [`conv_block`] and [`conv_rows`] describe, for [`epilogue`] or the stores.
    Blocks(&'a mut [f32]),
    /// The layer's epilogue applied, straight into the next layer's phase-split rows
    /// (`[channel][phase][pitch]`, from the call's first tile on; each row of a step `row_len`
    /// after the one before): see [`fuses_epilogue`].
    Split {
        rows: &'a mut [f32],
        row_len: usize,
        pitch: usize,
    },
}

/// Floats of scratch a convolution of `ci` input channels needs: [`SCRATCH_LEN`], and for
/// [`conv_rows`] a chunk's column outputs, one point's products and the block's vertical
/// points.
pub fn scratch_len(ci: usize) -> usize {
    SCRATCH_LEN.max(QUAD_SUMS + QUAD_POINT_PRODUCTS + POINTS * POINTS * ci * BLOCK)
}

/// Output rows a path computes at a time: one for the paths with [`conv_block`], four for those
/// with [`conv_rows`].
pub fn rows_per_step(path: Path) -> usize {
    match path {
        Path::Portable | Path::AmxBf16 => 1,
        Path::Avx2 | Path::Avx512 => super::winograd::ROW_QUAD,
    }
}

const LN_EPS: f32 = crate::model::network::LAYERNORM_EPS as f32;
const LRELU_SLOPE: f32 = crate::model::network::LRELU_SLOPE as f32;

/// Whether the x86 paths' modules exist in this build; detection never selects them elsewhere.
#[cfg(not(target_arch = "x86_64"))]
fn x86_only(path: Path) -> ! {
    unreachable!("{path} is detected only on x86-64")
}

/// Whether the path applies the epilogue of a layer of `co` output channels in the convolution
/// itself ([`conv_epilogue`]): the AMX path, whose pass of 24 channels holds every channel of a
/// pixel of the layers before the last, and the AVX-512 path, which sums the channels' values
/// across its passes.
pub fn fuses_epilogue(path: Path, co: usize) -> bool {
    match path {
        #[cfg(target_arch = "x86_64")]
        Path::AmxBf16 => co <= amx::PASS_TILES * super::pack::TILE_ROWS,
        Path::Avx512 => true,
        // Measured slower on AVX2 (5-8 % a frame): its pass of 8-lane halves kept the sums in
        // memory and branched in its innermost loop.
        Path::Avx2 | Path::Portable => false,
        #[cfg(not(target_arch = "x86_64"))]
        Path::AmxBf16 => false,
    }
}

/// [`conv_block`] or [`conv_rows`], then [`epilogue`] on every phase of each block, in one
/// (paths and layers that [`fuses_epilogue`]): the layer's output, activated and normalised,
/// straight into the next layer's phase-split rows `split` (`[channel][phase][pitch]`, from the
/// call's first tile on; each row of a step `row_len` after the one before), with no block
/// between them. `rows` as the path's convolution reads them (three or six).
pub fn conv_epilogue(
    isa: Isa,
    layer: &Layer,
    rows: &[&[f32]],
    blocks: usize,
    split: &mut [f32],
    (row_len, pitch): (usize, usize),
    scratch: &mut [f32],
) {
    let step = rows_per_step(isa.path());
    check_call(isa, layer, rows, blocks, true, scratch);
    assert!(
        fuses_epilogue(isa.path(), layer.co)
            && rows.len() == step + 2
            && pitch >= blocks * BLOCK
            && row_len >= layer.co * TILE * pitch
            && split.len() >= (step - 1) * row_len + (layer.co * TILE - 1) * pitch + blocks * BLOCK,
        "conv_epilogue writes inside the split rows"
    );
    let out = ConvOutput::Split {
        rows: split,
        row_len,
        pitch,
    };
    match (isa.path(), &layer.weights) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `conv_block`; the split rows' writes are bounded by the assert above.
        (Path::AmxBf16, PackedWeights::Bf16Tiles(w)) => unsafe {
            amx::conv_blocks(layer, w, [rows[0], rows[1], rows[2]], blocks, out, scratch)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `conv_rows`; the split rows' writes are bounded by the assert above.
        (Path::Avx512, PackedWeights::Fp32Quads(w)) => unsafe {
            avx512::conv_quad(layer, w, std::array::from_fn(|r| rows[r]), blocks, out, scratch)
        },
        (path, _) => panic!("the {path} path does not fuse the epilogue, or its weights are packed for another"),
    }
}

/// What every convolution call asserts before its kernel reads: whole weight panels, a block
/// count the path takes, the scratch, and rows that hold the blocks' inputs.
fn check_call(isa: Isa, layer: &Layer, rows: &[&[f32]], blocks: usize, fused: bool, scratch: &[f32]) {
    assert!(
        layer.co.is_multiple_of(GROUP)
            && (1..=blocks_per_call(isa.path(), fused)).contains(&blocks)
            && scratch.len() >= scratch_len(layer.ci)
    );
    for row in rows {
        assert!(
            row.len() >= blocks * POINTS * layer.ci * BLOCK,
            "a convolution reads inside its rows"
        );
    }
}

/// Blocks of tiles a path's [`conv_block`] or [`conv_rows`] takes at a time, or its
/// [`conv_epilogue`] (`fused`).
pub fn blocks_per_call(path: Path, fused: bool) -> usize {
    match path {
        #[cfg(target_arch = "x86_64")]
        Path::AmxBf16 => amx::blocks_per_call(fused),
        #[cfg(not(target_arch = "x86_64"))]
        Path::AmxBf16 => 1,
        Path::Portable | Path::Avx2 | Path::Avx512 => 1,
    }
}

/// One layer over `blocks` (at most [`blocks_per_call`]) consecutive blocks of one row
/// (portable and AMX paths): products, output transform and bias, block b into
/// `out[b * TILE * co * BLOCK..]`.
pub fn conv_block(isa: Isa, layer: &Layer, rows: [&[f32]; 3], blocks: usize, out: &mut [f32], scratch: &mut [f32]) {
    let block_len = TILE * layer.co * BLOCK;
    check_call(isa, layer, &rows, blocks, false, scratch);
    assert!(out.len() >= blocks * block_len, "conv_block writes inside its blocks");
    match (isa.path(), &layer.weights) {
        (Path::Portable, PackedWeights::Fp32(w)) => {
            let block_rows = |b: usize| rows.map(|row| &row[b * POINTS * layer.ci * BLOCK..]);
            for (b, block) in out.chunks_exact_mut(block_len).take(blocks).enumerate() {
                portable::conv_block(layer, w, block_rows(b), block);
            }
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AMX-TILE/BF16 and AVX-512F/BW/BF16/VBMI detected and the tile state granted by
        // Linux; the weights were packed for the tile layout (this arm's pattern); the reads
        // and writes are bounded by the asserts above.
        (Path::AmxBf16, PackedWeights::Bf16Tiles(w)) => unsafe {
            amx::conv_blocks(layer, w, rows, blocks, ConvOutput::Blocks(out), scratch)
        },
        #[cfg(not(target_arch = "x86_64"))]
        (path @ Path::AmxBf16, _) => x86_only(path),
        (path, _) => panic!("layer weights packed for another path than {path}, or a path of several rows a step"),
    }
}

/// One layer over `blocks` (at most [`blocks_per_call`]) consecutive blocks of a step of
/// several rows (the AVX-512 path's two, the AVX2 path's four: [`rows_per_step`]; the portable
/// path any, a row at a time, for the tests of the engine's steps): from the transformed rows
/// r - 1 .. r + step, output rows r .. r + step - 1 of block b into
/// `out[(b * step + row) * TILE * co * BLOCK..]`, each block as [`conv_block`] writes one.
pub fn conv_rows(isa: Isa, layer: &Layer, rows: &[&[f32]], blocks: usize, out: &mut [f32], scratch: &mut [f32]) {
    let step = rows.len().saturating_sub(2);
    let block_len = TILE * layer.co * BLOCK;
    check_call(isa, layer, rows, blocks, false, scratch);
    assert!(
        step >= 1
            && (step == rows_per_step(isa.path()) || isa.path() == Path::Portable)
            && out.len() >= step * blocks * block_len,
        "conv_rows reads a step's rows and writes inside its blocks"
    );
    match (isa.path(), &layer.weights) {
        (Path::Portable, PackedWeights::Fp32(w)) => {
            for (index, block) in out.chunks_exact_mut(block_len).take(blocks * step).enumerate() {
                let (b, row) = (index / step, index % step);
                let block_rows = std::array::from_fn(|r| &rows[row + r][b * POINTS * layer.ci * BLOCK..]);
                portable::conv_block(layer, w, block_rows, block);
            }
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the Isa value exists only where detection found AVX2 and FMA; the reads and
        // writes are bounded by the asserts above.
        (Path::Avx2, PackedWeights::Fp32Quads(w)) => unsafe {
            avx2::conv_quad(layer, w, std::array::from_fn(|r| rows[r]), blocks, out, scratch)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, AVX-512F detected.
        (Path::Avx512, PackedWeights::Fp32Quads(w)) => unsafe {
            let rows = std::array::from_fn(|r| rows[r]);
            avx512::conv_quad(layer, w, rows, blocks, ConvOutput::Blocks(out), scratch)
        },
        #[cfg(not(target_arch = "x86_64"))]
        (path @ (Path::Avx2 | Path::Avx512), _) => x86_only(path),
        (path, _) => panic!("layer weights packed for another path than {path}, or a path of single rows"),
    }
}

/// Applies the epilogue to one phase of a computed block (`co * BLOCK` values) and writes
/// channel `c` of the result to `dst[c * dst_stride..][..BLOCK]` (straight into the next
/// layer's phase-split row). `block` is used as scratch. The AMX path's epilogue is the
/// AVX-512 one: its rows are fp32 until transformed.
pub fn epilogue(isa: Isa, epilogue: &Epilogue, co: usize, block: &mut [f32], dst: &mut [f32], dst_stride: usize) {
    assert!(block.len() >= co * BLOCK && dst.len() >= (co - 1) * dst_stride + BLOCK);
    match isa.path() {
        Path::Portable => portable::epilogue(epilogue, co, block, dst, dst_stride),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the features were detected; the writes are bounded by the assert.
        Path::Avx2 => unsafe { avx2::epilogue(epilogue, co, block, dst, dst_stride) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F detected (the AMX path's Isa implies it); bounded as above.
        Path::Avx512 | Path::AmxBf16 => unsafe { avx512::epilogue(epilogue, co, block, dst, dst_stride) },
        #[cfg(not(target_arch = "x86_64"))]
        path => x86_only(path),
    }
}

/// Transforms a phase-split row of `channels` channels (`pitch` = tiles + 2 per phase) into
/// `dst`, the transformed row of the path; `tiles` is a whole number of blocks.
pub fn transform_row(isa: Isa, src: &[f32], channels: usize, pitch: usize, tiles: usize, dst: &mut [f32]) {
    assert!(
        tiles.is_multiple_of(BLOCK)
            && pitch >= tiles + 2
            && src.len() >= channels * TILE * pitch
            && dst.len() >= POINTS * channels * tiles
    );
    match isa.path() {
        Path::Portable => portable::transform_row(src, channels, pitch, tiles, dst),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: detected features; reads and writes bounded by the assert.
        Path::Avx2 => unsafe { avx2::transform_row(src, channels, pitch, tiles, dst) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Path::Avx512 => unsafe { avx512::transform_row(src, channels, pitch, tiles, dst) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above; an even channel count is part of the AMX layout.
        Path::AmxBf16 => {
            assert!(channels.is_multiple_of(2), "the AMX row layout pairs channels");
            unsafe { amx::transform_row(src, channels, pitch, tiles, dst) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        path => x86_only(path),
    }
}

/// One LR row of one colour (its float samples, `row`) unshuffled into the phase-split rows of
/// the head's input: sample 8t + s goes to stored tile t + 1 of phase s / 2 of channel
/// `channel + s % 2` (pixel 4t + s / 2 of the unshuffled row, column s % 2 of its 2 x 2 area),
/// channels `channel_len` floats apart and phases `pitch`.
pub fn unshuffle_samples(
    isa: Isa,
    row: &[f32],
    split: &mut [f32],
    channel: usize,
    (channel_len, pitch): (usize, usize),
) {
    let tiles = row.len().div_ceil(2 * TILE);
    assert!(
        (channel + 2) * channel_len <= split.len() && (TILE - 1) * pitch + 1 + tiles <= channel_len,
        "the phase-split rows hold the row's tiles"
    );
    let split = &mut split[channel * channel_len..(channel + 2) * channel_len];
    match isa.path() {
        Path::Portable => portable::unshuffle_samples(row, split, channel_len, pitch, 0),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 is part of every x86 path but the portable one (detected); the writes
        // are bounded by the assert.
        Path::Avx2 | Path::Avx512 | Path::AmxBf16 => unsafe { avx2::unshuffle_samples(row, split, channel_len, pitch) },
        #[cfg(not(target_arch = "x86_64"))]
        path => x86_only(path),
    }
}

/// The pixel shuffle of a block converted to YUV 4:2:0 (see [`super::store`]), compiled for
/// the path's vector width.
pub fn store_yuv420(
    isa: Isa,
    seg: Segment,
    r: usize,
    target: &YuvPlanes,
    out_w: usize,
    h: usize,
    lines: &mut StoreLines,
) {
    match isa.path() {
        // SAFETY: the scalar line builder runs anywhere.
        Path::Portable => unsafe {
            use super::store::{shuffle_line, yuv420};
            yuv420(seg, r, target, out_w, h, shuffle_line, lines)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: detected features.
        Path::Avx2 => unsafe { avx2::store_yuv420(seg, r, target, out_w, h, lines) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: detected features.
        Path::Avx512 | Path::AmxBf16 => unsafe { avx512::store_yuv420(seg, r, target, out_w, h, lines) },
        #[cfg(not(target_arch = "x86_64"))]
        path => x86_only(path),
    }
}

/// The pixel shuffle of a block into interleaved 8-bit RGB (see [`super::store`]), compiled for
/// the path's vector width.
pub fn store_rgb8(isa: Isa, seg: Segment, r: usize, out: Shared<u8>, out_w: usize, h: usize) {
    match isa.path() {
        // SAFETY: the scalar line builder runs anywhere.
        Path::Portable => unsafe { super::store::rgb8(seg, r, out, out_w, h, super::store::shuffle_line) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: detected features.
        Path::Avx2 => unsafe { avx2::store_rgb8(seg, r, out, out_w, h) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: detected features.
        Path::Avx512 | Path::AmxBf16 => unsafe { avx512::store_rgb8(seg, r, out, out_w, h) },
        #[cfg(not(target_arch = "x86_64"))]
        path => x86_only(path),
    }
}

/// The pixel shuffle of a block into planar RGB floats (see [`super::store`]), compiled for the
/// path's vector width.
pub fn store_float(isa: Isa, seg: Segment, r: usize, out: Shared<f32>, out_w: usize, h: usize, lines: &mut StoreLines) {
    match isa.path() {
        // SAFETY: the scalar line builder runs anywhere.
        Path::Portable => unsafe {
            super::store::store_shuffled(seg, r, out, out_w, h, super::store::shuffle_line, lines)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: detected features.
        Path::Avx2 => unsafe { avx2::store_float(seg, r, out, out_w, h, lines) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: detected features.
        Path::Avx512 | Path::AmxBf16 => unsafe { avx512::store_float(seg, r, out, out_w, h, lines) },
        #[cfg(not(target_arch = "x86_64"))]
        path => x86_only(path),
    }
}

/// Runs a fixed burst of the path's fastest multiply-accumulate instruction on independent
/// accumulators; returns the multiply-accumulates done (for the peak that `bench` reports).
pub fn mac_burst(isa: Isa) -> u64 {
    match isa.path() {
        Path::Portable => portable::fma_burst(),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: detected features.
        Path::Avx2 => unsafe { avx2::fma_burst() },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: detected features.
        Path::Avx512 => unsafe { avx512::fma_burst() },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: detected features and the tile state granted.
        Path::AmxBf16 => unsafe { amx::tile_burst() },
        #[cfg(not(target_arch = "x86_64"))]
        path => x86_only(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each phase-split row (`channels` channels, `pitch` a phase) transformed by `isa`.
    fn transformed_rows(isa: Isa, splits: &[Vec<f32>], channels: usize, pitch: usize, tiles: usize) -> Vec<Vec<f32>> {
        splits
            .iter()
            .map(|split| {
                let mut row = vec![0f32; POINTS * channels * tiles];
                transform_row(isa, split, channels, pitch, tiles, &mut row);
                row
            })
            .collect()
    }

    /// Every path's GELU (the epilogue with no LayerNorm) within 5e-7 + 1e-7 |x| (an ulp at
    /// 10) of GELU in f64, over [-6, 6] and for NaN. (1/2 x (1 + erf(x / sqrt 2)) in f32 loses
    /// most of its 6e-8 at x = -5.6 to the cancellation in 1 + erf.)
    #[test]
    fn every_path_makes_gelu_to_an_ulp() {
        use crate::model::Activation;
        let gelu_alone = Epilogue {
            activation: Some(Activation::Gelu),
            norm: None,
        };
        let mut values: Vec<f32> = (-1200..=1200).map(|i| i as f32 / 200.0).collect();
        values.extend([-0.0, f32::NAN]);
        values.resize(values.len().next_multiple_of(BLOCK), 1.0);
        let exact =
            |x: f32| x as f64 * 0.5 * (1.0 + crate::engine::math::erf_f64(x as f64 * std::f64::consts::FRAC_1_SQRT_2));
        for (path, isa) in Isa::survey() {
            let Ok(isa) = isa else {
                println!("SKIP {path} GELU: not on this CPU");
                continue;
            };
            let mut worst = 0f64;
            for block in values.chunks_exact(BLOCK) {
                let mut got = [0f32; BLOCK];
                epilogue(isa, &gelu_alone, 1, &mut block.to_vec(), &mut got, BLOCK);
                for (&x, got) in block.iter().zip(got) {
                    if x.is_nan() {
                        assert!(got.is_nan(), "{path}: GELU(NaN) = {got}");
                    } else {
                        worst = worst.max((got as f64 - exact(x)).abs() / (5e-7 + 1e-7 * x.abs() as f64));
                    }
                }
            }
            assert!(worst <= 1.0, "{path}: GELU off by {worst} times the bound");
            println!("{path}: GELU off by at most {worst:.2} times the bound");
        }
    }

    /// Every path's unshuffle puts each sample where the portable one does, and nothing else:
    /// rows shorter than, equal to and longer than the vector paths' 64 samples, with tails.
    #[test]
    fn every_path_unshuffles_each_sample_to_the_portable_place() {
        let portable = Isa::portable();
        for width in [1usize, 7, 63, 64, 65, 130, 200] {
            let row: Vec<f32> = (0..width).map(|i| i as f32 + 0.5).collect();
            let pitch = width.div_ceil(2 * TILE) + 2;
            let layout = (TILE * pitch, pitch);
            // Three channels: the middle two written, the first and last must stay untouched.
            let unshuffled = |isa: Isa| {
                let mut split = vec![-1f32; 4 * TILE * pitch];
                unshuffle_samples(isa, &row, &mut split, 1, layout);
                split
            };
            let expected = unshuffled(portable);
            let written = expected.iter().filter(|&&v| v >= 0.0).count();
            assert_eq!(written, width, "every sample once, at width {width}");
            for (path, isa) in Isa::survey() {
                match isa {
                    Ok(isa) => assert_eq!(unshuffled(isa), expected, "{path} at width {width}"),
                    Err(why) => println!("SKIP {path} unshuffle: {why}"),
                }
            }
        }
    }

    #[test]
    fn a_fused_epilogue_writes_the_bits_of_the_convolution_then_the_epilogue() {
        use crate::HostTensor;
        use crate::model::Activation;
        // Five blocks (calls of every size a path takes, pairs and a single block), a 24 -> 24
        // layer with GELU and LayerNorm, and one with neither.
        let (ci, co, max_blocks) = (24, 24, 5);
        let wave = |n: usize, k: f32| (0..n).map(|i| (i as f32 * k).sin() * 0.3).collect::<Vec<f32>>();
        let weight = HostTensor::new(vec![co, ci, 3, 3], wave(co * ci * 9, 0.37));
        let bias = HostTensor::new(vec![co], wave(co, 1.3));
        let norm = Some((wave(co, 0.7).iter().map(|w| w + 1.0).collect(), wave(co, 0.9)));
        let epilogues = [
            Epilogue {
                activation: Some(Activation::Gelu),
                norm,
            },
            Epilogue {
                activation: None,
                norm: None,
            },
        ];
        let pitch = max_blocks * BLOCK + 2;
        let row_len = co * TILE * pitch;
        // Phase-split input rows, transformed by each path as the engine does.
        let splits: Vec<Vec<f32>> = (0..6)
            .map(|r| wave(ci * TILE * pitch, 0.11 + r as f32 * 0.05))
            .collect();
        let mut tested = 0;
        for (path, isa) in Isa::survey() {
            let isa = match isa {
                Ok(isa) => isa,
                Err(why) => {
                    println!("SKIP {path} fused epilogue: {why}");
                    continue;
                }
            };
            let inputs = transformed_rows(isa, &splits, ci, pitch, max_blocks * BLOCK);
            for epilogue in &epilogues {
                let layer = Layer::new(&weight, &bias, epilogue.clone(), path);
                if !fuses_epilogue(path, co) {
                    continue;
                }
                let step = rows_per_step(path);
                // The rows of a call from block t0 on.
                let rows_from = |t0: usize| -> Vec<&[f32]> {
                    inputs
                        .iter()
                        .take(step + 2)
                        .map(|r| &r[t0 * POINTS * ci * BLOCK..])
                        .collect()
                };
                let mut scratch = vec![0f32; scratch_len(ci)];
                // Apart: the blocks, then the epilogue phase by phase into the split rows.
                let mut apart = vec![f32::NAN; step * row_len];
                let per_call = blocks_per_call(path, false);
                for t0 in (0..max_blocks).step_by(per_call) {
                    let (blocks, rows) = (per_call.min(max_blocks - t0), rows_from(t0));
                    let mut out = vec![0f32; blocks * step * TILE * co * BLOCK];
                    if step == 1 {
                        conv_block(isa, &layer, [rows[0], rows[1], rows[2]], blocks, &mut out, &mut scratch);
                    } else {
                        conv_rows(isa, &layer, &rows, blocks, &mut out, &mut scratch);
                    }
                    for (index, block) in out.chunks_exact_mut(TILE * co * BLOCK).enumerate() {
                        let (b, j) = (t0 + index / step, index % step);
                        for (phase, result) in block.chunks_exact_mut(co * BLOCK).enumerate() {
                            let dst = &mut apart[j * row_len + phase * pitch + b * BLOCK..];
                            super::epilogue(isa, &layer.epilogue, co, result, dst, TILE * pitch);
                        }
                    }
                }
                let mut fused = vec![f32::NAN; step * row_len];
                // In calls of two blocks (where the path takes two), then of as many as it takes.
                let most = blocks_per_call(path, true);
                for per_call in [2.min(most), most] {
                    fused.fill(f32::NAN);
                    for t0 in (0..max_blocks).step_by(per_call) {
                        let (blocks, rows) = (per_call.min(max_blocks - t0), rows_from(t0));
                        let split = &mut fused[t0 * BLOCK..];
                        conv_epilogue(isa, &layer, &rows, blocks, split, (row_len, pitch), &mut scratch);
                    }
                    let same = apart.iter().zip(&fused).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{path}, calls of {per_call} blocks: the fused epilogue differs");
                }
                assert!(apart.iter().filter(|v| !v.is_nan()).count() == step * co * TILE * max_blocks * BLOCK);
                tested += 1;
            }
        }
        println!("fused epilogue checked on {tested} path and epilogue pairs");
    }

    #[test]
    fn plain_bf16_terms_are_the_products_of_the_operands_rounded_to_bf16() {
        use super::super::pack::Bf16Terms;
        use crate::HostTensor;
        let Ok(amx) = Isa::survey()
            .into_iter()
            .find(|(path, _)| *path == Path::AmxBf16)
            .unwrap()
            .1
        else {
            println!("SKIP plain bf16 terms: no AMX-BF16 (or no permission for its tile state)");
            return;
        };
        // 36 outputs (a pass of two weight tiles, then one of one) over three blocks (a pair,
        // then one), 24 inputs.
        let (ci, co, blocks) = (24, 36, 3);
        let wave = |n: usize, k: f32| (0..n).map(|i| (i as f32 * k).sin() * 0.3).collect::<Vec<f32>>();
        let weight = HostTensor::new(vec![co, ci, 3, 3], wave(co * ci * 9, 0.37));
        let bias = HostTensor::new(vec![co], wave(co, 1.3));
        let epilogue = Epilogue {
            activation: None,
            norm: None,
        };
        let pitch = blocks * BLOCK + 2;
        let splits: Vec<Vec<f32>> = (0..3)
            .map(|r| wave(ci * TILE * pitch, 0.11 + r as f32 * 0.05))
            .collect();
        let run = |isa: Isa, layer: &Layer, rows: &[Vec<f32>]| {
            let mut out = vec![f32::NAN; blocks * TILE * co * BLOCK];
            let mut scratch = vec![0f32; scratch_len(ci)];
            let per_call = blocks_per_call(isa.path(), false);
            for t0 in (0..blocks).step_by(per_call) {
                let n = per_call.min(blocks - t0);
                let rows = std::array::from_fn(|r| &rows[r][t0 * POINTS * ci * BLOCK..]);
                conv_block(isa, layer, rows, n, &mut out[t0 * TILE * co * BLOCK..], &mut scratch);
            }
            out
        };
        // The reference: the portable path (the same row scheme) in fp32, with the Winograd-domain
        // weights rounded to bf16 and the high parts of the AMX transform as its inputs (the two
        // transforms' fp32 sums can differ in a last bit, which now and then rounds a value to
        // the other bf16: one such value moved an output by 1.3e-3 of the largest).
        let portable = Isa::portable();
        let mut rounded = Layer::new(&weight, &bias, epilogue.clone(), Path::Portable);
        let PackedWeights::Fp32(w) = &mut rounded.weights else {
            unreachable!()
        };
        w.iter_mut().for_each(|v| *v = half::bf16::from_f32(*v).to_f32());
        // The AMX rows hold both parts whatever the terms; the plain ones read the high halves.
        let amx_rows = transformed_rows(amx, &splits, ci, pitch, blocks * BLOCK);
        let high_parts = |row: &Vec<f32>| {
            // The high halves of the block-point regions, [channel pair][tile][2] bf16, to the
            // portable [channel][tile].
            let mut values = vec![0f32; row.len()];
            for (region, out) in row.chunks_exact(ci * BLOCK).zip(values.chunks_exact_mut(ci * BLOCK)) {
                for (pair, lanes) in region[..ci / 2 * BLOCK].iter().enumerate() {
                    let bits = lanes.to_bits();
                    let (c, t) = (pair / BLOCK * 2, pair % BLOCK);
                    out[c * BLOCK + t] = f32::from_bits(bits << 16);
                    out[(c + 1) * BLOCK + t] = f32::from_bits(bits & 0xFFFF_0000);
                }
            }
            values
        };
        let rows: Vec<Vec<f32>> = amx_rows.iter().map(high_parts).collect();
        let want = run(portable, &rounded, &rows);
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = |terms: Bf16Terms| {
            let layer = Layer {
                bf16_terms: terms,
                ..Layer::new(&weight, &bias, epilogue.clone(), Path::AmxBf16)
            };
            let got = run(amx, &layer, &amx_rows);
            got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / scale
        };
        let (plain, split) = (worst(Bf16Terms::Plain), worst(Bf16Terms::Split));
        // fp32 sums in another order, against bf16's 2^-9 a operand, which the split products undo.
        assert!(plain < 1e-5, "plain terms {plain:e} from the rounded reference");
        assert!(
            split > 20.0 * plain,
            "split terms {split:e}, plain {plain:e}: the low parts count"
        );
        println!("relative to the bf16-rounded reference: plain {plain:e}, split {split:e}");
    }

    /// The store tests' segment: `count` pixels of a block of `co` channels, the second block
    /// of output row 1.
    fn second_segment(block: &[f32], co: usize, count: usize) -> Segment<'_> {
        Segment {
            block,
            co,
            y: 1,
            first: TILE * BLOCK,
            count,
        }
    }

    #[test]
    fn every_path_stores_the_pixel_shuffle_as_the_scalar_code() {
        // Each shuffle factor of scales 1 to 4, a whole segment and a partial one, at an offset.
        for r in [2, 4, 6, 8] {
            let co = 3 * r * r;
            let block: Vec<f32> = (0..TILE * co * BLOCK).map(|v| v as f32 * 0.25 - 7.0).collect();
            let (h, out_w) = (3, 2 * TILE * BLOCK * r);
            for count in [TILE * BLOCK, 37] {
                let seg = second_segment(&block, co, count);
                let store = |isa: Isa| {
                    let mut float = vec![f32::NAN; 3 * h * r * out_w];
                    let mut bytes = vec![0u8; 3 * h * r * out_w];
                    let mut lines = StoreLines::new();
                    store_float(isa, seg, r, Shared(float.as_mut_ptr()), out_w, h, &mut lines);
                    super::super::store::store_fence();
                    store_rgb8(isa, seg, r, Shared(bytes.as_mut_ptr()), out_w, h);
                    (float, bytes)
                };
                let (want_float, want_bytes) = store(Isa::portable());
                assert_eq!(
                    want_float.iter().filter(|v| !v.is_nan()).count(),
                    3 * r * count * r,
                    "r {r}: the segment's samples written"
                );
                for (path, isa) in Isa::survey() {
                    let Ok(isa) = isa else {
                        println!("SKIP {path} store: not on this CPU");
                        continue;
                    };
                    let (float, bytes) = store(isa);
                    let same = float.iter().zip(&want_float).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "r {r}, {count} pixels, {path}: float store differs");
                    assert!(
                        bytes == want_bytes,
                        "r {r}, {count} pixels, {path}: 8-bit store differs"
                    );
                }
            }
        }
    }

    #[test]
    fn every_path_stores_4_2_0_as_the_frame_encoder() {
        // Each shuffle factor of scales 1 to 4 (chroma shuffles of 1 to 4), a whole segment
        // and a partial one, at an offset; values inside and outside the range, infinities and
        // NaN; 8-bit limited and 10-bit full range.
        use crate::imaging::Image;
        use crate::video::color::FrameEncoder;
        use crate::video::y4m::Header;
        use crate::yuv::{ColorSpec, Matrix, YuvCoefficients};
        for (matrix, full_range, depth) in [(Matrix::Bt709, false, 8u32), (Matrix::Bt601, true, 10)] {
            let spec = ColorSpec {
                matrix,
                full_range,
                depth,
            };
            let bytes = depth.div_ceil(8) as usize;
            for r in [2, 4, 6, 8] {
                let co = 3 * r * r;
                let block: Vec<f32> = (0..TILE * co * BLOCK)
                    .map(|i| match (i * 31) % 97 {
                        0 => f32::NAN,
                        1 => f32::INFINITY,
                        2 => f32::NEG_INFINITY,
                        _ => ((i * 7919) % 1000) as f32 / 700.0 - 0.2,
                    })
                    .collect();
                let (h, out_w) = (2, 2 * TILE * BLOCK * r);
                let tag = if depth == 8 {
                    "C420".to_string()
                } else {
                    format!("C420p{depth}")
                };
                let header = Header::read(&mut format!("YUV4MPEG2 W{out_w} H{} {tag}\n", h * r).as_bytes()).unwrap();
                for count in [TILE * BLOCK, 37] {
                    let seg = second_segment(&block, co, count);
                    // The float store's frame (portable), converted whole by the video module.
                    let mut float = vec![0f32; 3 * h * r * out_w];
                    store_float(
                        Isa::portable(),
                        seg,
                        r,
                        Shared(float.as_mut_ptr()),
                        out_w,
                        h,
                        &mut StoreLines::new(),
                    );
                    super::super::store::store_fence();
                    let want = FrameEncoder::default()
                        .encode(&Image::new(3, h * r, out_w, float), &header, spec)
                        .clone();
                    let (rows, columns) = (seg.y * r..seg.y * r + r, seg.first * r..(seg.first + count) * r);
                    for (path, isa) in Isa::survey() {
                        let Ok(isa) = isa else {
                            println!("SKIP {path} 4:2:0 store: not on this CPU");
                            continue;
                        };
                        let mut planes =
                            [h * r * out_w, h * r * out_w / 4, h * r * out_w / 4].map(|n| vec![0u8; n * bytes]);
                        let target = YuvPlanes {
                            planes: [0, 1, 2].map(|k| Shared(planes[k].as_mut_ptr())),
                            coefficients: YuvCoefficients::new(spec),
                        };
                        store_yuv420(isa, seg, r, &target, out_w, h, &mut StoreLines::new());
                        super::super::store::store_fence();
                        let sample = |plane: &[u8], at: usize| -> u16 {
                            if bytes == 1 {
                                plane[at] as u16
                            } else {
                                u16::from_le_bytes([plane[2 * at], plane[2 * at + 1]])
                            }
                        };
                        for y in rows.clone() {
                            for x in columns.clone() {
                                let at = y * out_w + x;
                                assert_eq!(
                                    sample(&planes[0], at),
                                    want.y[at],
                                    "r {r}, {count}, {depth} bits, {path}: luma ({y}, {x})"
                                );
                                if y % 2 == 0 && x % 2 == 0 {
                                    let c = y / 2 * out_w / 2 + x / 2;
                                    assert_eq!(
                                        sample(&planes[1], c),
                                        want.u[c],
                                        "r {r}, {depth} bits, {path}: Cb ({y}, {x})"
                                    );
                                    assert_eq!(
                                        sample(&planes[2], c),
                                        want.v[c],
                                        "r {r}, {depth} bits, {path}: Cr ({y}, {x})"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
