//! `rt4ksr upscale` end to end on images the tests make: every format and bit depth, alpha,
//! grey, odd sizes, EXIF orientation, folders with a corrupt file, overwrite protection,
//! standard input and output, the decompression-bomb limit, and the side-by-side comparison.

mod common;

use image::{DynamicImage, GenericImageView, ImageBuffer, Luma, LumaA, Rgb, Rgba};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn rt4ksr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rt4ksr")).args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn rgb_pattern(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
        Rgb([
            (x * 255 / w.max(1)) as u8,
            (y * 255 / h.max(1)) as u8,
            ((x * y) % 256) as u8,
        ])
    }))
}

fn assert_ok(out: &Output) {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn every_format_and_depth_keeps_its_kind() {
    let dir = common::scratch("formats");
    let cases: Vec<(&str, DynamicImage)> = vec![
        ("rgb8.png", rgb_pattern(20, 14)),
        (
            "rgb16.png",
            DynamicImage::ImageRgb16(ImageBuffer::from_fn(20, 14, |x, y| {
                Rgb([(x * 3000) as u16, (y * 4000) as u16, 40000])
            })),
        ),
        (
            "grey8.png",
            DynamicImage::ImageLuma8(ImageBuffer::from_fn(20, 14, |x, y| Luma([(x * 10 + y) as u8]))),
        ),
        (
            "grey16.png",
            DynamicImage::ImageLuma16(ImageBuffer::from_fn(20, 14, |x, y| Luma([(x * 3000 + y) as u16]))),
        ),
        (
            "greyalpha.png",
            DynamicImage::ImageLumaA8(ImageBuffer::from_fn(20, 14, |x, _| LumaA([(x * 10) as u8, 200]))),
        ),
        (
            "rgba8.png",
            DynamicImage::ImageRgba8(ImageBuffer::from_fn(20, 14, |x, y| {
                Rgba([x as u8 * 9, y as u8 * 9, 90, if x < 10 { 255 } else { 0 }])
            })),
        ),
        ("photo.jpg", rgb_pattern(20, 14)),
        ("photo.webp", rgb_pattern(20, 14)),
        ("photo.bmp", rgb_pattern(20, 14)),
        ("photo.tiff", rgb_pattern(20, 14)),
        (
            "rgb16.tiff",
            DynamicImage::ImageRgb16(ImageBuffer::from_fn(20, 14, |x, _| Rgb([(x * 3000) as u16, 0, 65535]))),
        ),
    ];
    for (name, img) in &cases {
        img.save(dir.join(name)).unwrap();
        let out_path = dir.join(format!("out_{name}"));
        assert_ok(&rt4ksr(&["upscale", s(&dir.join(name)), "-o", s(&out_path), "-s", "2"]));
        let out = image::open(&out_path).unwrap();
        assert_eq!(out.dimensions(), (40, 28), "{name}");
        let (a, b) = (img.color(), out.color());
        match *name {
            // JPEG and WebP outputs are 8-bit RGB.
            "photo.jpg" | "photo.webp" => assert_eq!(b, image::ColorType::Rgb8, "{name}"),
            _ => assert_eq!(a, b, "{name}: kind changed"),
        }
    }
    // Alpha is upscaled, not dropped: the opaque left half stays opaque.
    let rgba = image::open(dir.join("out_rgba8.png")).unwrap().to_rgba8();
    assert_eq!(rgba.get_pixel(4, 10)[3], 255);
    assert_eq!(rgba.get_pixel(35, 10)[3], 0);
}

#[test]
fn odd_sizes_give_exactly_scaled_outputs() {
    let dir = common::scratch("odd");
    for (w, h) in [(31, 17), (1, 1), (3, 2), (2, 5)] {
        let input = dir.join(format!("in{w}x{h}.png"));
        rgb_pattern(w, h).save(&input).unwrap();
        let output = dir.join(format!("out{w}x{h}.png"));
        assert_ok(&rt4ksr(&["upscale", s(&input), "-o", s(&output), "-s", "3"]));
        assert_eq!(image::open(&output).unwrap().dimensions(), (3 * w, 3 * h));
    }
}

#[test]
fn each_scale_selects_its_embedded_model() {
    // -s 2, 3 and 4 run the embedded models, exactly as the model files they are built from;
    // a scale without one is a one-line error that says how to give a model.
    let dir = common::scratch("embedded");
    let input = dir.join("in.png");
    rgb_pattern(24, 18).save(&input).unwrap();
    for scale in ["2", "3", "4"] {
        let embedded = dir.join(format!("embedded_x{scale}.png"));
        let from_file = dir.join(format!("file_x{scale}.png"));
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("models/rt4ksr_x{scale}.safetensors"));
        assert_ok(&rt4ksr(&["upscale", s(&input), "-o", s(&embedded), "-s", scale]));
        assert_ok(&rt4ksr(&[
            "upscale",
            s(&input),
            "-o",
            s(&from_file),
            "--weights",
            s(&model),
        ]));
        let k: u32 = scale.parse().unwrap();
        let a = image::open(&embedded).unwrap();
        assert_eq!(a.dimensions(), (24 * k, 18 * k));
        assert!(
            a == image::open(&from_file).unwrap(),
            "x{scale}: embedded model differs from its file"
        );
    }
    let out = rt4ksr(&["upscale", s(&input), "-o", s(&dir.join("x5.png")), "-s", "5"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--weights") && stderr.trim().lines().count() == 1,
        "{stderr}"
    );
}

/// A baseline JPEG with an EXIF APP1 segment saying "rotate 90 degrees clockwise" (6).
fn jpeg_with_orientation(img: &DynamicImage, path: &Path) {
    let mut plain = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut plain), image::ImageFormat::Jpeg)
        .unwrap();
    let mut tiff = b"II*\x00\x08\x00\x00\x00".to_vec();
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&[6, 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut app1 = vec![0xff, 0xe1];
    app1.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    app1.extend_from_slice(b"Exif\x00\x00");
    app1.extend_from_slice(&tiff);
    let mut bytes = plain[..2].to_vec();
    bytes.extend_from_slice(&app1);
    bytes.extend_from_slice(&plain[2..]);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn jpeg_exif_orientation_is_applied_and_exif_kept() {
    let dir = common::scratch("exif");
    let input = dir.join("rotated.jpg");
    jpeg_with_orientation(&rgb_pattern(24, 10), &input);
    let output = dir.join("out.png");
    assert_ok(&rt4ksr(&["upscale", s(&input), "-o", s(&output), "-s", "2"]));
    assert_eq!(image::open(&output).unwrap().dimensions(), (20, 48));
    // The EXIF block is carried over, its orientation reset so viewers do not rotate again.
    for out in [output, dir.join("out.jpg")] {
        assert_ok(&rt4ksr(&[
            "upscale",
            s(&input),
            "-o",
            s(&out),
            "-s",
            "2",
            "--overwrite",
        ]));
        let mut decoder = image::ImageReader::open(&out)
            .unwrap()
            .with_guessed_format()
            .unwrap()
            .into_decoder()
            .unwrap();
        use image::ImageDecoder;
        let exif = decoder.exif_metadata().unwrap().expect("EXIF kept");
        assert_eq!(
            image::metadata::Orientation::from_exif_chunk(&exif),
            Some(image::metadata::Orientation::NoTransforms)
        );
    }
}

#[test]
fn folders_are_mirrored_and_a_corrupt_file_does_not_stop_the_rest() {
    let dir = common::scratch("folder");
    let src = dir.join("in");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    rgb_pattern(12, 10).save(src.join("a.png")).unwrap();
    rgb_pattern(10, 12).save(src.join("sub/b.jpg")).unwrap();
    rgb_pattern(8, 8).save(src.join("sub/deeper/c.png")).unwrap();
    std::fs::write(src.join("sub/broken.png"), b"\x89PNG\r\n\x1a\ntruncated").unwrap();
    std::fs::write(src.join("notes.txt"), b"not an image").unwrap();
    let dst = dir.join("out");
    let out = rt4ksr(&["upscale", s(&src), "-o", s(&dst), "-s", "2"]);
    assert!(!out.status.success(), "a failed file makes the exit code non-zero");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.png") && stderr.contains("3 upscaled, 0 skipped (already there), 1 failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(image::open(dst.join("a.png")).unwrap().dimensions(), (24, 20));
    assert_eq!(image::open(dst.join("sub/b.jpg")).unwrap().dimensions(), (20, 24));
    assert_eq!(
        image::open(dst.join("sub/deeper/c.png")).unwrap().dimensions(),
        (16, 16)
    );
    assert!(!dst.join("sub/broken.png").exists());
    let leftovers: Vec<PathBuf> = walk(&dst)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn existing_outputs_are_kept_unless_asked() {
    let dir = common::scratch("overwrite");
    let input = dir.join("in.png");
    rgb_pattern(10, 8).save(&input).unwrap();
    let output = dir.join("out.png");
    std::fs::write(&output, b"precious").unwrap();
    let out = rt4ksr(&["upscale", s(&input), "-o", s(&output), "-s", "2"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--overwrite"));
    assert_eq!(std::fs::read(&output).unwrap(), b"precious");
    let upscale_with = |flag: &str| rt4ksr(&["upscale", s(&input), "-o", s(&output), "-s", "2", flag]);
    assert_ok(&upscale_with("--skip-existing"));
    assert_eq!(std::fs::read(&output).unwrap(), b"precious");
    assert_ok(&upscale_with("--overwrite"));
    assert_eq!(image::open(&output).unwrap().dimensions(), (20, 16));
}

#[test]
fn standard_input_to_standard_output() {
    let mut png = Vec::new();
    rgb_pattern(14, 6)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rt4ksr"))
        .args(["upscale", "-", "-o", "-", "-s", "3", "--format", "png"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&png).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_ok(&out);
    let img = image::load_from_memory(&out.stdout).unwrap();
    assert_eq!(img.dimensions(), (42, 18));
}

#[test]
fn absurd_inputs_are_refused_with_a_way_out() {
    let dir = common::scratch("bomb");
    let input = dir.join("big.png");
    rgb_pattern(200, 100).save(&input).unwrap();
    let out = rt4ksr(&[
        "upscale",
        s(&input),
        "-o",
        s(&dir.join("o.png")),
        "--max-megapixels",
        "0.01",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("big.png") && stderr.contains("--max-megapixels"),
        "{stderr}"
    );
    assert!(!dir.join("o.png").exists());
}

#[test]
fn compare_writes_bicubic_and_model_side_by_side() {
    let dir = common::scratch("compare");
    let input = dir.join("in.png");
    rgb_pattern(16, 12).save(&input).unwrap();
    assert_ok(&rt4ksr(&[
        "upscale",
        s(&input),
        "-o",
        s(&dir.join("out.png")),
        "-s",
        "2",
        "--compare",
    ]));
    assert_eq!(image::open(dir.join("out_compare.png")).unwrap().dimensions(), (64, 24));
}

#[test]
fn quality_flags_steer_jpeg_and_webp() {
    let dir = common::scratch("quality");
    let input = dir.join("in.png");
    rgb_pattern(40, 30).save(&input).unwrap();
    for ext in ["jpg", "webp"] {
        let mut sizes = Vec::new();
        for q in ["20", "100"] {
            let out = dir.join(format!("q{q}.{ext}"));
            assert_ok(&rt4ksr(&[
                "upscale",
                s(&input),
                "-o",
                s(&out),
                "-s",
                "2",
                "--quality",
                q,
            ]));
            assert_eq!(image::open(&out).unwrap().dimensions(), (80, 60), "{ext} q{q}");
            sizes.push(std::fs::metadata(&out).unwrap().len());
        }
        assert!(
            sizes[0] < sizes[1],
            "{ext}: quality 20 gives {} bytes, 100 gives {}",
            sizes[0],
            sizes[1]
        );
    }
    let out = rt4ksr(&["upscale", s(&input), "-o", s(&dir.join("x.jpg")), "--quality", "0"]);
    assert!(!out.status.success());
}
