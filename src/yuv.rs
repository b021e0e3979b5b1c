//! YUV frames and the RGB -> YUV arithmetic: below both the engine (whose last layer can write
//! 4:2:0 directly) and the video module (which reads and writes streams of such frames).

/// One frame's planes as sample values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frame {
    pub y: Vec<u16>,
    pub u: Vec<u16>,
    pub v: Vec<u16>,
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

/// The RGB -> YUV arithmetic of one [`ColorSpec`], shared by the video module's `FrameEncoder` and the fast
/// engine's fused 4:2:0 output so that both give the same samples.
#[derive(Clone, Copy, Debug)]
pub struct YuvCoefficients {
    kr: f32,
    kg: f32,
    kb: f32,
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
        (
            luma,
            (b - yv) / (2.0 * (1.0 - self.kb)),
            (r - yv) / (2.0 * (1.0 - self.kr)),
        )
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
