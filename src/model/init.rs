//! Seeded random initialisation, as PyTorch initialises the official modules: convolutions
//! uniform in +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5), and the same bound for
//! biases), LayerNorm weight 1 and bias 0, gamma 0.

use super::config::{Form, ModelConfig};
use super::weights::ModelWeights;
use crate::host_tensor::{HostTensor, TensorMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Fresh weights for `config` in `form`, the same for the same seed on every machine.
pub fn random_weights(config: &ModelConfig, form: Form, seed: u64) -> ModelWeights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let layout = config.tensor_layout(form);
    let mut tensors = TensorMap::new();
    for spec in &layout {
        let numel: usize = spec.shape.iter().product();
        let name = spec.name.as_str();
        let data = if name == "gamma" {
            vec![0.0; numel]
        } else if name.ends_with("norm.weight") || name == "tail.0.weight" {
            vec![1.0; numel]
        } else if name.ends_with("norm.bias") || name == "tail.0.bias" {
            vec![0.0; numel]
        } else {
            // A bias takes the fan-in of its weight, which precedes it in the layout.
            let weight_name = name.replace(".bias", ".weight");
            let weight_shape = &layout.iter().find(|s| s.name == weight_name).unwrap_or(spec).shape;
            let fan_in: usize = weight_shape[1..].iter().product();
            let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
            (0..numel).map(|_| rng.random_range(-bound..bound)).collect()
        };
        tensors.insert(spec.name.clone(), HostTensor::new(spec.shape.clone(), data));
    }
    ModelWeights::new(config.clone(), form, tensors, format!("random init, seed {seed}"))
        .expect("the layout of a valid configuration is consistent")
}

/// Weights drawn wider than at initialisation (LayerNorm affine and gamma too), so that tests
/// exercise every term of the network, not just the values an initialiser happens to give.
pub fn perturbed_weights(config: &ModelConfig, form: Form, seed: u64) -> ModelWeights {
    let mut weights = random_weights(config, form, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    for (name, t) in weights.tensors.iter_mut() {
        let spread = if name.contains("norm") || name.starts_with("tail.0") || name == "gamma" {
            0.5
        } else {
            0.05
        };
        for v in t.data.iter_mut() {
            *v += rng.random_range(-spread..spread);
        }
    }
    weights
}
