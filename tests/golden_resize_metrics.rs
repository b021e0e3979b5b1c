//! The bicubic resize and the metrics against BasicSR's golden data in ../shared/reference
//! (GOLDEN-RESIZE-METRICS.md): LR arrays to 1e-6, 8-bit arrays within one level, and the
//! per-image and mean PSNR (within 0.01 dB) and SSIM of the bicubic baseline.

mod common;

use rt4ksr::eval::{Scores, bicubic_sr, make_pair};
use rt4ksr::imaging::io::load_rgb8;
use rt4ksr::imaging::{Image, resize};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use std::path::Path;

/// HWC golden array to a planar image.
fn planar<T: Copy + Default>(hwc: &[T], shape: &[usize]) -> Image<T> {
    let (h, w, c) = (shape[0], shape[1], shape[2]);
    let mut out = Image::zeros(c, h, w);
    for (i, &v) in hwc.iter().enumerate() {
        out.data[(i % c) * h * w + i / c] = v;
    }
    out
}

#[test]
fn imresize_reproduces_basicsr_golden_arrays() {
    let Some(dir) = common::shared_dir("imresize_reproduces_basicsr_golden_arrays") else {
        return;
    };
    let bytes = std::fs::read(dir.join("reference/imresize_golden.safetensors")).unwrap();
    let golden = SafeTensors::deserialize(&bytes).unwrap();
    let mut checked = 0;
    for (set, name) in [("set5", "baby"), ("set5", "butterfly"), ("set14", "comic")] {
        let hr = load_rgb8(&dir.join(format!("data/{set}/{name}.png"))).unwrap();
        for scale in [2, 3, 4] {
            let key = |what: &str| format!("{set}_{name}_x{scale}_{what}");
            let (hr_crop, lr8) = make_pair(&hr, scale);
            let lr = resize::downscale(&hr_crop.to_unit_f64(), scale);

            let view = golden.tensor(&key("lr_f64")).unwrap();
            assert_eq!(view.dtype(), Dtype::F64);
            let values: Vec<f64> = view
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                .collect();
            let expected = planar(&values, view.shape());
            assert_eq!((lr.height, lr.width), (expected.height, expected.width));
            let diff = lr.max_abs_diff(&expected);
            assert!(diff < 1e-6, "{}: max diff {diff:e}", key("lr_f64"));

            for (what, ours) in [("lr_u8", lr8.clone()), ("bicubic_sr_u8", bicubic_sr(&lr8, scale))] {
                let view = golden.tensor(&key(what)).unwrap();
                let expected = planar(view.data(), view.shape());
                let off: Vec<i32> = ours
                    .data
                    .iter()
                    .zip(&expected.data)
                    .map(|(&a, &b)| (a as i32 - b as i32).abs())
                    .collect();
                let max = off.iter().copied().max().unwrap();
                let count = off.iter().filter(|&&d| d > 0).count();
                assert!(
                    max <= 1 && count * 1000 <= off.len(),
                    "{}: max {max}, {count} differ",
                    key(what)
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 18);
}

fn golden_metrics(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("reference/metrics_golden.json")).unwrap()).unwrap()
}

#[test]
fn bicubic_baseline_metrics_match_basicsr_per_image_and_mean() {
    let Some(dir) = common::shared_dir("bicubic_baseline_metrics_match_basicsr_per_image_and_mean") else {
        return;
    };
    let golden = golden_metrics(&dir);
    for scale in [2, 3, 4] {
        for set in ["set5", "set14"] {
            let mut all = Vec::new();
            for (key, expected) in golden["images"].as_object().unwrap() {
                if !key.starts_with(&format!("{set}/")) {
                    continue;
                }
                let hr = load_rgb8(&dir.join(format!("data/{key}.png"))).unwrap();
                let (hr, lr) = make_pair(&hr, scale);
                let s = Scores::measure(&hr, &bicubic_sr(&lr, scale), scale);
                let e = &expected[format!("x{scale}")];
                let close = |ours: f64, field: &str, tol: f64| {
                    let theirs = e[field].as_f64().unwrap();
                    assert!(
                        (ours - theirs).abs() <= tol,
                        "{key} x{scale} {field}: {ours} vs {theirs}"
                    );
                };
                close(s.psnr_y, "psnr_y", 0.01);
                close(s.psnr_rgb, "psnr_rgb", 0.01);
                close(s.ssim_y, "ssim_y", 1e-4);
                close(s.ssim_rgb, "ssim_rgb", 1e-4);
                all.push(s);
            }
            let mean = Scores::mean(&all);
            let m = &golden["means"][format!("{set}_x{scale}")];
            assert!(
                (mean.psnr_y - m["psnr_y"].as_f64().unwrap()).abs() <= 0.01,
                "{set} x{scale} mean"
            );
            assert!(
                (mean.ssim_y - m["ssim_y"].as_f64().unwrap()).abs() <= 1e-4,
                "{set} x{scale} mean"
            );
        }
    }
}
