//! Images as the rest of the crate sees them: planar (channel, row, column) arrays of samples
//! in 0..1, plus resizing, colour conversion and file I/O.

pub mod color;
pub mod files;
pub mod io;
pub mod picture;
pub mod resize;

/// A planar image: `data[(c * height + y) * width + x]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Image<T> {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<T>,
}

impl<T: Copy + Default> Image<T> {
    pub fn new(channels: usize, height: usize, width: usize, data: Vec<T>) -> Self {
        assert_eq!(data.len(), channels * height * width, "image data size");
        Self {
            channels,
            height,
            width,
            data,
        }
    }

    pub fn zeros(channels: usize, height: usize, width: usize) -> Self {
        Self::new(channels, height, width, vec![T::default(); channels * height * width])
    }

    pub fn plane(&self, c: usize) -> &[T] {
        let n = self.height * self.width;
        &self.data[c * n..(c + 1) * n]
    }

    pub fn plane_mut(&mut self, c: usize) -> &mut [T] {
        let n = self.height * self.width;
        &mut self.data[c * n..(c + 1) * n]
    }

    /// The top-left `height` x `width` part.
    pub fn crop(&self, top: usize, left: usize, height: usize, width: usize) -> Self {
        assert!(
            top + height <= self.height && left + width <= self.width,
            "crop inside the image"
        );
        let mut data = Vec::with_capacity(self.channels * height * width);
        for c in 0..self.channels {
            let plane = self.plane(c);
            for y in top..top + height {
                data.extend_from_slice(&plane[y * self.width + left..y * self.width + left + width]);
            }
        }
        Self::new(self.channels, height, width, data)
    }

    /// Crops to the largest size whose sides are multiples of `multiple` (SR "modcrop").
    pub fn modcrop(&self, multiple: usize) -> Self {
        self.crop(
            0,
            0,
            self.height - self.height % multiple,
            self.width - self.width % multiple,
        )
    }

    pub fn map<U: Copy + Default>(&self, f: impl Fn(T) -> U) -> Image<U> {
        Image::new(
            self.channels,
            self.height,
            self.width,
            self.data.iter().map(|&v| f(v)).collect(),
        )
    }
}

impl<T: Copy + Default + Into<f64>> Image<T> {
    /// Largest absolute sample-wise difference (as f64); sizes must agree.
    pub fn max_abs_diff(&self, other: &Self) -> f64 {
        assert_eq!(
            (self.channels, self.height, self.width),
            (other.channels, other.height, other.width),
            "max_abs_diff: sizes differ"
        );
        self.data
            .iter()
            .zip(&other.data)
            .map(|(&a, &b)| (a.into() - b.into()).abs())
            .fold(0.0, f64::max)
    }
}

impl Image<f64> {
    /// Rounds to 8-bit levels as SR evaluation does: clamp to 0..1, scale, round half to even
    /// (numpy's `round`), back to 0..1 in steps of 1/255.
    pub fn quantize_u8(&self) -> Image<u8> {
        self.map(|v| (v.clamp(0.0, 1.0) * 255.0).round_ties_even() as u8)
    }
}

impl Image<u8> {
    pub fn to_unit_f64(&self) -> Image<f64> {
        self.map(|v| v as f64 / 255.0)
    }
}

/// Pads the bottom row and right column by reflection so both sides are even (borrowing the
/// image when they already are: a frame copy costs as much as a layer's epilogue).
pub fn pad_to_even<T: Copy + Default>(image: &Image<T>) -> std::borrow::Cow<'_, Image<T>> {
    let (h, w) = (image.height, image.width);
    let (ph, pw) = (h + h % 2, w + w % 2);
    if (ph, pw) == (h, w) {
        return std::borrow::Cow::Borrowed(image);
    }
    let reflect = |i: usize, n: usize| {
        if i < n {
            i
        } else if n >= 2 {
            2 * n - 2 - i
        } else {
            0
        }
    };
    let mut out = Image::zeros(image.channels, ph, pw);
    for c in 0..image.channels {
        let src = image.plane(c);
        let dst = out.plane_mut(c);
        for y in 0..ph {
            for x in 0..pw {
                dst[y * pw + x] = src[reflect(y, h) * w + reflect(x, w)];
            }
        }
    }
    std::borrow::Cow::Owned(out)
}
