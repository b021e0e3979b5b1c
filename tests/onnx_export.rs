//! `rt4ksr export --onnx` run with ONNX Runtime (from PyPI, through Python) against the
//! project's own reference path. Needs a Python with onnxruntime and numpy: `$RT4KSR_PYTHON`
//! (CI makes a venv) or `python3`; skips, saying so, without one unless
//! `RT4KSR_REQUIRE_ONNXRUNTIME=1`, which CI sets.

mod common;

use rt4ksr::imaging::Image;
use rt4ksr::inference::BurnUpscaler;
use rt4ksr::model::init::perturbed_weights;
use rt4ksr::{Form, ModelConfig, ModelWeights};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rt4ksr");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/onnx_runtime_check.py");

fn python() -> String {
    std::env::var("RT4KSR_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs the model on a batch with ONNX Runtime; `None` (after saying why) when it is missing.
fn run_onnx(model: &Path, batch: &[Image<f32>], dir: &Path) -> Option<Vec<Image<f32>>> {
    let (h, w) = (batch[0].height, batch[0].width);
    let input = dir.join("input.f32");
    let output = dir.join("output.f32");
    let bytes: Vec<u8> = batch
        .iter()
        .flat_map(|i| i.data.iter().flat_map(|v| v.to_le_bytes()))
        .collect();
    std::fs::write(&input, bytes).unwrap();
    let n = batch.len().to_string();
    let (hs, ws) = (h.to_string(), w.to_string());
    let args = [
        SCRIPT,
        model.to_str().unwrap(),
        input.to_str().unwrap(),
        &n,
        "3",
        &hs,
        &ws,
        output.to_str().unwrap(),
    ];
    let result = Command::new(python()).args(args).output();
    let required = std::env::var("RT4KSR_REQUIRE_ONNXRUNTIME").is_ok_and(|v| v == "1");
    match result {
        Ok(out) if out.status.success() => {}
        Ok(out) if out.status.code() == Some(3) && !required => {
            eprintln!(
                "SKIP onnx_export: no onnxruntime in {} (pip install onnxruntime numpy)",
                python()
            );
            return None;
        }
        Err(e) if !required => {
            eprintln!("SKIP onnx_export: cannot run {}: {e}", python());
            return None;
        }
        Ok(out) => panic!("onnxruntime failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!("cannot run {}: {e}", python()),
    }
    let values: Vec<f32> = std::fs::read(&output)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let per_image = values.len() / batch.len();
    let s = (per_image / (3 * h * w)) as f64;
    let s = s.sqrt().round() as usize;
    assert_eq!(per_image, 3 * h * s * w * s, "output size");
    Some(
        values
            .chunks_exact(per_image)
            .map(|d| Image::new(3, h * s, w * s, d.to_vec()))
            .collect(),
    )
}

fn export(weights_file: &Path, onnx: &Path) {
    let out = Command::new(BIN)
        .args([
            "export",
            "--onnx",
            onnx.to_str().unwrap(),
            "--weights",
            weights_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Exports `weights`, runs a batch of two through ONNX Runtime and compares with burn.
fn check(weights: &ModelWeights, batch: &[Image<f32>], name: &str) -> bool {
    let dir = common::scratch(&format!("onnx-{name}"));
    let file = dir.join("model.safetensors");
    weights.save(&file).unwrap();
    let onnx = dir.join("model.onnx");
    export(&file, &onnx);
    let Some(got) = run_onnx(&onnx, batch, &dir) else {
        return false;
    };
    let reference = BurnUpscaler::new(weights, burn::tensor::Device::flex()).unwrap();
    for (image, got) in batch.iter().zip(&got) {
        let want = reference.upscale(image).unwrap();
        assert_eq!((got.height, got.width), (want.height, want.width));
        let worst = got.max_abs_diff(&want);
        assert!(
            worst < 1e-4,
            "{name}: ONNX Runtime differs from the reference path by {worst}"
        );
        eprintln!("{name}: worst difference {worst:e}");
    }
    true
}

fn random_batch(h: usize, w: usize, seed: u32) -> Vec<Image<f32>> {
    (0..2u32)
        .map(|i| {
            let data = (0..3 * h * w)
                .map(|k| ((k as u32).wrapping_mul(2_654_435_761).wrapping_add(seed + i) >> 8) as f32 / 16_777_216.0)
                .collect();
            Image::new(3, h, w, data)
        })
        .collect()
}

#[test]
fn exported_models_match_the_reference_path_across_configurations() {
    let mut configs = vec![ModelConfig::official(2), ModelConfig::official(3)];
    let mut other = ModelConfig::official(2);
    other.activation = rt4ksr::model::Activation::Lrelu;
    other.residual = true;
    other.layernorm = false;
    other.num_blocks = 2;
    configs.push(other);
    for (i, config) in configs.iter().enumerate() {
        let weights = perturbed_weights(config, Form::Training, 11 + i as u64);
        if !check(&weights, &random_batch(34, 46, i as u32), &format!("config{i}")) {
            return;
        }
    }
}

#[test]
fn exported_official_models_match_on_a_photo() {
    let Some(shared) = common::shared_dir("exported_official_models_match_on_a_photo") else {
        return;
    };
    let photo = rt4ksr::imaging::io::load_rgb8(&shared.join("data/set5/butterfly.png"))
        .unwrap()
        .map(|v| v as f32 / 255.0);
    for scale in [2, 3] {
        let weights = ModelWeights::load(&shared.join(format!("models/official/rt4ksr_x{scale}.pth"))).unwrap();
        let crops = vec![photo.crop(0, 0, 96, 128), photo.crop(100, 60, 96, 128)];
        if !check(&weights, &crops, &format!("official-x{scale}")) {
            return;
        }
    }
}
