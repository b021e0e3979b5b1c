//! The network conjugated by transposition: weights `T(w)` such that the model with `T(w)` on a
//! transposed image gives the transpose of the model with `w` on the image, exactly.
//!
//! Why: training with all eight flips and rotations does not make this network symmetric. A
//! trained model can be measurably better on thin vertical lines than on horizontal ones (or the
//! reverse); screens and text are made of horizontal ones. The transposed model keeps every
//! figure of the original on images turned by 90 degrees and moves its strong orientation
//! where such content needs it.
//!
//! Every spatial kernel is transposed. The layers that see sub-pixels as channels follow: the
//! head reads PixelUnshuffle(2)'s channels `c*4 + dy*2 + dx`, the upsample conv writes
//! PixelShuffle(2s)'s `c*(2s)^2 + dy*2s + dx`, and transposing swaps `dy` and `dx` in each.
//! LayerNorm, channel attention and the 1x1 convs act on channels alone; the high-frequency
//! extraction (Gaussian blur or 2x2 average) is itself symmetric.

use super::config::{IMAGE_CHANNELS, ModelConfig};
use crate::host_tensor::{HostTensor, TensorMap};

/// `tensors` (either form) of a model of `config`, conjugated by transposition.
pub fn transpose(config: &ModelConfig, tensors: &TensorMap) -> TensorMap {
    let mut out: TensorMap = tensors
        .iter()
        .map(|(name, t)| (name.clone(), transpose_kernels(t)))
        .collect();
    if let Some(head) = out.get_mut("head.0.weight") {
        *head = permute_axis(head, 1, &sub_pixel_transpose(2));
    }
    let upsample = sub_pixel_transpose(2 * config.scale);
    for name in ["upsample.0.weight", "upsample.0.bias"] {
        if let Some(t) = out.get_mut(name) {
            *t = permute_axis(t, 0, &upsample);
        }
    }
    out
}

/// For the channels of a pixel (un)shuffle by `r`, `c*r^2 + dy*r + dx`, the channel holding the
/// sub-pixel of the transposed block: `c*r^2 + dx*r + dy`.
fn sub_pixel_transpose(r: usize) -> Vec<usize> {
    (0..IMAGE_CHANNELS * r * r)
        .map(|i| {
            let (c, dy, dx) = (i / (r * r), i / r % r, i % r);
            c * r * r + dx * r + dy
        })
        .collect()
}

/// A conv weight `[O, I, k, k]` with each kernel transposed; other tensors as they are.
fn transpose_kernels(t: &HostTensor) -> HostTensor {
    if t.shape.len() != 4 || t.shape[2] != t.shape[3] {
        return t.clone();
    }
    let k = t.shape[2];
    let mut data = t.data.clone();
    for (kernel, source) in data.chunks_exact_mut(k * k).zip(t.data.chunks_exact(k * k)) {
        for y in 0..k {
            for x in 0..k {
                kernel[y * k + x] = source[x * k + y];
            }
        }
    }
    HostTensor::new(t.shape.clone(), data)
}

/// `t` with its index along `axis` replaced: entry `i` takes the old entry `order[i]`.
fn permute_axis(t: &HostTensor, axis: usize, order: &[usize]) -> HostTensor {
    assert_eq!(t.shape[axis], order.len(), "permutation of axis {axis}");
    let inner: usize = t.shape[axis + 1..].iter().product();
    let outer: usize = t.shape[..axis].iter().product();
    let n = order.len();
    let mut data = Vec::with_capacity(t.numel());
    for o in 0..outer {
        for &from in order {
            let start = (o * n + from) * inner;
            data.extend_from_slice(&t.data[start..start + inner]);
        }
    }
    HostTensor::new(t.shape.clone(), data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::{Form, HfExtraction};
    use crate::model::init::perturbed_weights;
    use crate::model::network::{Rt4ksr, host};
    use crate::model::weights::ModelWeights;
    use burn::tensor::{Device, Distribution, Tensor};

    /// The transposed model on the transposed input gives the transposed output, for each
    /// layer the configurations can hold: both forms, the HF branch merged in, channel
    /// attention, residuals, both HF extractions, every scale.
    #[test]
    fn the_transposed_model_on_a_transposed_image_gives_the_transposed_output() {
        let device = Device::flex();
        let cases = [
            (ModelConfig::official(3), Form::Folded),
            (ModelConfig::official(2), Form::Training),
            (
                ModelConfig {
                    scale: 4,
                    merge_hf: true,
                    eca: true,
                    residual: true,
                    ..ModelConfig::official(4)
                },
                Form::Training,
            ),
            (
                ModelConfig {
                    merge_hf: true,
                    hf_extraction: HfExtraction::AvgPool,
                    ..ModelConfig::official(3)
                },
                Form::Folded,
            ),
        ];
        for (seed, (config, form)) in cases.into_iter().enumerate() {
            let weights = perturbed_weights(&config, form, seed as u64);
            let transposed = weights.transposed();
            let x = Tensor::<4>::random([1, 3, 10, 14], Distribution::Uniform(0.0, 1.0), &device);
            let want = host(
                Rt4ksr::from_weights(&weights, &device)
                    .forward(x.clone())
                    .swap_dims(2, 3),
            );
            let got = host(Rt4ksr::from_weights(&transposed, &device).forward(x.swap_dims(2, 3)));
            assert_eq!(got.shape, want.shape, "{config:?}");
            let worst = got.max_abs_diff(&want);
            assert!(worst < 1e-5, "{} {form:?}: {worst:e}", config.summary());
            // Transposing twice gives the model back, bit for bit.
            let back: ModelWeights = transposed.transposed();
            assert_eq!(back.tensors, weights.tensors);
        }
    }

    #[test]
    fn the_shuffle_permutation_swaps_rows_and_columns_of_each_block() {
        let p = sub_pixel_transpose(3);
        // Colour 1, row 0, column 2 (1*9 + 0*3 + 2 = 11) is colour 1, row 2, column 0 (15).
        assert_eq!(p[11], 15);
        assert_eq!(p[15], 11);
        assert!(p.iter().enumerate().all(|(i, &j)| p[j] == i));
    }
}
