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

/// How a path makes a [`chroma_row`].
pub type ChromaRow = unsafe fn(&YuvCoefficients, &[f32], &[f32], &mut [u16]);

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
    let line = &mut lines.rgb[0][0];
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
/// video module's `FrameEncoder` averages them (by `chroma`). Each row of the pair is shuffled
/// into R, G and B lines first (by `shuffle`), so that the conversion runs along contiguous
/// pixels and vectorises. Inlined into each path's compiled copy (`kernels::store_yuv420`).
///
/// # Safety
/// `shuffle` and `chroma` run on this CPU (their instruction set detected).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub unsafe fn yuv420(
    seg: Segment,
    r: usize,
    target: &YuvPlanes,
    out_w: usize,
    h: usize,
    shuffle: LineBuilder,
    chroma: ChromaRow,
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
            && out_w.is_multiple_of(2),
        "4:2:0 store inside the frame"
    );
    let (len, column) = (seg.count * r, seg.first * r);
    let StoreLines {
        rgb,
        chroma: [cb, cr],
        luma,
        chroma_samples: [cb_line, cr_line],
        bytes: byte_line,
    } = buffers;
    for i in (0..r).step_by(2) {
        for (di, row) in rgb.iter_mut().enumerate() {
            for (ch, line) in row.iter_mut().enumerate() {
                // SAFETY: the caller's contract.
                unsafe { shuffle(&seg, ch, i + di, r, line) };
            }
            let [red, green, blue] = &*row;
            convert_row(
                coefficients,
                &red[..len],
                &green[..len],
                &blue[..len],
                &mut luma[di][..len],
                &mut cb[di][..len],
                &mut cr[di][..len],
            );
        }
        // SAFETY: the caller's contract.
        unsafe {
            chroma(coefficients, &cb[0][..len], &cb[1][..len], &mut cb_line[..len / 2]);
            chroma(coefficients, &cr[0][..len], &cr[1][..len], &mut cr_line[..len / 2]);
        }
        let chroma_at = ((seg.y * r + i) / 2) * chroma_w + column / 2;
        let bytes = coefficients.bytes_per_sample();
        // SAFETY: rows y*r + i and y*r + i + 1 and their chroma row, columns inside the frame
        // (asserted), `bytes` a sample as the planes hold them; bands write disjoint rows y.
        unsafe {
            for (di, line) in luma.iter().enumerate() {
                let at = (seg.y * r + i + di) * out_w + column;
                write_samples(&line[..len], luma_plane.0.add(at * bytes), bytes, byte_line);
            }
            write_samples(&cb_line[..len / 2], cb_plane.0.add(chroma_at * bytes), bytes, byte_line);
            write_samples(&cr_line[..len / 2], cr_plane.0.add(chroma_at * bytes), bytes, byte_line);
        }
    }
}

/// Writes samples as a y4m frame stores them: a byte each when `bytes` is 1, else two,
/// little-endian. Narrowed in `scratch` first, then written with [`write_bytes_once`] (nothing
/// reads the frame again before the writer sends it on).
///
/// # Safety
/// `dst` valid for `samples.len() * bytes` bytes.
#[inline(always)]
unsafe fn write_samples(samples: &[u16], dst: *mut u8, bytes: usize, scratch: &mut [u8; 2 * LINE]) {
    let len = samples.len() * bytes;
    if bytes == 1 {
        for (byte, &sample) in scratch.iter_mut().zip(samples) {
            *byte = sample as u8;
        }
    } else {
        for (pair, &sample) in scratch.chunks_exact_mut(2).zip(samples) {
            pair.copy_from_slice(&sample.to_le_bytes());
        }
    }
    // SAFETY: `scratch` holds `len` bytes (at most 2 * LINE), `dst` is valid for them (the
    // caller's contract).
    unsafe { write_bytes_once(scratch.as_ptr(), dst, len) }
}

/// Luma samples and unscaled chroma of a row of pixels. Each slice its own argument, so that
/// LLVM knows they do not overlap (they all lie in one [`StoreLines`], and only references
/// passed as arguments tell it so) and vectorises the loop.
#[inline(always)]
fn convert_row(
    coefficients: &YuvCoefficients,
    red: &[f32],
    green: &[f32],
    blue: &[f32],
    luma: &mut [u16],
    cb: &mut [f32],
    cr: &mut [f32],
) {
    let pixels = red.iter().zip(green).zip(blue);
    for ((((&r, &g), &b), l), (cb, cr)) in pixels.zip(luma).zip(cb.iter_mut().zip(cr)) {
        (*l, *cb, *cr) = coefficients.pixel(r, g, b);
    }
}

/// The chroma samples of a row of 2x2 areas from the unscaled values of its two pixel rows,
/// summed as FrameEncoder sums an area: ((top left + top right) + bottom left) + bottom right.
/// The scalar form (LLVM does not deinterleave the pairs); the AVX2 one is
/// `kernels::avx2::chroma_row`.
#[inline(always)]
pub fn chroma_row(coefficients: &YuvCoefficients, top: &[f32], bottom: &[f32], samples: &mut [u16]) {
    let n = 2 * samples.len();
    let areas = top[..n].chunks_exact(2).zip(bottom[..n].chunks_exact(2));
    for (sample, (t, b)) in samples.iter_mut().zip(areas) {
        *sample = coefficients.chroma((((t[0] + t[1]) + b[0]) + b[1]) / 4.0);
    }
}

/// The row buffers of the float and 4:2:0 stores, made once per band: as arrays on the stack they were zeroed
/// for every block (a 4:2:0 store's 22 KB a call, 80 MB of memset a 4K frame).
pub struct StoreLines {
    /// R, G and B lines of two output rows.
    rgb: [[[f32; LINE]; 3]; 2],
    /// The unscaled Cb and Cr of the two rows.
    chroma: [[[f32; LINE]; 2]; 2],
    luma: [[u16; LINE]; 2],
    /// A row of Cb and of Cr samples.
    chroma_samples: [[u16; LINE / 2]; 2],
    /// A row of samples as the frame stores them.
    bytes: [u8; 2 * LINE],
}

impl StoreLines {
    pub fn new() -> Box<Self> {
        Box::new(Self {
            rgb: [[[0.0; LINE]; 3]; 2],
            chroma: [[[0.0; LINE]; 2]; 2],
            luma: [[0; LINE]; 2],
            chroma_samples: [[0; LINE / 2]; 2],
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
