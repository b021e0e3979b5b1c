//! `rt4ksr convert` end to end: `--mean-with`, the weighted mean of two models' folded weights,
//! with clear errors for a bad share; `--transpose`, the model turned with its images;
//! `--widen`, the same model with more channels.

mod common;

use rt4ksr::ModelWeights;
use rt4ksr::engine::{FastEngine, Isa, Workspace};
use rt4ksr::imaging::Image;
use rt4ksr::model::init::perturbed_weights;
use rt4ksr::model::{Form, ModelConfig};
use std::process::Command;

fn convert(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rt4ksr"))
        .arg("convert")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_mean_takes_each_model_at_its_share() {
    let dir = common::scratch("convert-mean");
    let config = ModelConfig::official(3);
    let (a, b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    // One in the training form, one folded: the mean is of the folded weights.
    perturbed_weights(&config, Form::Training, 1).save(&a).unwrap();
    perturbed_weights(&config, Form::Folded, 2).save(&b).unwrap();
    let mean_of = |share: &str, out: &std::path::Path| {
        let args = [
            "--mean-with".as_ref(),
            b.as_os_str(),
            "--mean-share".as_ref(),
            share.as_ref(),
        ];
        convert(&[&[a.as_os_str()], &args[..], &["-o".as_ref(), out.as_os_str()]].concat())
    };
    let out = dir.join("mean.safetensors");
    let result = mean_of("0.25", &out);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let mean = ModelWeights::load(&out).unwrap();
    let (fa, fb) = (
        ModelWeights::load(&a).unwrap().folded(false).unwrap(),
        ModelWeights::load(&b).unwrap(),
    );
    assert_eq!(mean.form, Form::Folded);
    for (name, t) in &mean.tensors {
        for ((m, x), y) in t.data.iter().zip(&fa.tensors[name].data).zip(&fb.tensors[name].data) {
            let want = 0.75 * x + 0.25 * y;
            assert!((m - want).abs() <= 1e-6 * (x.abs() + y.abs()), "{name}: {m} vs {want}");
        }
    }

    // A share outside 0..=1: one line naming both files, nothing written.
    let bad = dir.join("bad.safetensors");
    let result = mean_of("1.5", &bad);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(stderr.contains("a.safetensors") && stderr.contains("1.5"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!bad.exists());

    // A share without a model to share with is refused by the argument parser.
    let result = convert(&[
        a.as_os_str(),
        "--mean-share".as_ref(),
        "0.3".as_ref(),
        "-o".as_ref(),
        bad.as_os_str(),
    ]);
    assert!(!result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains("--mean-with"));
    assert!(!bad.exists());
}

/// An RGB test image of samples in 0..=1 that vary from pixel to pixel.
fn pattern(height: usize, width: usize) -> Image<f32> {
    let samples = (0..3 * height * width)
        .map(|i| ((i * 37) % 101) as f32 / 100.0)
        .collect();
    Image::new(3, height, width, samples)
}

/// The largest difference between two images' samples.
fn worst_difference(a: &Image<f32>, b: &Image<f32>) -> f32 {
    assert_eq!((a.height, a.width), (b.height, b.width));
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

/// `Image` (planar) turned about its diagonal.
fn transposed(img: &Image<f32>) -> Image<f32> {
    let mut data = Vec::with_capacity(img.data.len());
    for c in 0..img.channels {
        let plane = img.plane(c);
        for x in 0..img.width {
            data.extend((0..img.height).map(|y| plane[y * img.width + x]));
        }
    }
    Image::new(img.channels, img.width, img.height, data)
}

#[test]
fn a_transposed_model_upscales_a_turned_image_to_the_turned_output() {
    let dir = common::scratch("convert-transpose");
    let config = ModelConfig::official(3);
    let (model, turned) = (dir.join("model.safetensors"), dir.join("turned.safetensors"));
    perturbed_weights(&config, Form::Training, 4).save(&model).unwrap();
    let result = convert(&[
        model.as_os_str(),
        "--transpose".as_ref(),
        "-o".as_ref(),
        turned.as_os_str(),
    ]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let (original, turned) = (
        ModelWeights::load(&model).unwrap().folded(false).unwrap(),
        ModelWeights::load(&turned).unwrap(),
    );
    assert_eq!(turned.form, Form::Folded);
    let img = pattern(22, 30);
    // On every path of the fast engine this CPU has (`rt4ksr upscale` runs the fastest).
    for (path, isa) in Isa::survey() {
        let Ok(isa) = isa else { continue };
        let fast = |w: &ModelWeights| FastEngine::from_folded(&w.config, &w.tensors, isa).unwrap();
        let mut ws = Workspace::default();
        let want = transposed(&fast(&original).upscale(&img, &mut ws).unwrap());
        let got = fast(&turned).upscale(&transposed(&img), &mut ws).unwrap();
        let worst = worst_difference(&got, &want);
        let bound = if path.is_reduced_precision() { 5e-2 } else { 1e-4 };
        assert!(worst <= bound, "{path}: {worst:e}");
    }
}

#[test]
fn a_widened_model_upscales_as_the_narrow_one() {
    let dir = common::scratch("convert-widen");
    let config = ModelConfig::official(4);
    let (model, wide) = (dir.join("model.safetensors"), dir.join("wide.safetensors"));
    perturbed_weights(&config, Form::Training, 5).save(&model).unwrap();
    let result = convert(&[
        model.as_os_str(),
        "--widen".as_ref(),
        "2".as_ref(),
        "--training-form".as_ref(),
        "-o".as_ref(),
        wide.as_os_str(),
    ]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let (narrow, wide) = (
        ModelWeights::load(&model).unwrap().folded(false).unwrap(),
        ModelWeights::load(&wide).unwrap(),
    );
    assert_eq!((wide.form, wide.config.feature_channels), (Form::Training, 48));
    // `info` names the width and the cost of the frame x4 takes to 4K (960x540).
    let info = Command::new(env!("CARGO_BIN_EXE_rt4ksr"))
        .arg("info")
        .arg(dir.join("wide.safetensors"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&info.stdout);
    let gmac = wide.config.folded_macs(960, 540, false) as f64 / 1e9;
    assert!(report.contains("feature channels: 48"), "{report}");
    assert!(
        report.contains(&format!("960x540            -> 3840x2160: {gmac:.2} GMAC useful")),
        "{report}"
    );
    let wide = wide.folded(false).unwrap();
    let img = pattern(18, 26);
    for (path, isa) in Isa::survey() {
        let Ok(isa) = isa else { continue };
        // AMX tiles hold at most 32 channels: 48 is for the other paths.
        if !FastEngine::fits(&wide.config, path) {
            continue;
        }
        let fast = |w: &ModelWeights| FastEngine::from_folded(&w.config, &w.tensors, isa).unwrap();
        let mut ws = Workspace::default();
        let want = fast(&narrow).upscale(&img, &mut ws).unwrap();
        let got = fast(&wide).upscale(&img, &mut ws).unwrap();
        let worst = worst_difference(&got, &want);
        assert!(worst <= 1e-4, "{path}: {worst:e}");
    }

    // A factor under 2: one line naming the file and the factor, nothing written.
    let bad = dir.join("bad.safetensors");
    let result = convert(&[
        model.as_os_str(),
        "--widen".as_ref(),
        "1".as_ref(),
        "-o".as_ref(),
        bad.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(
        stderr.contains("model.safetensors") && stderr.contains("factor of 2 or more, not 1"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!bad.exists());
}
