//! Training batches: random HR crops of `patch * scale` with the 8 flips/rotations, and LR
//! patches made online with the MATLAB-compatible bicubic. A batch depends only on the seed and
//! the step number, so a resumed run sees exactly the batches an uninterrupted one would.

use crate::imaging::io::load_rgb8;
use crate::imaging::{Image, resize};
use rand::distr::{Distribution, weighted::WeightedIndex};
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
    #[error("{}: no usable training image, but its data_weights entry is {weight}", .dir.display())]
    EmptyWeightedFolder { dir: PathBuf, weight: f64 },
}

/// How a batch picks the image of each crop.
enum Sampler {
    /// Every image equally likely.
    Uniform,
    /// A folder by its weight, then one of its images, each equally likely.
    ByFolder {
        folders: WeightedIndex<f64>,
        members: Vec<Vec<usize>>,
    },
}

/// The HR images of a run, in memory as 8-bit RGB.
pub struct TrainingSet {
    pub images: Vec<Image<u8>>,
    /// The position in the loaded folders of each image's folder.
    pub folders: Vec<usize>,
    /// Files that could not be used, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    sampler: Sampler,
    /// Per loaded folder: its crops keep their orientation (see [`upright`](Self::upright)).
    upright: Vec<bool>,
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
        for (folder, dir) in dirs.iter().enumerate() {
            let found = crate::imaging::files::image_files(dir, true).map_err(|source| DataError::Walk {
                dir: dir.clone(),
                source,
            })?;
            files.extend(found.into_iter().map(|file| (file, folder)));
        }
        // One order over all folders by path, as runs before per-folder weights had it (their
        // batches stay the same).
        files.sort();
        let mut images = Vec::new();
        let mut folders = Vec::new();
        let mut skipped = Vec::new();
        for (file, folder) in files {
            match load_rgb8(&file) {
                Ok(img) if img.height >= min_side && img.width >= min_side => {
                    images.push(img);
                    folders.push(folder);
                }
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
        Ok(Self {
            images,
            folders,
            skipped,
            sampler: Sampler::Uniform,
            upright: vec![false; dirs.len()],
        })
    }

    /// Crops from the folders `upright` marks (one flag a folder of [`load`](Self::load)'s
    /// `dirs`) get only the four flips, which keep rows as rows, never a transposition: screens
    /// and text have a natural orientation, their lines of text and separators horizontal, and a
    /// network of this size is not equally good at both.
    pub fn upright(mut self, upright: Vec<bool>) -> Self {
        assert_eq!(upright.len(), self.upright.len(), "one flag a folder");
        self.upright = upright;
        self
    }

    /// Picks each crop's folder by `weights` (one a folder of [`load`](Self::load)'s `dirs`,
    /// validated by the config), then one of its images; a folder of positive weight must
    /// have an image.
    pub fn weighted(mut self, dirs: &[PathBuf], weights: &[f64]) -> Result<Self, DataError> {
        let mut members = vec![Vec::new(); weights.len()];
        for (image, &folder) in self.folders.iter().enumerate() {
            members[folder].push(image);
        }
        if let Some(folder) = (0..weights.len()).find(|&f| weights[f] > 0.0 && members[f].is_empty()) {
            return Err(DataError::EmptyWeightedFolder {
                dir: dirs[folder].clone(),
                weight: weights[folder],
            });
        }
        let folders = WeightedIndex::new(weights).expect("validated: finite, non-negative, not all zero");
        self.sampler = Sampler::ByFolder { folders, members };
        Ok(self)
    }

    /// The index of a crop's image.
    fn pick(&self, rng: &mut ChaCha8Rng) -> usize {
        match &self.sampler {
            Sampler::Uniform => rng.random_range(0..self.images.len()),
            Sampler::ByFolder { folders, members } => {
                let members = &members[folders.sample(rng)];
                members[rng.random_range(0..members.len())]
            }
        }
    }

    /// The batch of training step `step`, its crops made as `options` says.
    pub fn batch(
        &self,
        seed: u64,
        step: u64,
        size: usize,
        lr_patch: usize,
        scale: usize,
        options: CropOptions,
    ) -> Batch {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let hr_patch = lr_patch * scale;
        let mut lr = Vec::with_capacity(size * 3 * lr_patch * lr_patch);
        let mut hr = Vec::with_capacity(size * 3 * hr_patch * hr_patch);
        for _ in 0..size {
            let index = self.pick(&mut rng);
            let img = &self.images[index];
            let top = rng.random_range(0..=img.height - hr_patch);
            let left = rng.random_range(0..=img.width - hr_patch);
            let mut symmetry: u8 = rng.random_range(0..8);
            if self.upright[self.folders[index]] {
                // The same draw with its transposition dropped: the other folders' crops, and
                // the batches of runs without upright folders, stay as they were.
                symmetry &= !TRANSPOSE;
            }
            let mut crop = augment(&img.crop(top, left, hr_patch, hr_patch), symmetry);
            // Drawn only where inversion is on, so that the batches of runs without it stay
            // those they were.
            if options.invert_fraction > 0.0 && rng.random::<f64>() < options.invert_fraction {
                crop = crop.map(|v| 255 - v);
            }
            let crop = crop.to_unit_f64();
            let small = resize::downscale(&crop, scale);
            hr.extend(crop.data.iter().map(|&v| v as f32));
            if options.lr_8bit {
                lr.extend(small.quantize_u8().data.iter().map(|&v| v as f32 / 255.0));
            } else {
                lr.extend(small.data.iter().map(|&v| v as f32));
            }
        }
        Batch { lr, hr, size, lr_patch }
    }
}

/// How a batch's crops are made, beyond what the seed and step choose.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CropOptions {
    /// LR patches clamped and rounded to 8 bits, as a saved image's.
    pub lr_8bit: bool,
    /// The share of crops whose intensities are inverted (255 - v) before their LR is made (the
    /// bicubic commutes with it): dark scenes with bright edges as often as the reverse.
    pub invert_fraction: f64,
}

/// The bit of [`augment`]'s symmetries that transposes.
pub const TRANSPOSE: u8 = 4;

/// One of the 8 symmetries of the square: bit 0 flips left-right, bit 1 flips top-bottom,
/// bit 2 ([`TRANSPOSE`]) transposes (with the flips, the 90-degree rotations).
pub fn augment<T: Copy + Default>(img: &Image<T>, op: u8) -> Image<T> {
    let n = img.height;
    assert_eq!(n, img.width, "augment takes square crops");
    let mut out = Image::zeros(img.channels, n, n);
    for c in 0..img.channels {
        let (src, dst) = (img.plane(c), out.plane_mut(c));
        for y in 0..n {
            for x in 0..n {
                let (mut sy, mut sx) = if op & TRANSPOSE != 0 { (x, y) } else { (y, x) };
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

    /// A set of one image in one folder, sampled uniformly.
    fn one_image(image: Image<u8>) -> TrainingSet {
        TrainingSet {
            images: vec![image],
            folders: vec![0],
            skipped: vec![],
            sampler: Sampler::Uniform,
            upright: vec![false],
        }
    }

    #[test]
    fn batches_depend_only_on_seed_and_step() {
        let set = one_image(Image::new(
            3,
            20,
            24,
            (0..3 * 20 * 24).map(|i| (i % 251) as u8).collect(),
        ));
        let a = set.batch(7, 3, 2, 4, 2, CropOptions::default());
        let b = set.batch(7, 3, 2, 4, 2, CropOptions::default());
        let c = set.batch(7, 4, 2, 4, 2, CropOptions::default());
        assert_eq!(a.lr, b.lr);
        assert_ne!(a.hr, c.hr);
        assert_eq!(a.lr.len(), 2 * 3 * 4 * 4);
        assert_eq!(a.hr.len(), 2 * 3 * 8 * 8);
    }

    #[test]
    fn inverted_crops_are_the_crops_turned_negative_and_none_leaves_the_batches_alone() {
        let ramp = Image::new(3, 24, 24, (0..3 * 24 * 24).map(|i| (i % 200) as u8).collect());
        let set = one_image(ramp);
        let plain = set.batch(9, 2, 3, 4, 2, CropOptions::default());
        let with = |invert_fraction| {
            set.batch(
                9,
                2,
                3,
                4,
                2,
                CropOptions {
                    invert_fraction,
                    ..CropOptions::default()
                },
            )
        };
        // No inversion draws nothing more: the same batch.
        assert_eq!(with(0.0).hr, plain.hr);
        // The first crop is chosen before its draw: the same crop, negative, LR and HR.
        let inverted = with(1.0);
        let first = 3 * 8 * 8;
        for (&p, &q) in plain.hr[..first].iter().zip(&inverted.hr[..first]) {
            assert!((p + q - 1.0).abs() < 1e-6, "{p} {q}");
        }
        for (&p, &q) in plain.lr[..3 * 4 * 4].iter().zip(&inverted.lr[..3 * 4 * 4]) {
            assert!((p + q - 1.0).abs() < 1e-5, "{p} {q}");
        }
    }

    #[test]
    fn lr_8bit_batches_are_the_same_crops_with_their_lr_as_a_saved_image() {
        // Black and white stripes: the bicubic over- and undershoots at every edge.
        let stripes = Image::new(
            3,
            24,
            24,
            (0..3 * 24 * 24).map(|i| if i % 24 < 12 { 0 } else { 255 }).collect(),
        );
        let set = one_image(stripes);
        let quantize = CropOptions {
            lr_8bit: true,
            ..CropOptions::default()
        };
        let (plain, quantized) = (
            set.batch(5, 0, 4, 6, 3, CropOptions::default()),
            set.batch(5, 0, 4, 6, 3, quantize),
        );
        assert_eq!(plain.hr, quantized.hr);
        assert!(
            plain.lr.iter().any(|v| !(0.0..=1.0).contains(v)),
            "the edges' overshoots"
        );
        for (&p, &q) in plain.lr.iter().zip(&quantized.lr) {
            let level = (p.clamp(0.0, 1.0) * 255.0).round_ties_even();
            assert_eq!(q, level / 255.0, "{p} -> {q}");
        }
    }

    #[test]
    fn folder_weights_set_the_share_of_each_folders_crops() {
        // Folder 0: one black image; folder 1: three white ones.
        let flat = |v: u8| Image::new(3, 8, 8, vec![v; 3 * 8 * 8]);
        let set = || TrainingSet {
            images: vec![flat(0), flat(255), flat(255), flat(255)],
            folders: vec![0, 1, 1, 1],
            skipped: vec![],
            sampler: Sampler::Uniform,
            upright: vec![false, false],
        };
        let dirs: Vec<PathBuf> = vec!["black".into(), "white".into()];
        let black_share = |set: &TrainingSet| {
            let crops = 40 * 16;
            let black: usize = (0..40)
                .map(|step| {
                    let b = set.batch(1, step, 16, 2, 2, CropOptions::default());
                    b.hr.chunks(3 * 4 * 4).filter(|crop| crop[0] == 0.0).count()
                })
                .sum();
            black as f64 / crops as f64
        };
        let uniform = black_share(&set());
        assert!((uniform - 0.25).abs() < 0.06, "uniform over images: {uniform}");
        let even = black_share(&set().weighted(&dirs, &[1.0, 1.0]).unwrap());
        assert!((even - 0.5).abs() < 0.06, "half from each folder: {even}");
        assert_eq!(black_share(&set().weighted(&dirs, &[0.0, 1.0]).unwrap()), 0.0);
        let only_black = set().weighted(&dirs, &[1.0, 0.0]).unwrap();
        assert_eq!(black_share(&only_black), 1.0);
        let empty = TrainingSet {
            folders: vec![1, 1, 1, 1],
            ..set()
        };
        let err = empty.weighted(&dirs, &[0.5, 1.0]).err().expect("folder 0 has no image");
        assert_eq!(
            err.to_string(),
            "black: no usable training image, but its data_weights entry is 0.5"
        );
    }

    #[test]
    fn upright_folders_crops_keep_their_rows_and_the_others_stay_as_they_were() {
        // Folder 0: horizontal stripes (each row one level, rows differing); folder 1: a ramp.
        let stripes = Image::new(3, 16, 16, (0..3 * 16 * 16).map(|i| (i / 16 % 16 * 15) as u8).collect());
        let ramp = Image::new(3, 16, 16, (0..3 * 16 * 16).map(|i| (i % 199) as u8).collect());
        let set = || TrainingSet {
            images: vec![stripes.clone(), ramp.clone()],
            folders: vec![0, 1],
            skipped: vec![],
            sampler: Sampler::Uniform,
            upright: vec![false, false],
        };
        let (free, upright) = (set(), set().upright(vec![true, false]));
        let rows_constant = |crop: &[f32]| crop.chunks(8).all(|row| row.iter().all(|&v| v == row[0]));
        let (mut turned, mut ramps) = (0, 0);
        for step in 0..20 {
            let (a, b) = (
                free.batch(3, step, 8, 4, 2, CropOptions::default()),
                upright.batch(3, step, 8, 4, 2, CropOptions::default()),
            );
            for (crop_a, crop_b) in a.hr.chunks(3 * 8 * 8).zip(b.hr.chunks(3 * 8 * 8)) {
                // Which image: the stripes have equal neighbours along some axis, the ramp not.
                let is_stripes = crop_a.chunks(8).all(|r| r.iter().all(|&v| v == r[0]))
                    || (0..8).all(|x| (0..8).all(|y| crop_a[y * 8 + x] == crop_a[x]));
                if is_stripes {
                    turned += usize::from(!rows_constant(crop_a));
                    assert!(rows_constant(crop_b), "an upright crop turned on its side");
                } else {
                    ramps += 1;
                    assert_eq!(crop_a, crop_b, "a crop of the other folder changed");
                }
            }
        }
        assert!(
            turned > 0 && ramps > 0,
            "both images drawn, the stripes turned in the free set"
        );
    }
}
