//! Exact reparameterization: each training-form residual block becomes one 3x3 convolution.
//!
//! The training block computes, for input x (C channels) and zero padding at the border,
//!   t = W1 x + b1                         (1x1 expand, C -> E)
//!   u = conv3x3_valid(pad(t, b1), W2) + b2 + t
//!   y = W3 u + b3 + x                     (1x1 reduce, E -> C)
//! Padding t with b1 is what a 1x1 conv of a zero-padded x gives, so every term is linear in the
//! zero-padded x and the whole block equals one 3x3 conv with
//!   K[o,i,k] = sum_m W3[o,m] sum_n W2[m,n,k] W1[n,i] + [k = centre] (sum_m W3[o,m] W1[m,i] + [o = i])
//!   B[o]     = b3[o] + sum_m W3[o,m] (b2[m] + b1[m] + sum_{n,k} W2[m,n,k] b1[n]).
//! The sums run in f64 so the folded weights are the exact values rounded once to f32.

use super::config::{Form, ModelConfig};
use super::weights::ModelError;
use crate::host_tensor::{HostTensor, TensorMap};

/// The prefixes of every reparameterizable block of a configuration.
pub fn block_prefixes(config: &ModelConfig) -> Vec<String> {
    let mut prefixes = vec!["hfb.0".to_string()];
    prefixes.extend((0..config.num_blocks).map(|i| format!("body.{i}.conv1")));
    prefixes.push("tail.1".to_string());
    prefixes
}

/// Folds one block given its training tensors; returns (weight [C,C,3,3], bias [C]).
pub fn fold_block(
    w1: &HostTensor,
    b1: &HostTensor,
    w2: &HostTensor,
    b2: &HostTensor,
    w3: &HostTensor,
    b3: &HostTensor,
) -> (HostTensor, HostTensor) {
    let (e, c) = (w1.shape[0], w1.shape[1]);
    assert_eq!(w3.shape[..2], [c, e], "fold_block: reduce conv shape");
    assert_eq!(w2.shape, [e, e, 3, 3], "fold_block: 3x3 conv shape");
    let w1 = |n: usize, i: usize| w1.data[n * c + i] as f64;
    let w2 = |m: usize, n: usize, k: usize| w2.data[(m * e + n) * 9 + k] as f64;
    let w3 = |o: usize, m: usize| w3.data[o * e + m] as f64;

    // A[m,i,k] = sum_n W2[m,n,k] W1[n,i]
    let mut a = vec![0f64; e * c * 9];
    for m in 0..e {
        for n in 0..e {
            for k in 0..9 {
                let w = w2(m, n, k);
                for i in 0..c {
                    a[(m * c + i) * 9 + k] += w * w1(n, i);
                }
            }
        }
    }
    let mut weight = vec![0f64; c * c * 9];
    for o in 0..c {
        for m in 0..e {
            let r = w3(o, m);
            for i in 0..c {
                for k in 0..9 {
                    weight[(o * c + i) * 9 + k] += r * a[(m * c + i) * 9 + k];
                }
                weight[(o * c + i) * 9 + 4] += r * w1(m, i);
            }
        }
        weight[(o * c + o) * 9 + 4] += 1.0;
    }
    let mut bias = vec![0f64; c];
    for (o, out) in bias.iter_mut().enumerate() {
        let mut acc = b3.data[o] as f64;
        for m in 0..e {
            let mut inner = b2.data[m] as f64 + b1.data[m] as f64;
            for n in 0..e {
                let b = b1.data[n] as f64;
                for k in 0..9 {
                    inner += w2(m, n, k) * b;
                }
            }
            acc += w3(o, m) * inner;
        }
        *out = acc;
    }
    (
        HostTensor::new(vec![c, c, 3, 3], weight.into_iter().map(|v| v as f32).collect()),
        HostTensor::new(vec![c], bias.into_iter().map(|v| v as f32).collect()),
    )
}

/// Turns a validated training-form tensor map into the folded form. Tensors that are not part
/// of a block are copied. The dead HF branch (merge off) is dropped unless `keep_dead` asks for
/// it (to compare its activations with the reference).
pub fn fold(config: &ModelConfig, training: &TensorMap, keep_dead: bool) -> Result<TensorMap, ModelError> {
    let drop_dead = !config.merge_hf && !keep_dead;
    let get = |name: String| {
        training.get(&name).ok_or_else(|| ModelError::Missing {
            name,
            config: config.summary(),
        })
    };
    let mut folded = TensorMap::new();
    let layout = config.tensor_layout(Form::Folded);
    for spec in &layout {
        if spec.name.contains(".rep_conv.") {
            continue;
        }
        if let Some(t) = training.get(&spec.name)
            && !(spec.optional && drop_dead)
        {
            folded.insert(spec.name.clone(), t.clone());
        }
    }
    for prefix in block_prefixes(config) {
        let present = training.contains_key(&format!("{prefix}.expand_conv.weight"));
        if prefix == "hfb.0" && (drop_dead || !present) {
            continue;
        }
        let (w, b) = fold_block(
            get(format!("{prefix}.expand_conv.weight"))?,
            get(format!("{prefix}.expand_conv.bias"))?,
            get(format!("{prefix}.fea_conv.weight"))?,
            get(format!("{prefix}.fea_conv.bias"))?,
            get(format!("{prefix}.reduce_conv.weight"))?,
            get(format!("{prefix}.reduce_conv.bias"))?,
        );
        folded.insert(format!("{prefix}.rep_conv.weight"), w);
        folded.insert(format!("{prefix}.rep_conv.bias"), b);
    }
    Ok(folded)
}
