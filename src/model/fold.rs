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

/// The reverse of [`fold_block`] for one folded block (weight [C,C,3,3], bias [C]): training
/// tensors that fold back to it, with E = `w1.shape[0]` expanded channels. The expand conv
/// passes the input through its first C channels, the 3x3 conv holds the folded kernel less the
/// block's two identities (through t and through x) on those channels, and the reduce conv
/// takes them back; its columns for the other E - C channels are zero, so whatever `w1`, `b1`
/// and `w2` hold there (a fresh initialisation, passed in) leaves the block's output unchanged
/// while its gradient still reaches them through those columns. Returns (w1, b1, w2, b2, w3, b3).
#[allow(clippy::type_complexity)]
pub fn unfold_block(
    weight: &HostTensor,
    bias: &HostTensor,
    fresh: [&HostTensor; 4],
) -> (HostTensor, HostTensor, HostTensor, HostTensor, HostTensor, HostTensor) {
    let [mut w1, mut b1, mut w2, mut b2] = fresh.map(HostTensor::clone);
    let (e, c) = (w1.shape[0], w1.shape[1]);
    assert_eq!(weight.shape, [c, c, 3, 3], "unfold_block: folded weight shape");
    assert_eq!(w2.shape, [e, e, 3, 3], "unfold_block: 3x3 conv shape");
    for n in 0..c {
        for i in 0..c {
            w1.data[n * c + i] = if n == i { 1.0 } else { 0.0 };
        }
        b1.data[n] = 0.0;
        b2.data[n] = 0.0;
        for m in 0..e {
            for k in 0..9 {
                w2.data[(n * e + m) * 9 + k] = if m < c {
                    weight.data[(n * c + m) * 9 + k] - if k == 4 && m == n { 2.0 } else { 0.0 }
                } else {
                    0.0
                };
            }
        }
    }
    // Channels C.. of t enter y only through the reduce conv's zero columns: their bias may stay.
    let w3 = HostTensor::new(
        vec![c, e, 1, 1],
        (0..c * e).map(|i| if i / e == i % e { 1.0 } else { 0.0 }).collect(),
    );
    (w1, b1, w2, b2, w3, bias.clone())
}

/// Training-form tensors for a folded tensor map (see [`unfold_block`]): `fresh` is a training-
/// form map of the same configuration (a seeded initialisation) that gives every tensor the
/// folded form does not determine: the expanded channels beyond C, and the dead HF branch when
/// the folded map has none.
pub fn unfold(config: &ModelConfig, folded: &TensorMap, fresh: &TensorMap) -> Result<TensorMap, ModelError> {
    let mut training = fresh.clone();
    for (name, t) in folded {
        if !name.contains(".rep_conv.") {
            training.insert(name.clone(), t.clone());
        }
    }
    for prefix in block_prefixes(config) {
        let (Some(weight), Some(bias)) = (
            folded.get(&format!("{prefix}.rep_conv.weight")),
            folded.get(&format!("{prefix}.rep_conv.bias")),
        ) else {
            continue;
        };
        let get = |part: &str| {
            let name = format!("{prefix}.{part}");
            fresh.get(&name).ok_or_else(|| ModelError::Missing {
                name,
                config: config.summary(),
            })
        };
        let fresh = [
            get("expand_conv.weight")?,
            get("expand_conv.bias")?,
            get("fea_conv.weight")?,
            get("fea_conv.bias")?,
        ];
        let (w1, b1, w2, b2, w3, b3) = unfold_block(weight, bias, fresh);
        for (part, t) in [
            ("expand_conv.weight", w1),
            ("expand_conv.bias", b1),
            ("fea_conv.weight", w2),
            ("fea_conv.bias", b2),
            ("reduce_conv.weight", w3),
            ("reduce_conv.bias", b3),
        ] {
            training.insert(format!("{prefix}.{part}"), t);
        }
    }
    Ok(training)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::{perturbed_weights, random_weights};

    #[test]
    fn an_unfolded_model_folds_back_to_itself() {
        let config = ModelConfig::official(3);
        let folded = perturbed_weights(&config, Form::Training, 5).folded(false).unwrap();
        let fresh = random_weights(&config, Form::Training, 6);
        let training = unfold(&config, &folded.tensors, &fresh.tensors).unwrap();
        // The expanded channels beyond C keep the fresh values (they will train).
        let w1 = &training["body.0.conv1.expand_conv.weight"];
        let c = config.feature_channels;
        assert_eq!(
            w1.data[c * c..],
            fresh.tensors["body.0.conv1.expand_conv.weight"].data[c * c..]
        );
        let back = fold(&config, &training, false).unwrap();
        assert_eq!(back.len(), folded.tensors.len());
        for (name, t) in &folded.tensors {
            let worst = t
                .data
                .iter()
                .zip(&back[name].data)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            // Only the centre taps round twice (less the identities, then plus them again).
            assert!(worst <= 1e-6, "{name}: {worst:e}");
        }
    }
}
