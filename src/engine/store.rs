//! The last layer's stores: the pixel shuffle into planar RGB, or straight into a 4:2:0 frame.

use super::BLOCK;
use super::winograd::TILE;
use crate::imaging::picture::level;
use crate::yuv::YuvCoefficients;

/// The largest pixel shuffle factor (2 x scale 4), for the stores' row buffers.
pub const MAX_SHUFFLE: usize = 8;

/// The part of a block that is inside the image: output rows `y * r ..`, LR-half columns
/// `first .. first + count` (block layout as [`kernels::conv_block`] writes it).
#[derive(Clone, Copy)]
pub struct Segment<'a> {
    pub block: &'a [f32],
    pub co: usize,
    pub y: usize,
    pub first: usize,
    pub count: usize,
}

impl Segment<'_> {
    /// Channel `c` of phase `phase`: pixels `first + 4p + phase`.
    pub fn channel(&self, phase: usize, c: usize) -> &[f32; BLOCK] {
        self.block[(phase * self.co + c) * BLOCK..][..BLOCK]
            .try_into()
            .expect("a whole block")
    }
}

/// Floats of one output row of a segment: 64 pixels at the largest shuffle factor.
pub const LINE: usize = TILE * BLOCK * MAX_SHUFFLE;

/// Output row `i` of plane `ch` of a segment's pixel shuffle, in the order the frame holds it:
/// `line[(TILE * p + phase) * r + j]` is conv channel `(ch * r + i) * r + j` of pixel
/// `TILE * p + phase`. Read as a matrix whose row `phase * r + j` is that channel's 16 values,
/// the line is its transpose (16 rows of 4r); the vector paths transpose in registers
/// (`kernels::*::shuffle_line`), this is the scalar form.
#[inline(always)]
pub fn shuffle_line(seg: &Segment, ch: usize, i: usize, r: usize, line: &mut [f32; LINE]) {
    for j in 0..r {
        for phase in 0..TILE {
            let values = seg.channel(phase, (ch * r + i) * r + j);
            for (p, &v) in values.iter().enumerate() {
                line[(TILE * p + phase) * r + j] = v;
            }
        }
    }
}

/// How a path builds a [`shuffle_line`].
pub type LineBuilder = unsafe fn(&Segment, usize, usize, usize, &mut [f32; LINE]);

/// PixelShuffle(r): conv channel c = (ch, i, j) of pixel x goes to output row y*r + i, column
/// x*r + j of plane ch. Each output row of the segment is assembled by `shuffle` in a small
/// buffer and copied out in one piece, so the 4K frame is written in runs rather than
/// scattered floats. Inlined into each path's compiled copy (`kernels::store_float`).
///
/// # Safety
/// `shuffle` runs on this CPU (its instruction set detected).
#[inline(always)]
pub unsafe fn store_shuffled(
    seg: Segment,
    r: usize,
    out: Shared<f32>,
    out_w: usize,
    h: usize,
    shuffle: LineBuilder,
    lines: &mut StoreLines,
) {
    let out_plane = h * r * out_w;
    let line = &mut lines.line;
    for ch in 0..3 {
        for i in 0..r {
            // SAFETY: the caller's contract.
            unsafe { shuffle(&seg, ch, i, r, line) };
            let start = ch * out_plane + (seg.y * r + i) * out_w + seg.first * r;
            let len = seg.count * r;
            assert!(
                (seg.first + seg.count) * r <= out_w && seg.y * r + i < h * r,
                "shuffle store inside the image"
            );
            // SAFETY: inside row y*r + i of plane ch (asserted); bands write disjoint rows y.
            unsafe { write_once(line.as_ptr(), out.0.add(start), len) };
        }
    }
}

/// PixelShuffle(r) as [`store_shuffled`], into interleaved 8-bit RGB (`out_w` pixels a row),
/// each sample rounded as an 8-bit file is written (`imaging::picture::level`): arrays and
/// frames for callers that want bytes never pass through a float 4K frame. Inlined into each
/// path's compiled copy (`kernels::store_rgb8`): baseline SSE2 interleaves 3 bytes with long
/// shuffle chains.
///
/// # Safety
/// `shuffle` runs on this CPU (its instruction set detected).
#[inline(always)]
pub unsafe fn rgb8(seg: Segment, r: usize, out: Shared<u8>, out_w: usize, h: usize, shuffle: LineBuilder) {
    // Each output row is shuffled into three float lines first, then rounded and interleaved
    // in one pass that LLVM vectorises: rounding inside the scatter measured 3x slower, one
    // interleaved float line 1.2x.
    // Local arrays, not the band's StoreLines: with the lines behind a pointer LLVM left the
    // rounding loop scalar (the 8-bit call measured 1.2x slower a frame), and zeroing these
    // 7.5 KB is cheap beside it.
    let mut lines = [[0f32; LINE]; 3];
    let mut bytes = [0u8; LINE * 3];
    let len = seg.count * r;
    for i in 0..r {
        for (ch, line) in lines.iter_mut().enumerate() {
            // SAFETY: the caller's contract.
            unsafe { shuffle(&seg, ch, i, r, line) };
        }
        let [red, green, blue] = &lines;
        let pixels = bytes[..len * 3].chunks_exact_mut(3);
        for (((pixel, &r), &g), &b) in pixels.zip(&red[..len]).zip(&green[..len]).zip(&blue[..len]) {
            pixel.copy_from_slice(&[level(r, 255.0) as u8, level(g, 255.0) as u8, level(b, 255.0) as u8]);
        }
        let start = ((seg.y * r + i) * out_w + seg.first * r) * 3;
        assert!(
            (seg.first + seg.count) * r <= out_w && seg.y * r + i < h * r,
            "rgb8 store inside the image"
        );
        // SAFETY: inside row y*r + i (asserted); bands write disjoint rows y.
        unsafe { write_bytes_once(bytes.as_ptr(), out.0.add(start), len * 3) };
    }
}

/// Copies `len` floats that nothing reads again soon to `dst`. On x86-64, with non-temporal
/// stores where `dst` is 16-byte aligned (as the frame buffers are: malloc aligns to 16 and
/// every segment starts at a multiple of 4 floats): the 4K output (100 MB of floats a frame)
/// then goes to memory without first being read into the cache, measured 5-8 % a frame on an
/// Intel Xeon. The caller runs [`store_fence`] before the frame is handed on.
///
/// # Safety
/// `src` and `dst` valid for `len` floats and not overlapping.
unsafe fn write_once(src: *const f32, dst: *mut f32, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if (dst as usize).is_multiple_of(16) && len.is_multiple_of(4) {
        use std::arch::x86_64::{_mm_loadu_ps, _mm_stream_ps};
        for k in (0..len).step_by(4) {
            // SAFETY: inside both buffers (the caller's contract); `dst + k` is 16-byte
            // aligned. SSE is part of x86-64.
            unsafe { _mm_stream_ps(dst.add(k), _mm_loadu_ps(src.add(k))) };
        }
        return;
    }
    // SAFETY: the caller's contract.
    unsafe { std::ptr::copy_nonoverlapping(src, dst, len) }
}

/// As [`write_once`] for bytes at any alignment: the 16-byte aligned middle with non-temporal
/// stores, the ends (which share cache lines with the neighbouring segments) with plain ones.
///
/// # Safety
/// `src` and `dst` valid for `len` bytes and not overlapping.
unsafe fn write_bytes_once(src: *const u8, dst: *mut u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        let head = dst.align_offset(16).min(len);
        let body = (len - head) / 16 * 16;
        // SAFETY (whole block): every range lies inside the `len` bytes of both (the caller's
        // contract); `dst + head` is 16-byte aligned. SSE2 is part of x86-64.
        unsafe {
            std::ptr::copy_nonoverlapping(src, dst, head);
            for k in (head..head + body).step_by(16) {
                _mm_stream_si128(dst.add(k).cast::<__m128i>(), _mm_loadu_si128(src.add(k).cast()));
            }
            std::ptr::copy_nonoverlapping(src.add(head + body), dst.add(head + body), len - head - body);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: the caller's contract.
    unsafe {
        std::ptr::copy_nonoverlapping(src, dst, len)
    }
}

/// Orders this thread's non-temporal stores ([`write_once`]) before what it does next (the
/// band's completion, which hands the frame to another thread).
pub fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SFENCE has no operands; SSE is part of x86-64.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    }
}

/// The pixel shuffle of a block (as [`store_shuffled`]) converted to YUV 4:2:0 on the way:
/// output rows come in pairs, whose (i, j) 2x2 areas are whole chroma areas, averaged as the
/// video module's `FrameEncoder` averages them (`YuvCoefficients::chroma`). A pair is converted where the
/// block holds it: the R, G and B of an output pixel are three channels of one LR pixel, each
/// 16 pixels of a phase in a row, so that the conversion runs along them and vectorises, and
/// an area's four pixels are four channels. The samples go into blocks laid out as conv
/// channels (luma `[phase][di * r + j]`, each chroma plane `[phase][j / 2]`), which
/// `shuffle` then puts in the frame's order as pixel shuffles of factor r and r / 2: half the
/// floats that shuffling the R, G and B rows first took, and no chroma deinterleave. Inlined
/// into each path's compiled copy (`kernels::store_yuv420`).
///
/// # Safety
/// `shuffle` runs on this CPU (its instruction set detected).
#[inline(always)]
pub unsafe fn yuv420(
    seg: Segment,
    r: usize,
    target: &YuvPlanes,
    out_w: usize,
    h: usize,
    shuffle: LineBuilder,
    buffers: &mut StoreLines,
) {
    let YuvPlanes {
        planes: [luma_plane, cb_plane, cr_plane],
        coefficients,
    } = target;
    let chroma_w = out_w / 2;
    assert!(
        (seg.first + seg.count) * r <= out_w
            && seg.y * r + r <= h * r
            && r.is_multiple_of(2)
            && r <= MAX_SHUFFLE
            && out_w.is_multiple_of(2),
        "4:2:0 store inside the frame"
    );
    let (len, column, half) = (seg.count * r, seg.first * r, r / 2);
    let StoreLines {
        line,
        luma,
        chroma,
        unscaled,
        bytes: byte_line,
    } = buffers;
    let bytes = coefficients.bytes_per_sample();
    let run = r * BLOCK;
    for i in (0..r).step_by(2) {
        for phase in 0..TILE {
            // Output row i + di of this phase's 16 pixels: conv channels (plane * r + i + di) * r
            // + j, j = 0 .. r, one after another in the block.
            let channels =
                |plane: usize, di: usize| &seg.block[(phase * seg.co + (plane * r + i + di) * r) * BLOCK..][..run];
            let samples = &mut luma[phase * 2 * run..][..2 * run];
            for (di, (samples, [cb, cr])) in samples.chunks_exact_mut(run).zip(unscaled.iter_mut()).enumerate() {
                let rgb = [channels(0, di), channels(1, di), channels(2, di)];
                convert_pixels(coefficients, rgb, samples, &mut cb[..run], &mut cr[..run]);
            }
            // Each area's four pixels, 16 areas at a time: pixels j (even) and j + 1 of both rows,
            // summed in FrameEncoder's order.
            for (plane, samples) in chroma.iter_mut().enumerate() {
                let (top, bottom) = (&unscaled[0][plane][..run], &unscaled[1][plane][..run]);
                let out = &mut samples[phase * run / 2..][..run / 2];
                let pairs = top.chunks_exact(2 * BLOCK).zip(bottom.chunks_exact(2 * BLOCK));
                for (out, (top, bottom)) in out.chunks_exact_mut(BLOCK).zip(pairs) {
                    let ((top_left, top_right), (bottom_left, bottom_right)) =
                        (top.split_at(BLOCK), bottom.split_at(BLOCK));
                    let left = top_left.iter().zip(bottom_left);
                    let right = top_right.iter().zip(bottom_right);
                    for (sample, ((&tl, &bl), (&tr, &br))) in out.iter_mut().zip(left.zip(right)) {
                        *sample = f32::from_bits(coefficients.chroma((((tl + tr) + bl) + br) / 4.0) as u32);
                    }
                }
            }
        }
        // SAFETY (both loops): `shuffle`, the caller's contract; rows y*r + i and y*r + i + 1
        // and their chroma row, columns inside the frame (asserted), `bytes` a sample as the
        // planes hold them; bands write disjoint rows y.
        for di in 0..2 {
            let samples = Segment {
                block: &luma[..],
                co: 2 * r,
                ..seg
            };
            unsafe {
                shuffle(&samples, 0, di, r, line);
                let at = (seg.y * r + i + di) * out_w + column;
                write_samples(&line[..len], luma_plane.0.add(at * bytes), bytes, byte_line);
            }
        }
        let chroma_at = ((seg.y * r + i) / 2) * chroma_w + column / 2;
        for (plane, target) in [cb_plane, cr_plane].into_iter().enumerate() {
            let samples = Segment {
                block: &chroma[plane][..],
                co: half,
                ..seg
            };
            unsafe {
                shuffle(&samples, 0, 0, half, line);
                write_samples(&line[..len / 2], target.0.add(chroma_at * bytes), bytes, byte_line);
            }
        }
    }
}

/// The luma samples (as the bits of a float) and the unscaled Cb and Cr of a run of pixels.
/// Each slice its own argument, so that LLVM knows they do not overlap and vectorises the loop.
#[inline(always)]
fn convert_pixels(
    coefficients: &YuvCoefficients,
    [red, green, blue]: [&[f32]; 3],
    luma: &mut [f32],
    cb: &mut [f32],
    cr: &mut [f32],
) {
    let pixels = red.iter().zip(green).zip(blue);
    for ((((&r, &g), &b), l), (cb, cr)) in pixels.zip(luma).zip(cb.iter_mut().zip(cr)) {
        let y;
        (y, *cb, *cr) = coefficients.pixel(r, g, b);
        *l = f32::from_bits(y as u32);
    }
}

/// Writes samples (held as the bits of floats) as a y4m frame stores them: a byte each when
/// `bytes` is 1, else two, little-endian. Narrowed in `scratch` first, then written with
/// [`write_bytes_once`] (nothing reads the frame again before the writer sends it on).
///
/// # Safety
/// `dst` valid for `samples.len() * bytes` bytes.
#[inline(always)]
unsafe fn write_samples(samples: &[f32], dst: *mut u8, bytes: usize, scratch: &mut [u8; 2 * LINE]) {
    let len = samples.len() * bytes;
    if bytes == 1 {
        for (byte, &sample) in scratch.iter_mut().zip(samples) {
            *byte = sample.to_bits() as u8;
        }
    } else {
        for (pair, &sample) in scratch.chunks_exact_mut(2).zip(samples) {
            pair.copy_from_slice(&(sample.to_bits() as u16).to_le_bytes());
        }
    }
    // SAFETY: `scratch` holds `len` bytes (at most 2 * LINE), `dst` is valid for them (the
    // caller's contract).
    unsafe { write_bytes_once(scratch.as_ptr(), dst, len) }
}

/// The row buffers of the float and 4:2:0 stores, made once per band: as arrays on the stack
/// they were zeroed for every block (a 4:2:0 store's 22 KB a call, 80 MB of memset a 4K frame).
pub struct StoreLines {
    /// An output row of one plane, in the frame's order.
    line: [f32; LINE],
    /// A row pair's luma samples as conv channels (see [`yuv420`]).
    luma: [f32; 2 * LINE],
    /// Its Cb and Cr samples (as luma's), per plane `[phase][j / 2]`.
    chroma: [[f32; LINE / 2]; 2],
    /// The unscaled Cb and Cr of one phase's pixels of the two rows: `[di][plane][j]`.
    unscaled: [[[f32; MAX_SHUFFLE * BLOCK]; 2]; 2],
    /// A row of samples as the frame stores them.
    bytes: [u8; 2 * LINE],
}

impl StoreLines {
    pub fn new() -> Box<Self> {
        Box::new(Self {
            line: [0.0; LINE],
            luma: [0.0; 2 * LINE],
            chroma: [[0.0; LINE / 2]; 2],
            unscaled: [[[0.0; MAX_SHUFFLE * BLOCK]; 2]; 2],
            bytes: [0; 2 * LINE],
        })
    }
}

/// A raw pointer into an output buffer shared by the band workers: each writes disjoint rows.
#[derive(Clone, Copy)]
pub struct Shared<T>(pub *mut T);
// SAFETY: the pointer is only written through, by band workers that each write rows no other
// worker writes (see `FastEngine::run`), and only while the buffer it points into is borrowed
// mutably by that call; T is a plain number (Copy + Send), so no value is shared by reference.
unsafe impl<T: Copy + Send> Send for Shared<T> {}
// SAFETY: as for Send: concurrent users write disjoint elements and never read through it.
unsafe impl<T: Copy + Send> Sync for Shared<T> {}

/// Where the last layer's shuffled output goes.
#[derive(Clone, Copy)]
pub enum Sink {
    /// Planar RGB floats.
    Rgb(Shared<f32>),
    /// Interleaved 8-bit RGB.
    Rgb8(Shared<u8>),
    /// The planes of a 4:2:0 frame.
    Yuv420(YuvPlanes),
}

/// The Y, U and V planes of a 4:2:0 frame as a y4m stream stores them (a byte a sample, or two
/// little-endian above 8 bits: [`YuvCoefficients::bytes_per_sample`]) and the conversion into
/// them.
#[derive(Clone, Copy)]
pub struct YuvPlanes {
    pub planes: [Shared<u8>; 3],
    pub coefficients: YuvCoefficients,
}
