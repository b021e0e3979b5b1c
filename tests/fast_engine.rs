//! The fast engine against the burn reference path and the official outputs.

mod common;

use burn::tensor::Device;
use rt4ksr::ModelWeights;
use rt4ksr::engine::{FastEngine, Isa, Path, Workspace};
use rt4ksr::imaging::Image;
use rt4ksr::inference::BurnUpscaler;
use rt4ksr::model::init::perturbed_weights;
use rt4ksr::model::{Activation, Form, ModelConfig};
use rt4ksr::weights::store::read_tensors;

/// Every path this CPU runs, with the largest difference from the fp32 reference allowed to
/// it; a SKIP line for each path it lacks.
fn isas(test: &str) -> Vec<(Isa, f32)> {
    Isa::survey()
        .into_iter()
        .filter_map(|(path, answer)| match answer {
            Ok(isa) => Some((isa, tolerance(path))),
            Err(why) => {
                println!("SKIP {test} on {path}: {why}");
                None
            }
        })
        .collect()
}

/// fp32 paths: 1e-4 (rounding order only). The AMX path's split bf16 keeps about 16 bits of
/// every operand (relative error up to 2^-16 per product, 1.5e-5) and the LayerNorms rescale
/// features to unit variance, so its errors grow layer by layer: measured worst 1.2e-4 over
/// these tests (the messages print it); 5e-4 is an eighth of an 8-bit level.
fn tolerance(path: Path) -> f32 {
    if path.is_reduced_precision() { 5e-4 } else { 1e-4 }
}

fn image(h: usize, w: usize, seed: usize) -> Image<f32> {
    Image::new(
        3,
        h,
        w,
        (0..3 * h * w)
            .map(|i| ((i * 2654435761 + seed * 97) % 1000) as f32 / 999.0)
            .collect(),
    )
}

fn max_diff(a: &Image<f32>, b: &Image<f32>) -> f32 {
    assert_eq!((a.channels, a.height, a.width), (b.channels, b.height, b.width));
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn fast_engine_matches_the_burn_path_across_configurations() {
    let base = ModelConfig::official(2);
    let configs = [
        base.clone(),
        ModelConfig {
            scale: 3,
            ..base.clone()
        },
        ModelConfig {
            scale: 4,
            activation: Activation::Relu,
            layernorm: false,
            ..base.clone()
        },
        ModelConfig {
            feature_channels: 12,
            num_blocks: 2,
            activation: Activation::Lrelu,
            ..base.clone()
        },
        ModelConfig { num_blocks: 0, ..base },
    ];
    for (k, config) in configs.iter().enumerate() {
        let weights = perturbed_weights(config, Form::Training, 40 + k as u64);
        let burn = BurnUpscaler::new(&weights, Device::flex()).unwrap();
        for (isa, tolerance) in isas("fast_engine_matches_the_burn_path_across_configurations") {
            let folded = weights.folded(false).unwrap();
            let fast = match FastEngine::from_folded(&folded.config, &folded.tensors, isa) {
                Ok(fast) => fast,
                Err(why) => {
                    assert!(!FastEngine::fits(config, isa.path()), "{why}");
                    continue;
                }
            };
            let mut ws = Workspace::default();
            // 10 x 300: three blocks of tiles, so that paths taking two blocks at a time do
            // a pair and a last single block, with the frame's edge inside it.
            for (h, w) in [(34, 50), (2, 2), (64, 36), (10, 300)] {
                let img = image(h, w, k);
                let want = burn.upscale(&img).unwrap();
                let got = fast.upscale(&img, &mut ws).unwrap();
                let d = max_diff(&want, &got);
                assert!(d <= tolerance, "{} {isa} {h}x{w}: {d:e}", config.summary());
                if isa.path().is_reduced_precision() {
                    println!("{} {isa} {h}x{w}: {d:e}", config.summary());
                }
            }
        }
    }
}

#[test]
fn fast_engine_matches_the_official_outputs() {
    let Some(dir) = common::shared_dir("fast_engine_matches_the_official_outputs") else {
        return;
    };
    for scale in [2, 3] {
        let weights = ModelWeights::load(&dir.join(format!("models/official/rt4ksr_x{scale}.pth"))).unwrap();
        for (isa, tolerance) in isas("fast_engine_matches_the_official_outputs") {
            let folded = weights.folded(false).unwrap();
            let fast = FastEngine::from_folded(&folded.config, &folded.tensors, isa).unwrap();
            let mut ws = Workspace::default();
            for case in ["random_36x52", "astronaut_96x128", "coffee_96x128"] {
                let path = dir.join(format!("reference/rt4ksr_x{scale}_{case}.safetensors"));
                let (t, _) = read_tensors(&std::fs::read(&path).unwrap(), &path).unwrap();
                let input = &t["input"];
                let img = Image::new(3, input.shape[2], input.shape[3], input.data.clone());
                let out = fast.upscale(&img, &mut ws).unwrap();
                let expected = &t["rep.output"];
                let d = out.max_abs_diff(&Image::new(
                    3,
                    expected.shape[2],
                    expected.shape[3],
                    expected.data.clone(),
                ));
                assert!(d <= tolerance as f64, "x{scale} {isa} {case}: {d:e}");
                println!("x{scale} {isa} {case}: {d:e}");
            }
        }
    }
}
