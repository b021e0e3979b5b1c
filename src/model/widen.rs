//! Widening a trained model (Net2WiderNet, Chen, Goodfellow and Shlens, 2016): every feature
//! channel, and every expanded channel of the residual blocks, becomes `factor` copies of
//! itself. A layer that reads copies splits each of its weights among them in random shares
//! that sum to one, so the wider model computes what the narrow one did, exactly up to float
//! rounding: LayerNorm's mean and variance over the copies are those over the originals, and
//! every other layer acts on channels one by one or sums them with their shares. The copies are
//! equal but weighted differently downstream, so they take different gradients and grow apart
//! in training.
//!
//! Why: a wider model that starts where a trained narrow one ended keeps what that one learned,
//! which a two-core machine cannot afford to learn again from noise. At x4 the last conv turns
//! F features into 192 sub-pixel values, and F = 24 is the narrowest part of the network.

use super::config::{Form, ModelConfig};
use super::weights::ModelError;
use crate::host_tensor::{HostTensor, TensorMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The configuration and `tensors` (either form, checked against `config`) of the model widened
/// by `factor` (at least 2); the shares are drawn from `seed`.
pub fn widen(
    config: &ModelConfig,
    form: Form,
    tensors: &TensorMap,
    factor: usize,
    seed: u64,
) -> Result<(ModelConfig, TensorMap), ModelError> {
    if factor < 2 {
        return Err(ModelError::WidenFactor(factor));
    }
    if config.eca {
        // Its 1-D kernel slides across the channels and its size follows their number.
        return Err(ModelError::WidenAttention(config.summary()));
    }
    let wide = ModelConfig {
        feature_channels: config.feature_channels * factor,
        ..config.clone()
    };
    wide.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = TensorMap::new();
    // In the layout's order, so that the same seed gives the same shares everywhere.
    for spec in wide.tensor_layout(form) {
        if let Some(t) = tensors.get(&spec.name) {
            out.insert(spec.name, widen_tensor(t, &spec.shape, factor, &mut rng));
        }
    }
    Ok((wide, out))
}

/// `t` ([rows], or [rows, columns, taps...]) at `shape`, whose first two axes are either as in
/// `t` or `factor` times longer: a longer first axis (outputs) repeats the rows, copy after
/// copy; a longer second axis (inputs) repeats the columns, each weight split among its copies.
fn widen_tensor(t: &HostTensor, shape: &[usize], factor: usize, rng: &mut ChaCha8Rng) -> HostTensor {
    let axis = |s: &[usize], i: usize| s.get(i).copied().unwrap_or(1);
    let (rows, columns) = (axis(&t.shape, 0), axis(&t.shape, 1));
    let (wide_rows, wide_columns) = (axis(shape, 0), axis(shape, 1));
    let taps: usize = t.shape.iter().skip(2).product();
    assert_eq!(t.shape.len(), shape.len(), "widen: rank of a tensor");
    assert!(
        [rows, factor * rows].contains(&wide_rows) && [columns, factor * columns].contains(&wide_columns),
        "widen: {:?} to {shape:?}",
        t.shape
    );
    let copies = wide_columns / columns;
    let mut data = vec![0.0; wide_rows * wide_columns * taps];
    let mut shares = vec![0.0f32; copies];
    for row in 0..wide_rows {
        let source = &t.data[row % rows * columns * taps..][..columns * taps];
        let wide_row = &mut data[row * wide_columns * taps..][..wide_columns * taps];
        for (i, &w) in source.iter().enumerate() {
            draw_shares(&mut shares, rng);
            for (copy, share) in shares.iter().enumerate() {
                wide_row[copy * columns * taps + i] = w * share;
            }
        }
    }
    HostTensor::new(shape.to_vec(), data)
}

/// Positive shares that sum to one, none under a third of another (a single one is 1).
fn draw_shares(shares: &mut [f32], rng: &mut ChaCha8Rng) {
    if let [only] = shares {
        *only = 1.0;
        return;
    }
    for s in shares.iter_mut() {
        *s = rng.random_range(0.5f32..1.5);
    }
    let sum: f32 = shares.iter().sum();
    shares.iter_mut().for_each(|s| *s /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::HfExtraction;
    use crate::model::init::perturbed_weights;
    use crate::model::network::{Rt4ksr, host};
    use burn::tensor::{Device, Distribution, Tensor};

    /// The widened model gives the narrow one's output, for each layer the configurations can
    /// hold but channel attention: both forms, the HF branch merged in, block residuals, both
    /// HF extractions, every scale, factors 2 and 3.
    #[test]
    fn the_widened_model_computes_what_the_narrow_one_did() {
        let device = Device::flex();
        let cases = [
            (ModelConfig::official(4), Form::Training, 2),
            (ModelConfig::official(2), Form::Folded, 2),
            (
                ModelConfig {
                    feature_channels: 6,
                    merge_hf: true,
                    residual: true,
                    ..ModelConfig::official(3)
                },
                Form::Training,
                3,
            ),
            (
                ModelConfig {
                    feature_channels: 12,
                    merge_hf: true,
                    hf_extraction: HfExtraction::AvgPool,
                    ..ModelConfig::official(3)
                },
                Form::Folded,
                3,
            ),
        ];
        for (seed, (config, form, factor)) in cases.into_iter().enumerate() {
            let weights = perturbed_weights(&config, form, seed as u64);
            let wide = weights.widened(factor, 7).unwrap();
            assert_eq!(wide.config.feature_channels, factor * config.feature_channels);
            assert_eq!(wide.form, form);
            let x = Tensor::<4>::random([1, 3, 10, 14], Distribution::Uniform(0.0, 1.0), &device);
            let want = host(Rt4ksr::from_weights(&weights, &device).forward(x.clone()));
            let got = host(Rt4ksr::from_weights(&wide, &device).forward(x.clone()));
            let worst = got.max_abs_diff(&want);
            assert!(worst < 1e-5, "{} {form:?} x{factor}: {worst:e}", config.summary());
            // A widened training form folds to the same function too.
            if form == Form::Training {
                let folded = host(Rt4ksr::from_weights(&wide.folded(true).unwrap(), &device).forward(x));
                let worst = folded.max_abs_diff(&want);
                assert!(worst < 1e-5, "{} folded x{factor}: {worst:e}", config.summary());
            }
        }
    }

    /// Copies of an input channel share its weight: each share positive, together the weight,
    /// and not all equal (else the copies would never grow apart). Outputs are repeated.
    #[test]
    fn copies_split_each_weight_and_repeat_each_output() {
        let config = ModelConfig::official(4);
        let narrow = perturbed_weights(&config, Form::Folded, 3);
        let wide = narrow.widened(2, 11).unwrap();
        let (w, n) = (&wide.tensors["upsample.0.weight"], &narrow.tensors["upsample.0.weight"]);
        assert_eq!(w.shape, [192, 48, 3, 3]);
        let mut unequal = 0;
        for o in 0..192 {
            for i in 0..24 {
                for tap in 0..9 {
                    let original = n.data[(o * 24 + i) * 9 + tap];
                    let (a, b) = (w.data[(o * 48 + i) * 9 + tap], w.data[(o * 48 + 24 + i) * 9 + tap]);
                    assert!(
                        (a + b - original).abs() <= 1e-6 * original.abs(),
                        "{a} + {b} vs {original}"
                    );
                    assert!(a * original >= 0.0 && b * original >= 0.0);
                    assert!(a.abs() >= original.abs() / 4.0 && b.abs() >= original.abs() / 4.0);
                    unequal += usize::from((a - b).abs() > 1e-3 * original.abs());
                }
            }
        }
        assert!(unequal > 192 * 24 * 9 * 9 / 10, "{unequal}");
        let (hw, hn) = (&wide.tensors["head.0.weight"], &narrow.tensors["head.0.weight"]);
        assert_eq!(hw.data[..hn.numel()], hn.data[..]);
        assert_eq!(hw.data[hn.numel()..], hn.data[..]);
        assert_eq!(
            wide.tensors["body.2.norm.bias"].data[24..],
            narrow.tensors["body.2.norm.bias"].data[..]
        );
        // The same seed gives the same model; another seed other shares.
        assert_eq!(narrow.widened(2, 11).unwrap().tensors, wide.tensors);
        assert_ne!(narrow.widened(2, 12).unwrap().tensors, wide.tensors);
    }

    #[test]
    fn a_factor_under_two_and_channel_attention_are_refused() {
        let weights = perturbed_weights(&ModelConfig::official(2), Form::Folded, 1);
        assert!(matches!(weights.widened(1, 0), Err(ModelError::WidenFactor(1))));
        assert!(matches!(weights.widened(0, 0), Err(ModelError::WidenFactor(0))));
        let eca = ModelConfig {
            eca: true,
            ..ModelConfig::official(2)
        };
        let message = perturbed_weights(&eca, Form::Training, 1)
            .widened(2, 0)
            .unwrap_err()
            .to_string();
        assert!(message.contains("eca") && message.contains("attention"), "{message}");
        let weights = perturbed_weights(
            &ModelConfig {
                feature_channels: 6,
                ..ModelConfig::official(2)
            },
            Form::Folded,
            1,
        );
        assert!(matches!(weights.widened(1000, 0), Err(ModelError::Config(_))));
    }
}
