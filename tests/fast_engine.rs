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

/// Every path this CPU runs, with the differences from the fp32 reference allowed to it; a
/// SKIP line for each path it lacks.
fn isas(test: &str) -> Vec<(Isa, Tolerance)> {
    Isa::survey()
        .into_iter()
        .filter_map(|(path, answer)| match answer {
            Ok(isa) => Some((isa, Tolerance::of(path))),
            Err(why) => {
                println!("SKIP {test} on {path}: {why}");
                None
            }
        })
        .collect()
}

/// The largest difference from the reference and the root mean square of the differences.
#[derive(Clone, Copy, Debug)]
struct Tolerance {
    max: f32,
    rms: f32,
}

impl Tolerance {
    /// fp32 paths: 1e-4 (rounding order only). The AMX path: split bf16 (about 16 bits of every
    /// operand) in every layer but the upsample conv, which runs in plain bf16 (its operands
    /// rounded to 2^-9, the Winograd output transform's coefficients, up to 8, amplifying that
    /// in the sum): measured worst 3.4e-2 and an rms of 3.8e-3 over these tests (the messages
    /// print them), where the split products everywhere measured 1.2e-4. The bounds keep a
    /// margin over that and still fail on a wrong product or transform (errors of the order of
    /// the outputs); the quality that counts is bounded by PSNR (tests/cli_eval.rs).
    fn of(path: Path) -> Self {
        if path.is_reduced_precision() {
            Self { max: 5e-2, rms: 5e-3 }
        } else {
            Self { max: 1e-4, rms: 1e-4 }
        }
    }

    /// Panics, naming `case`, where `got` is further from `want` than allowed.
    fn check(self, want: &[f32], got: &[f32], case: &str) {
        assert_eq!(want.len(), got.len(), "{case}: sizes");
        let (max, squares) = want.iter().zip(got).fold((0f32, 0f64), |(max, sum), (a, b)| {
            let d = (a - b).abs();
            (max.max(d), sum + (d as f64).powi(2))
        });
        let rms = (squares / want.len() as f64).sqrt() as f32;
        assert!(max <= self.max && rms <= self.rms, "{case}: max {max:e}, rms {rms:e}");
        println!("{case}: max {max:e}, rms {rms:e}");
    }
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
                assert_eq!(
                    (want.channels, want.height, want.width),
                    (got.channels, got.height, got.width)
                );
                tolerance.check(&want.data, &got.data, &format!("{} {isa} {h}x{w}", config.summary()));
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
                assert_eq!(expected.shape, [1, 3, out.height, out.width]);
                tolerance.check(&expected.data, &out.data, &format!("x{scale} {isa} {case}"));
            }
        }
    }
}
