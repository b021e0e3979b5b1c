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
pub unsafe fn store_shuffled(seg: Segment, r: usize, out: Shared<f32>, out_w: usize, h: usize, shuffle: LineBuilder) {
    let out_plane = h * r * out_w;
    let mut line = [0f32; LINE];
    for ch in 0..3 {
        for i in 0..r {
            // SAFETY: the caller's contract.
            unsafe { shuffle(&seg, ch, i, r, &mut line) };
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
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.0.add(start), len * 3) };
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
/// the (i, j) 2x2 areas of each pixel's r x r output block are whole chroma areas, averaged as
/// the video module's `FrameEncoder` averages them. Inlined into each path's
/// compiled copy (`kernels::store_yuv420`), which vectorises its fixed-length loops.
#[inline(always)]
pub fn yuv420(seg: Segment, r: usize, target: &YuvPlanes, out_w: usize, h: usize) {
    let YuvPlanes {
        planes: [luma, cb_plane, cr_plane],
        coefficients,
    } = target;
    let (chroma_w, rr) = (out_w / 2, r * r);
    assert!(
        (seg.first + seg.count) * r <= out_w
            && seg.y * r + r <= h * r
            && r.is_multiple_of(2)
            && out_w.is_multiple_of(2),
        "4:2:0 store inside the frame"
    );
    let (mut luma_lines, mut cb_line, mut cr_line) = ([[0u16; LINE]; 2], [0u16; LINE / 2], [0u16; LINE / 2]);
    for i in (0..r).step_by(2) {
        for j in (0..r).step_by(2) {
            for phase in 0..TILE {
                // Summed as FrameEncoder sums an area, ((t0 + t1) + b0) + b1 (0 + t0 is exact).
                let mut cb_sum = [0f32; BLOCK];
                let mut cr_sum = [0f32; BLOCK];
                for (di, dj) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let c = (i + di) * r + j + dj;
                    let (red, green, blue) = (
                        seg.channel(phase, c),
                        seg.channel(phase, rr + c),
                        seg.channel(phase, 2 * rr + c),
                    );
                    // Converted in a fixed-length loop (it vectorises), then scattered.
                    let mut luma_values = [0u16; BLOCK];
                    for p in 0..BLOCK {
                        let (l, cb, cr) = coefficients.pixel(red[p], green[p], blue[p]);
                        luma_values[p] = l;
                        cb_sum[p] += cb;
                        cr_sum[p] += cr;
                    }
                    for (p, l) in luma_values.into_iter().enumerate() {
                        luma_lines[di][(TILE * p + phase) * r + j + dj] = l;
                    }
                }
                let (mut cb_values, mut cr_values) = ([0u16; BLOCK], [0u16; BLOCK]);
                for p in 0..BLOCK {
                    cb_values[p] = coefficients.chroma(cb_sum[p] / 4.0);
                    cr_values[p] = coefficients.chroma(cr_sum[p] / 4.0);
                }
                for p in 0..BLOCK {
                    let at = ((TILE * p + phase) * r + j) / 2;
                    cb_line[at] = cb_values[p];
                    cr_line[at] = cr_values[p];
                }
            }
        }
        let (len, column) = (seg.count * r, seg.first * r);
        let chroma_at = ((seg.y * r + i) / 2) * chroma_w + column / 2;
        // SAFETY: rows y*r + i and y*r + i + 1 and their chroma row, columns inside the frame
        // (asserted); bands write disjoint rows y.
        unsafe {
            for (di, line) in luma_lines.iter().enumerate() {
                let at = (seg.y * r + i + di) * out_w + column;
                std::ptr::copy_nonoverlapping(line.as_ptr(), luma.0.add(at), len);
            }
            std::ptr::copy_nonoverlapping(cb_line.as_ptr(), cb_plane.0.add(chroma_at), len / 2);
            std::ptr::copy_nonoverlapping(cr_line.as_ptr(), cr_plane.0.add(chroma_at), len / 2);
        }
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

/// The Y, U and V planes of a 4:2:0 frame and the conversion into them.
#[derive(Clone, Copy)]
pub struct YuvPlanes {
    pub planes: [Shared<u16>; 3],
    pub coefficients: YuvCoefficients,
}
