//! The fast engine against the burn reference path and the official outputs.

mod common;

use burn::tensor::Device;
use rt4ksr::ModelWeights;
use rt4ksr::engine::{FastEngine, Isa, Workspace};
use rt4ksr::imaging::Image;
use rt4ksr::inference::BurnUpscaler;
use rt4ksr::model::init::perturbed_weights;
use rt4ksr::model::{Activation, Form, ModelConfig};
use rt4ksr::weights::store::read_tensors;

fn isas() -> Vec<Isa> {
    let mut v = vec![Isa::Portable];
    if Isa::detect() != Isa::Portable {
        v.push(Isa::detect());
    }
    v
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
        for isa in isas() {
            let folded = weights.folded(false).unwrap();
            let fast = FastEngine::from_folded(&folded.config, &folded.tensors, isa);
            let mut ws = Workspace::default();
            for (h, w) in [(34, 50), (2, 2), (64, 36)] {
                let img = image(h, w, k);
                let want = burn.upscale(&img).unwrap();
                let got = fast.upscale(&img, &mut ws).unwrap();
                let d = max_diff(&want, &got);
                assert!(d <= 1e-4, "{} {isa:?} {h}x{w}: {d:e}", config.summary());
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
        for isa in isas() {
            let folded = weights.folded(false).unwrap();
            let fast = FastEngine::from_folded(&folded.config, &folded.tensors, isa);
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
                assert!(d <= 1e-4, "x{scale} {isa:?} {case}: {d:e}");
            }
        }
    }
}
