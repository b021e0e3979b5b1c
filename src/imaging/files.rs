//! Finding image files in folders: one list of the extensions this program reads, one walk.

use std::path::{Path, PathBuf};

/// Extensions (lower case) of the image formats the program reads.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"];

/// Whether the path's extension is one of [`IMAGE_EXTENSIONS`], in any case.
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The image files in `dir` (and its subfolders when `recursive`), sorted by path; symbolic
/// links are followed. The error names the folder or entry that could not be read.
pub fn image_files(dir: &Path, recursive: bool) -> Result<Vec<PathBuf>, walkdir::Error> {
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .min_depth(1)
        .max_depth(if recursive { usize::MAX } else { 1 })
        .sort_by_file_name();
    let mut files = Vec::new();
    for entry in walk {
        let entry = entry?;
        if entry.file_type().is_file() && is_image_path(entry.path()) {
            files.push(entry.into_path());
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_folders_in_order_and_knows_image_extensions() {
        let dir = std::env::temp_dir().join(format!("rt4ksr-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for name in ["b.PNG", "a.jpg", "notes.txt", "sub/c.webp"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let names = |files: Vec<PathBuf>| -> Vec<String> {
            files
                .iter()
                .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(image_files(&dir, false).unwrap()), ["a.jpg", "b.PNG"]);
        assert_eq!(
            names(image_files(&dir, true).unwrap()),
            ["a.jpg", "b.PNG", "sub/c.webp"]
        );
        assert!(image_files(&dir.join("missing"), true).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
