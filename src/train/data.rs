//! Training batches: random HR crops of `patch * scale` with the 8 flips/rotations, and LR
//! patches made online with the MATLAB-compatible bicubic. A batch depends only on the seed and
//! the step number, so a resumed run sees exactly the batches an uninterrupted one would.

use crate::imaging::io::load_rgb8;
use crate::imaging::{Image, resize};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;

/// Why no training set could be made.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {source}", .dir.display())]
    Walk { dir: PathBuf, source: walkdir::Error },
    #[error("no usable training image in {dirs} ({skipped} files skipped)")]
    NoImages { dirs: String, skipped: usize },
}

/// The HR images of a run, in memory as 8-bit RGB.
pub struct TrainingSet {
    pub images: Vec<Image<u8>>,
    /// Files that could not be used, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// One batch, NCHW f32 in 0..1.
pub struct Batch {
    pub lr: Vec<f32>,
    pub hr: Vec<f32>,
    pub size: usize,
    pub lr_patch: usize,
}

impl TrainingSet {
    /// Loads every image under `dirs` whose sides reach `min_side`; unreadable or too small
    /// files are skipped and listed. Fails only when nothing usable is left.
    pub fn load(dirs: &[PathBuf], min_side: usize) -> Result<Self, DataError> {
        let mut files = Vec::new();
        for dir in dirs {
            let found = crate::imaging::files::image_files(dir, true).map_err(|source| DataError::Walk {
                dir: dir.clone(),
                source,
            })?;
            files.extend(found);
        }
        files.sort();
        let mut images = Vec::new();
        let mut skipped = Vec::new();
        for file in files {
            match load_rgb8(&file) {
                Ok(img) if img.height >= min_side && img.width >= min_side => images.push(img),
                Ok(img) => skipped.push((
                    file,
                    format!("{}x{} is smaller than a {min_side}px crop", img.width, img.height),
                )),
                Err(e) => skipped.push((file, e.to_string())),
            }
        }
        if images.is_empty() {
            let listed: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            return Err(DataError::NoImages {
                dirs: listed.join(", "),
                skipped: skipped.len(),
            });
        }
        Ok(Self { images, skipped })
    }

    /// The batch of training step `step`.
    pub fn batch(&self, seed: u64, step: u64, size: usize, lr_patch: usize, scale: usize) -> Batch {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let hr_patch = lr_patch * scale;
        let mut lr = Vec::with_capacity(size * 3 * lr_patch * lr_patch);
        let mut hr = Vec::with_capacity(size * 3 * hr_patch * hr_patch);
        for _ in 0..size {
            let img = &self.images[rng.random_range(0..self.images.len())];
            let top = rng.random_range(0..=img.height - hr_patch);
            let left = rng.random_range(0..=img.width - hr_patch);
            let crop = augment(&img.crop(top, left, hr_patch, hr_patch), rng.random_range(0..8));
            let crop = crop.to_unit_f64();
            let small = resize::downscale(&crop, scale);
            hr.extend(crop.data.iter().map(|&v| v as f32));
            lr.extend(small.data.iter().map(|&v| v as f32));
        }
        Batch { lr, hr, size, lr_patch }
    }
}

/// One of the 8 symmetries of the square: bit 0 flips left-right, bit 1 flips top-bottom,
/// bit 2 transposes (with the flips, the 90-degree rotations).
pub fn augment<T: Copy + Default>(img: &Image<T>, op: u8) -> Image<T> {
    let n = img.height;
    assert_eq!(n, img.width, "augment takes square crops");
    let mut out = Image::zeros(img.channels, n, n);
    for c in 0..img.channels {
        let (src, dst) = (img.plane(c), out.plane_mut(c));
        for y in 0..n {
            for x in 0..n {
                let (mut sy, mut sx) = if op & 4 != 0 { (x, y) } else { (y, x) };
                if op & 1 != 0 {
                    sx = n - 1 - sx;
                }
                if op & 2 != 0 {
                    sy = n - 1 - sy;
                }
                dst[y * n + x] = src[sy * n + sx];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eight_symmetries_are_distinct_and_invertible() {
        let img = Image::new(1, 3, 3, (0..9u8).collect());
        let all: Vec<Image<u8>> = (0..8).map(|op| augment(&img, op)).collect();
        for i in 0..8 {
            for j in i + 1..8 {
                assert_ne!(all[i], all[j], "ops {i} and {j}");
            }
        }
        // Flips are their own inverse.
        assert_eq!(augment(&augment(&img, 3), 3), img);
        assert_eq!(augment(&augment(&img, 4), 4), img);
    }

    #[test]
    fn batches_depend_only_on_seed_and_step() {
        let set = TrainingSet {
            images: vec![Image::new(
                3,
                20,
                24,
                (0..3 * 20 * 24).map(|i| (i % 251) as u8).collect(),
            )],
            skipped: vec![],
        };
        let a = set.batch(7, 3, 2, 4, 2);
        let b = set.batch(7, 3, 2, 4, 2);
        let c = set.batch(7, 4, 2, 4, 2);
        assert_eq!(a.lr, b.lr);
        assert_ne!(a.hr, c.hr);
        assert_eq!(a.lr.len(), 2 * 3 * 4 * 4);
        assert_eq!(a.hr.len(), 2 * 3 * 8 * 8);
    }
}
