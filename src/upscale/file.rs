//! Upscaling an image file as `rt4ksr upscale` does: decoded whatever its format, depth, alpha
//! and orientation, upscaled within a memory bound, encoded with its ICC profile and EXIF, and
//! written atomically (a reader never sees half a file, a failure leaves nothing behind).

use super::{Engine, UpscaleError, upscale_picture};
use crate::fsutil;
use crate::imaging::picture::{self, DecodeLimits, EncodeOptions, Picture, PictureError};
use image::ImageFormat;
use std::path::{Path, PathBuf};

/// The work of upscaling a folder into another, as `rt4ksr upscale DIR -o OUT` does: each image
/// file under `root` (subfolders included, sorted by path) with the path it goes to under
/// `out_root`, the folder structure mirrored. The error names the folder or entry that could
/// not be read.
pub fn mirror_folder(root: &Path, out_root: &Path) -> Result<Vec<(PathBuf, PathBuf)>, walkdir::Error> {
    let files = crate::imaging::files::image_files(root, true)?;
    Ok(files
        .into_iter()
        .map(|input| {
            let rel = input.strip_prefix(root).expect("walkdir yields paths under its root");
            (input.clone(), out_root.join(rel))
        })
        .collect())
}

/// How a file is upscaled and written.
#[derive(Clone, Copy, Debug)]
pub struct FileOptions {
    /// The output format; `None`: from the output's extension, else the input's, else PNG.
    pub format: Option<ImageFormat>,
    /// JPEG and WebP quality 1..=100; WebP at 100 is lossless.
    pub quality: u8,
    /// Working-memory bound of the network in bytes; larger images are tiled to fit.
    pub max_memory: usize,
    pub limits: DecodeLimits,
    /// Replace an existing output; without it an existing output is an error.
    pub overwrite: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            format: None,
            quality: 92,
            max_memory: 1 << 30,
            limits: DecodeLimits::default(),
            overwrite: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{} exists (use --overwrite to replace it)", .0.display())]
    Exists(PathBuf),
    #[error("{}: cannot read the file: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Decode { path: PathBuf, source: PictureError },
    #[error(transparent)]
    Upscale(#[from] UpscaleError),
    #[error("cannot encode the result: {0}")]
    Encode(PictureError),
    #[error("{}: cannot write: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

impl FileError {
    /// Whether the error concerns the input (a file that cannot be read or decoded) rather
    /// than the output or the engine.
    pub fn is_input(&self) -> bool {
        matches!(self, Self::Read { .. } | Self::Decode { .. })
    }
}

/// An upscaled image: the decoded input, the result, and the result encoded.
pub struct Upscaled {
    pub input: Picture,
    pub output: Picture,
    pub encoded: Vec<u8>,
}

/// The format of a name such as `png` or `JPEG` (`tif` and `jpeg` too), if it is one this
/// tool writes.
pub fn format_from_name(name: &str) -> Option<ImageFormat> {
    Some(match name.to_ascii_lowercase().as_str() {
        "png" => ImageFormat::Png,
        "jpg" | "jpeg" => ImageFormat::Jpeg,
        "webp" => ImageFormat::WebP,
        "bmp" => ImageFormat::Bmp,
        "tif" | "tiff" => ImageFormat::Tiff,
        _ => return None,
    })
}

/// The output format when none is asked for: the output's extension, else the input's, else PNG.
pub fn default_format(input: &Path, output: &Path) -> ImageFormat {
    let from = |p: &Path| p.extension().and_then(|e| e.to_str()).and_then(format_from_name);
    from(output).or_else(|| from(input)).unwrap_or(ImageFormat::Png)
}

/// Upscales an encoded image (`name` is where it came from, for errors) into `format`.
/// `on_tile(done, total)` reports progress.
pub fn upscale_encoded(
    engine: &dyn Engine,
    bytes: &[u8],
    name: &Path,
    format: ImageFormat,
    options: &FileOptions,
    on_tile: impl FnMut(usize, usize),
) -> Result<Upscaled, FileError> {
    let input = picture::decode(bytes, options.limits).map_err(|source| FileError::Decode {
        path: name.to_path_buf(),
        source,
    })?;
    let output = upscale_picture(engine, &input, options.max_memory, on_tile)?;
    let encoded = picture::encode(
        &output,
        EncodeOptions {
            format,
            quality: options.quality,
        },
    )
    .map_err(FileError::Encode)?;
    Ok(Upscaled { input, output, encoded })
}

/// Upscales the image file `input` into `output` (its folder made if missing), written
/// atomically.
pub fn upscale_file(
    engine: &dyn Engine,
    input: &Path,
    output: &Path,
    options: &FileOptions,
    on_tile: impl FnMut(usize, usize),
) -> Result<Upscaled, FileError> {
    if !options.overwrite && output.exists() {
        return Err(FileError::Exists(output.to_path_buf()));
    }
    let bytes = std::fs::read(input).map_err(|source| FileError::Read {
        path: input.to_path_buf(),
        source,
    })?;
    let format = options.format.unwrap_or_else(|| default_format(input, output));
    let upscaled = upscale_encoded(engine, &bytes, input, format, options, on_tile)?;
    write_output(output, &upscaled.encoded)?;
    Ok(upscaled)
}

/// Writes `bytes` to `output` atomically, its folder made if missing.
pub fn write_output(output: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let write_error = |source| FileError::Write {
        path: output.to_path_buf(),
        source,
    };
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    fsutil::write_atomic(output, bytes).map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_format_comes_from_the_output_then_the_input() {
        let p = Path::new;
        assert_eq!(default_format(p("a.png"), p("b.JPG")), ImageFormat::Jpeg);
        assert_eq!(default_format(p("a.tif"), p("b")), ImageFormat::Tiff);
        assert_eq!(default_format(p("-"), p("-")), ImageFormat::Png);
        assert_eq!(format_from_name("gif"), None);
    }

    #[test]
    fn a_folder_is_mirrored_image_by_image() {
        let dir = std::env::temp_dir().join(format!("rt4ksr-mirror-{}", std::process::id()));
        let root = dir.join("in");
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        for name in ["b.png", "a.JPG", "notes.txt", "sub/c.webp", "sub/deeper/d.tif"] {
            std::fs::write(root.join(name), b"").unwrap();
        }
        let out = Path::new("/out");
        let pairs = mirror_folder(&root, out).unwrap();
        let want: Vec<_> = ["a.JPG", "b.png", "sub/c.webp", "sub/deeper/d.tif"]
            .iter()
            .map(|name| (root.join(name), out.join(name)))
            .collect();
        assert_eq!(pairs, want);
        assert!(mirror_folder(&dir.join("missing"), out).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
