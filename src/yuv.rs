//! YUV frames and the arithmetic both ways: below both the engine (which can read a frame's rows
//! as it needs them and write 4:2:0 from its last layer) and the video module (which reads and
//! writes streams of such frames).

/// One frame's planes as sample values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frame {
    pub y: Vec<u16>,
    pub u: Vec<u16>,
    pub v: Vec<u16>,
}

/// Chroma subsampling of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chroma {
    C420,
    C422,
    C444,
    Mono,
}

impl Chroma {
    /// Chroma plane size for a luma plane of `w` x `h`.
    pub fn plane_size(self, w: usize, h: usize) -> (usize, usize) {
        match self {
            Chroma::C420 => (w.div_ceil(2), h.div_ceil(2)),
            Chroma::C422 => (w.div_ceil(2), h),
            Chroma::C444 => (w, h),
            Chroma::Mono => (0, 0),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matrix {
    Bt601,
    Bt709,
}

impl Matrix {
    /// BT.709 for HD frames, BT.601 for SD (576 lines or fewer), as players assume.
    pub fn default_for(height: usize) -> Self {
        if height > 576 { Matrix::Bt709 } else { Matrix::Bt601 }
    }

    pub(crate) fn kr_kb(self) -> (f32, f32) {
        match self {
            Matrix::Bt601 => (0.299, 0.114),
            Matrix::Bt709 => (0.2126, 0.0722),
        }
    }
}

/// How a stream's samples map to colours.
#[derive(Clone, Copy, Debug)]
pub struct ColorSpec {
    pub matrix: Matrix,
    pub full_range: bool,
    pub depth: u32,
}

impl ColorSpec {
    /// (offset, scale) of luma and the scale of chroma, in sample units.
    pub(crate) fn ranges(&self) -> (f32, f32, f32, f32) {
        let s = (1u32 << (self.depth - 8)) as f32;
        let max = ((1u32 << self.depth) - 1) as f32;
        let mid = (1u32 << (self.depth - 1)) as f32;
        if self.full_range {
            (0.0, max, mid, max)
        } else {
            (16.0 * s, 219.0 * s, mid, 224.0 * s)
        }
    }
}

/// The bilinear taps of centred chroma siting down the rows, for each of `n` luma rows: (first
/// chroma row, second, weight of the second). Luma i sits at chroma (i + 0.5) / sub - 0.5.
fn chroma_taps(n: usize, chroma_n: usize, sub: f32) -> Vec<(usize, usize, f32)> {
    (0..n)
        .map(|i| {
            let f = (i as f32 + 0.5) / sub - 0.5;
            let first = f.floor().clamp(0.0, (chroma_n - 1) as f32);
            let weight = (f - first).clamp(0.0, 1.0);
            let first = first as usize;
            (first, (first + 1).min(chroma_n - 1), weight)
        })
        .collect()
}

/// YUV -> planar RGB in 0..1 (not clamped: out-of-gamut YUV stays visible to the model), a row
/// at a time, chroma upsampled bilinearly (centred siting). One arithmetic for the video
/// module, which converts whole frames, and the fast engine, which converts its input rows as
/// its bands read them (a stream's conversion then runs spread over the cores with the network).
#[derive(Clone, Debug)]
pub struct YuvToRgb {
    width: usize,
    height: usize,
    chroma: Chroma,
    spec: ColorSpec,
    /// The chroma taps of each luma row (none for a frame without chroma).
    rows: Vec<(usize, usize, f32)>,
}

impl YuvToRgb {
    /// The conversion of `width` x `height` frames of this chroma layout.
    pub fn new(width: usize, height: usize, chroma: Chroma, spec: ColorSpec) -> Self {
        let ch = chroma.plane_size(width, height).1;
        let rows = match chroma {
            Chroma::Mono => vec![],
            Chroma::C420 => chroma_taps(height, ch, 2.0),
            Chroma::C422 | Chroma::C444 => chroma_taps(height, ch, 1.0),
        };
        Self {
            width,
            height,
            chroma,
            spec,
            rows,
        }
    }

    /// (height, width) of the frames it converts.
    pub fn size(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    pub fn chroma(&self) -> Chroma {
        self.chroma
    }

    /// The floats of scratch [`YuvToRgb::row`] needs.
    pub fn scratch_len(&self) -> usize {
        3 * self.width + 2
    }

    /// Row `y` of `frame` (of this conversion's size and layout) into `red`, `green` and
    /// `blue` (`width` values each); `chroma` holds [`YuvToRgb::scratch_len`] floats of scratch.
    pub fn row(&self, frame: &Frame, y: usize, [red, green, blue]: [&mut [f32]; 3], chroma: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was just detected.
            return unsafe { self.row_avx2(frame, y, [red, green, blue], chroma) };
        }
        self.row_any(frame, y, [red, green, blue], chroma, |_, _, _, _| 0)
    }

    /// The same code vectorised 8 wide (it runs beside the network, on the same cores). Rust
    /// never fuses a * b + c, so the values are the same bits.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn row_avx2(&self, frame: &Frame, y: usize, rgb: [&mut [f32]; 3], chroma: &mut [f32]) {
        // SAFETY: AVX2 (this function's own feature, which its caller detected).
        let widen = |padded: &[f32], row: &mut [f32], mid, scale| unsafe { widen_half_avx2(padded, row, mid, scale) };
        self.row_any(frame, y, rgb, chroma, widen)
    }

    /// `widen` does the first pixels of a half-width chroma row (see [`widen_half_avx2`]) and
    /// says how many (an even number); the rest are done here.
    #[inline(always)]
    fn row_any(
        &self,
        frame: &Frame,
        y: usize,
        [red, green, blue]: [&mut [f32]; 3],
        scratch: &mut [f32],
        widen: impl Fn(&[f32], &mut [f32], f32, f32) -> usize,
    ) {
        let w = self.width;
        let (y_off, y_scale, c_mid, c_scale) = self.spec.ranges();
        let (kr, kb) = self.spec.matrix.kr_kb();
        let kg = 1.0 - kr - kb;
        let (cb_row, rest) = scratch[..self.scratch_len()].split_at_mut(w);
        let (cr_row, blended) = rest.split_at_mut(w);
        match self.rows.get(y) {
            Some(&(y0, y1, ay)) => {
                let cw = self.chroma.plane_size(w, self.height).0;
                for (plane, row) in [(&frame.u, &mut *cb_row), (&frame.v, &mut *cr_row)] {
                    let (top, bottom) = (&plane[y0 * cw..][..cw], &plane[y1 * cw..][..cw]);
                    // The two chroma rows blended first, at the chroma's width (edge samples
                    // repeated on both sides), then along the row at the luma's. With the
                    // weights of centred siting (0, 1/4, 3/4, 1) every product and sum is exact
                    // in f32 for samples of up to 16 bits, so any order gives the same bits;
                    // this one runs along contiguous samples and vectorises.
                    let padded = &mut blended[..cw + 2];
                    for (v, (&t, &b)) in padded[1..].iter_mut().zip(top.iter().zip(bottom)) {
                        *v = t as f32 * (1.0 - ay) + b as f32 * ay;
                    }
                    (padded[0], padded[cw + 1]) = (padded[1], padded[cw]);
                    let unscaled = |v: f32| (v - c_mid) / c_scale;
                    if self.chroma == Chroma::C444 {
                        for (value, &v) in row.iter_mut().zip(&padded[1..]) {
                            *value = unscaled(v);
                        }
                        continue;
                    }
                    // Half-width chroma: luma 2k sits a quarter sample before chroma k, 2k + 1
                    // a quarter after.
                    let done = widen(padded, row, c_mid, c_scale);
                    for (pair, around) in row[done..].chunks_exact_mut(2).zip(padded[done / 2..].windows(3)) {
                        pair[0] = unscaled(around[0] * 0.25 + around[1] * 0.75);
                        pair[1] = unscaled(around[1] * 0.75 + around[2] * 0.25);
                    }
                    if w % 2 == 1 {
                        row[w - 1] = unscaled(padded[cw - 1] * 0.25 + padded[cw] * 0.75);
                    }
                }
            }
            // No chroma: grey.
            None => {
                cb_row.fill(0.0);
                cr_row.fill(0.0);
            }
        }
        let luma = &frame.y[y * w..][..w];
        for (((((r, g), b), &luma), &cb), &cr) in red[..w]
            .iter_mut()
            .zip(&mut green[..w])
            .zip(&mut blue[..w])
            .zip(luma)
            .zip(&*cb_row)
            .zip(&*cr_row)
        {
            let luma = (luma as f32 - y_off) / y_scale;
            *r = luma + 2.0 * (1.0 - kr) * cr;
            *b = luma + 2.0 * (1.0 - kb) * cb;
            *g = (luma - kr * *r - kb * *b) / kg;
        }
    }
}

/// The first pixels of a half-width chroma row widened to the luma's (as `YuvToRgb::row_any`
/// does each pair: luma 2k from chroma k - 1 / 2 and k, 2k + 1 from k and k + 1 / 2, both
/// unscaled), 8 at a time from 8 padded samples by two permutes; how many it did. The same
/// bits: the same products, sums (a + b = b + a) and divisions, none fused. The scalar pairs
/// were two thirds of the conversion's time (`perf`, a 720p y4m stream at x3).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn widen_half_avx2(padded: &[f32], row: &mut [f32], c_mid: f32, c_scale: f32) -> usize {
    use std::arch::x86_64::*;
    // Output lane i (pair k = i / 2): a * 1/4 + b * 3/4, a = padded[k] for even i and
    // padded[k + 2] for odd, b = padded[k + 1].
    let (a_index, b_index) = (
        _mm256_setr_epi32(0, 2, 1, 3, 2, 4, 3, 5),
        _mm256_setr_epi32(1, 1, 2, 2, 3, 3, 4, 4),
    );
    let (quarter, three_quarters) = (_mm256_set1_ps(0.25), _mm256_set1_ps(0.75));
    let (mid, scale) = (_mm256_set1_ps(c_mid), _mm256_set1_ps(c_scale));
    // Vector v reads padded[4v .. 4v + 8] and writes row[8v .. 8v + 8].
    let vectors = (row.len() / 8).min(padded.len().saturating_sub(4) / 4);
    for v in 0..vectors {
        // SAFETY: 4v + 8 <= padded.len() and 8v + 8 <= row.len() (`vectors`).
        unsafe {
            let samples = _mm256_loadu_ps(padded.as_ptr().add(4 * v));
            let a = _mm256_permutevar8x32_ps(samples, a_index);
            let b = _mm256_permutevar8x32_ps(samples, b_index);
            let value = _mm256_add_ps(_mm256_mul_ps(a, quarter), _mm256_mul_ps(b, three_quarters));
            _mm256_storeu_ps(
                row.as_mut_ptr().add(8 * v),
                _mm256_div_ps(_mm256_sub_ps(value, mid), scale),
            );
        }
    }
    8 * vectors
}

/// The RGB -> YUV arithmetic of one [`ColorSpec`], shared by the video module's `FrameEncoder` and the fast
/// engine's fused 4:2:0 output so that both give the same samples.
#[derive(Clone, Copy, Debug)]
pub struct YuvCoefficients {
    kr: f32,
    kg: f32,
    kb: f32,
    /// 1 / (2 (1 - kb)) and 1 / (2 (1 - kr)): Cb and Cr from B - Y and R - Y by a multiply
    /// (a divide per pixel was the costliest step of the engine's 4:2:0 stores).
    cb_factor: f32,
    cr_factor: f32,
    y_off: f32,
    y_scale: f32,
    c_mid: f32,
    c_scale: f32,
    max: f32,
}

impl YuvCoefficients {
    pub fn new(spec: ColorSpec) -> Self {
        let (y_off, y_scale, c_mid, c_scale) = spec.ranges();
        let (kr, kb) = spec.matrix.kr_kb();
        Self {
            kr,
            kg: 1.0 - kr - kb,
            kb,
            cb_factor: 1.0 / (2.0 * (1.0 - kb)),
            cr_factor: 1.0 / (2.0 * (1.0 - kr)),
            y_off,
            y_scale,
            c_mid,
            c_scale,
            max: ((1u32 << spec.depth) - 1) as f32,
        }
    }

    /// One pixel (clamped to 0..1): its luma sample and its unscaled Cb and Cr.
    #[inline(always)]
    pub fn pixel(&self, r: f32, g: f32, b: f32) -> (u16, f32, f32) {
        let (r, g, b) = (r.clamp(0.0, 1.0), g.clamp(0.0, 1.0), b.clamp(0.0, 1.0));
        let yv = self.kr * r + self.kg * g + self.kb * b;
        let luma = self.level(yv * self.y_scale + self.y_off);
        (luma, (b - yv) * self.cb_factor, (r - yv) * self.cr_factor)
    }

    /// Bytes a sample takes in a stream: one up to 8 bits, else two.
    pub fn bytes_per_sample(&self) -> usize {
        if self.max > 255.0 { 2 } else { 1 }
    }

    /// A chroma sample from the mean of the unscaled values of its area.
    #[inline(always)]
    pub fn chroma(&self, mean: f32) -> u16 {
        self.level(mean * self.c_scale + self.c_mid)
    }

    /// A sample value rounded half up to a level in 0..=max; NaN gives 0.
    #[inline(always)]
    fn level(&self, v: f32) -> u16 {
        // max/min rather than clamp: they drop a NaN, so the value is finite and in
        // 0.5..=max + 0.5, where truncation rounds half up. A plain `as u16` is a saturating
        // conversion that LLVM leaves scalar; this one vectorises (the fused 4:2:0 store of a
        // 4K frame spent a third of its time converting).
        let v = v.max(0.0).min(self.max) + 0.5;
        // SAFETY: v is finite and within i32 (at most 65535.5).
        unsafe { v.to_int_unchecked::<i32>() as u16 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// `row` (the AVX2 code where the CPU has it) gives the same bits as the plain code, for
    /// every layout, both ranges, 8 and 10 bits, and widths around the 8-pixel vectors.
    #[test]
    fn vector_rows_are_the_plain_rows_bits() {
        #[cfg(target_arch = "x86_64")]
        if !std::arch::is_x86_feature_detected!("avx2") {
            println!("SKIP: this CPU has no AVX2");
            return;
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for chroma in [Chroma::C420, Chroma::C422, Chroma::C444, Chroma::Mono] {
            for (depth, full_range) in [(8, false), (8, true), (10, false)] {
                for (w, h) in [(1, 1), (2, 3), (7, 2), (16, 4), (17, 5), (33, 3), (130, 2)] {
                    let spec = ColorSpec {
                        matrix: Matrix::Bt709,
                        full_range,
                        depth,
                    };
                    let conversion = YuvToRgb::new(w, h, chroma, spec);
                    let (cw, ch) = chroma.plane_size(w, h);
                    let mut samples =
                        |n: usize| -> Vec<u16> { (0..n).map(|_| rng.random_range(0..1u16 << depth)).collect() };
                    let frame = Frame {
                        y: samples(w * h),
                        u: samples(cw * ch),
                        v: samples(cw * ch),
                    };
                    let mut scratch = vec![0f32; conversion.scratch_len()];
                    for y in 0..h {
                        let [mut fast, mut plain] = [0, 1].map(|_| vec![vec![0f32; w]; 3]);
                        let [r, g, b] = &mut fast[..] else { unreachable!() };
                        conversion.row(&frame, y, [r, g, b], &mut scratch);
                        let [r, g, b] = &mut plain[..] else { unreachable!() };
                        conversion.row_any(&frame, y, [r, g, b], &mut scratch, |_, _, _, _| 0);
                        let bits =
                            |rows: &Vec<Vec<f32>>| -> Vec<u32> { rows.concat().iter().map(|v| v.to_bits()).collect() };
                        assert_eq!(bits(&fast), bits(&plain), "{chroma:?} {depth} bits {w} x {h}, row {y}");
                    }
                }
            }
        }
    }
}
