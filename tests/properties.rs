//! Property tests (proptest) for the pieces whose exactness everything else rests on: the
//! MATLAB bicubic resize, tiling, and the weight folding.

use burn::tensor::Device;
use proptest::prelude::*;
use rt4ksr::imaging::Image;
use rt4ksr::imaging::resize::{downscale, imresize_to, upscale};
use rt4ksr::inference::best_engine;
use rt4ksr::model::init::perturbed_weights;
use rt4ksr::model::network::host;
use rt4ksr::model::{Activation, Form, HfExtraction, ModelConfig};
use rt4ksr::upscale::upscale_rgb;
use rt4ksr::{HostTensor, Rt4ksr};

fn image(channels: usize, h: usize, w: usize, values: &[f64]) -> Image<f64> {
    let data = (0..channels * h * w).map(|i| values[i % values.len()]).collect();
    Image::new(channels, h, w, data)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The weights of every output pixel sum to one, so a flat image stays flat, at any size,
    /// either way.
    #[test]
    fn resize_keeps_flat_images_flat(h in 1usize..40, w in 1usize..40, scale in 2usize..5, v in 0.0f64..1.0) {
        let flat = image(1, h * scale, w * scale, &[v]);
        let down = downscale(&flat, scale);
        prop_assert_eq!((down.height, down.width), (h, w));
        prop_assert!(down.data.iter().all(|x| (x - v).abs() < 1e-12));
        let up = upscale(&image(1, h, w, &[v]), scale);
        prop_assert_eq!((up.height, up.width), (h * scale, w * scale));
        prop_assert!(up.data.iter().all(|x| (x - v).abs() < 1e-12));
    }

    /// Resizing is linear: resize(a x + y) = a resize(x) + resize(y).
    #[test]
    fn resize_is_linear(
        h in 1usize..24, w in 1usize..24, out_h in 1usize..30, out_w in 1usize..30,
        xs in prop::collection::vec(-1.0f64..1.0, 1..50),
        ys in prop::collection::vec(-1.0f64..1.0, 1..50),
        a in -2.0f64..2.0,
    ) {
        let (x, y) = (image(2, h, w, &xs), image(2, h, w, &ys));
        let combined = Image::new(2, h, w, x.data.iter().zip(&y.data).map(|(p, q)| a * p + q).collect());
        let scale = out_h as f64 / h as f64;
        let (rx, ry) = (imresize_to(&x, out_h, out_w, scale), imresize_to(&y, out_h, out_w, scale));
        let rc = imresize_to(&combined, out_h, out_w, scale);
        let expected: Vec<f64> = rx.data.iter().zip(&ry.data).map(|(p, q)| a * p + q).collect();
        prop_assert!(rc.max_abs_diff(&Image::new(2, out_h, out_w, expected)) < 1e-9);
    }
}

fn small_config(scale: usize, blocks: usize, activation: Activation, layernorm: bool, residual: bool) -> ModelConfig {
    ModelConfig {
        feature_channels: 6,
        num_blocks: blocks,
        activation,
        layernorm,
        residual,
        ..ModelConfig::official(scale)
    }
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![Just(Activation::Gelu), Just(Activation::Relu), Just(Activation::Lrelu)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any image size, any memory budget: tiles stitch to the untiled result.
    #[test]
    fn tiles_stitch_to_the_whole_image(
        h in 1usize..150, w in 1usize..150, budget_px in 4096usize..12000,
        scale in 2usize..4, seed in 0u64..1000, act in activation(),
    ) {
        let config = small_config(scale, 1, act, true, false);
        let engine = best_engine(&perturbed_weights(&config, Form::Folded, seed)).unwrap();
        let data = (0..3 * h * w).map(|i| ((i as u64 * 2_654_435_761 + seed) % 1000) as f32 / 1000.0).collect();
        let picture = Image::new(3, h, w, data);
        let whole = upscale_rgb(engine.as_ref(), &picture, usize::MAX, |_, _| {}).unwrap();
        let bytes = budget_px * engine.bytes_per_lr_pixel();
        let mut tiles = 0;
        let tiled = upscale_rgb(engine.as_ref(), &picture, bytes, |_, n| tiles = n).unwrap();
        // (4096 LR pixels is the smallest tile upscale_rgb plans.)
        let padded = (h + h % 2) * (w + w % 2);
        prop_assert_eq!(tiles > 1, padded > budget_px, "{} tiles", tiles);
        prop_assert_eq!((tiled.height, tiled.width), (h * scale, w * scale));
        // Within twice the fast engine's bound against the reference path (1e-4 each), not
        // bit-exact: its Winograd tiles round a pixel differently at each position in a tile,
        // and with 6 channels LayerNorm can magnify rounding a hundredfold.
        let diff = whole.max_abs_diff(&tiled);
        prop_assert!(diff < 2e-4, "{}x{} budget {}: {}", h, w, budget_px, diff);
    }

    /// Folding is exact for any configuration and weights: the folded network computes what
    /// the training network computes.
    #[test]
    fn folding_preserves_the_function(
        scale in 2usize..5, blocks in 0usize..3, act in activation(), layernorm: bool,
        residual: bool, eca: bool, merge_hf: bool, avg_pool: bool, seed in 0u64..1000,
        h in 1usize..6, w in 1usize..6,
    ) {
        let config = ModelConfig {
            eca,
            merge_hf,
            hf_extraction: if avg_pool { HfExtraction::AvgPool } else { HfExtraction::Gaussian },
            ..small_config(scale, blocks, act, layernorm, residual)
        };
        let mut weights = perturbed_weights(&config, Form::Training, seed);
        if let Some(gamma) = weights.tensors.get_mut("gamma") {
            gamma.data[0] = 0.5;
        }
        let folded = weights.folded(false).unwrap();
        let device = Device::flex();
        let (h, w) = (2 * h + 4, 2 * w + 4);
        let data: Vec<f32> = (0..3 * h * w).map(|i| ((i as u64 * 40503 + seed) % 997) as f32 / 997.0).collect();
        let input = HostTensor::new(vec![1, 3, h, w], data);
        let run = |wts| {
            let net = Rt4ksr::from_weights(wts, &device);
            host(net.try_forward(rt4ksr::model::network::tensor4(&input, &device)).unwrap())
        };
        let (a, b) = (run(&weights), run(&folded));
        let scale_of = a.data.iter().fold(1f32, |m, v| m.max(v.abs()));
        prop_assert!(a.max_abs_diff(&b) <= 1e-5 * scale_of, "{}: {}", config.summary(), a.max_abs_diff(&b));
    }
}
