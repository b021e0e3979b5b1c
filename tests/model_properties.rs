//! Self-contained properties of the network (no ../shared): folding is exact for random
//! weights across the design space, and bad input sizes are errors, never panics.

use burn::tensor::{Device, Distribution, Tensor};
use rt4ksr::Rt4ksr;
use rt4ksr::model::init::perturbed_weights;
use rt4ksr::model::network::host;
use rt4ksr::model::{Activation, Form, HfExtraction, ModelConfig};

fn configurations() -> Vec<ModelConfig> {
    let base = ModelConfig::official(2);
    vec![
        base.clone(),
        ModelConfig {
            scale: 3,
            activation: Activation::Relu,
            residual: true,
            ..base.clone()
        },
        ModelConfig {
            scale: 4,
            feature_channels: 8,
            num_blocks: 2,
            eca: true,
            ..base.clone()
        },
        ModelConfig {
            activation: Activation::Lrelu,
            layernorm: false,
            merge_hf: true,
            ..base.clone()
        },
        ModelConfig {
            scale: 3,
            feature_channels: 12,
            num_blocks: 1,
            merge_hf: true,
            hf_extraction: HfExtraction::AvgPool,
            eca: true,
            residual: true,
            ..base.clone()
        },
        ModelConfig { num_blocks: 0, ..base },
    ]
}

#[test]
fn folded_output_equals_training_output_for_random_weights() {
    let device = Device::flex();
    for (i, config) in configurations().into_iter().enumerate() {
        let mut weights = perturbed_weights(&config, Form::Training, 100 + i as u64);
        // A non-zero gamma so that the merge path is exercised.
        weights.tensors.get_mut("gamma").unwrap().data[0] = 0.7;
        let folded = weights.folded(false).unwrap();
        let train_net = Rt4ksr::from_weights(&weights, &device);
        let folded_net = Rt4ksr::from_weights(&folded, &device);
        for (h, w) in [(8, 12), (14, 6)] {
            let x = Tensor::<4>::random([2, 3, h, w], Distribution::Uniform(0.0, 1.0), &device);
            let a = host(train_net.try_forward(x.clone()).unwrap());
            let b = host(folded_net.try_forward(x).unwrap());
            assert_eq!(a.shape, vec![2, 3, h * config.scale, w * config.scale]);
            let scale = a.data.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
            let diff = a.max_abs_diff(&b);
            assert!(
                diff <= 1e-5 * scale,
                "{}: {h}x{w} differs by {diff:e}",
                config.summary()
            );
        }
    }
}

#[test]
fn weights_round_trip_through_the_network() {
    let device = Device::flex();
    for config in configurations() {
        for form in [Form::Training, Form::Folded] {
            let weights = perturbed_weights(&config, form, 5);
            let back = Rt4ksr::from_weights(&weights, &device).to_weights("back").unwrap();
            assert_eq!(back.tensors, weights.tensors, "{} {form}", config.summary());
        }
    }
}

#[test]
fn odd_tiny_and_wrong_inputs_are_errors_or_correct() {
    let device = Device::flex();
    for config in configurations() {
        let net = Rt4ksr::from_weights(&perturbed_weights(&config, Form::Folded, 1), &device);
        for (h, w) in [(1, 1), (3, 4), (4, 5), (0, 4), (2, 2), (2, 4), (4, 4), (6, 2)] {
            let x = Tensor::<4>::zeros([1, 3, h, w], &device);
            match net.try_forward(x) {
                Ok(y) => {
                    assert!(h % 2 == 0 && w % 2 == 0 && h > 0 && w > 0, "{h}x{w} accepted");
                    assert_eq!(y.dims(), [1, 3, h * config.scale, w * config.scale]);
                    assert!(host(y).data.iter().all(|v| v.is_finite()));
                }
                Err(error) => assert!(error.to_string().contains(&format!("{w}x{h}")), "{error}"),
            }
        }
        let grey = Tensor::<4>::zeros([1, 1, 4, 4], &device);
        assert_eq!(
            net.try_forward(grey).unwrap_err(),
            rt4ksr::model::InputError::Channels(1)
        );
    }
}
