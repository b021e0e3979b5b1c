//! The model's weights: a configuration with its tensors in one of the two forms, checked
//! against the configuration's layout, and folded from the training form. Reading and writing
//! files is the `weights` module's.

use super::config::{Form, ModelConfig};
use super::fold;
use crate::host_tensor::TensorMap;

/// What can be wrong with a model's tensors. Each message names the tensor and what the
/// configuration expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("tensor `{name}` is missing (the configuration {config} needs it)")]
    Missing { name: String, config: String },
    #[error("tensor `{name}` has shape {found:?}, the configuration {config} needs {expected:?}")]
    Shape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
        config: String,
    },
    #[error("tensor `{name}` is not part of the configuration {config}")]
    Unexpected { name: String, config: String },
    #[error("cannot tell the model configuration from the tensors: {0}")]
    Infer(String),
    #[error("invalid model configuration: {0}")]
    Config(#[from] super::config::ConfigError),
    #[error("models of different configurations cannot be averaged: {0} and {1}")]
    MeanOfDifferent(String, String),
    #[error("a model's share of a mean must lie in 0..=1, not {0}")]
    MeanShare(f32),
    #[error("a model is widened by a factor of 2 or more, not {0}")]
    WidenFactor(usize),
    #[error("{0}: channel attention's kernel follows the number of channels, so it cannot be widened exactly")]
    WidenAttention(String),
}

/// A configuration with its tensors, ready to build a network from.
#[derive(Clone, Debug)]
pub struct ModelWeights {
    pub config: ModelConfig,
    pub form: Form,
    pub tensors: TensorMap,
    /// Where the weights came from (file, training run, folding), free text.
    pub provenance: String,
}

impl ModelWeights {
    /// Builds and checks: every tensor the configuration needs is present with its shape, and
    /// nothing else is.
    pub fn new(
        config: ModelConfig,
        form: Form,
        tensors: TensorMap,
        provenance: impl Into<String>,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        check_layout(&config, form, &tensors)?;
        Ok(Self {
            config,
            form,
            tensors,
            provenance: provenance.into(),
        })
    }

    /// The folded (inference) form; already-folded weights are returned unchanged. The dead
    /// HF branch is dropped unless `keep_dead`.
    pub fn folded(&self, keep_dead: bool) -> Result<Self, ModelError> {
        match self.form {
            Form::Folded => Ok(self.clone()),
            Form::Training => {
                let tensors = fold::fold(&self.config, &self.tensors, keep_dead)?;
                Self::new(
                    self.config.clone(),
                    Form::Folded,
                    tensors,
                    format!("{}; folded by rt4ksr {}", self.provenance, env!("CARGO_PKG_VERSION")),
                )
            }
        }
    }

    /// The training form; training-form weights are returned unchanged. Folded weights are
    /// unfolded exactly ([`fold::unfold`]): the tensors the folded form does not determine
    /// (expanded channels beyond the features, the dead HF branch) are a fresh initialisation
    /// from `seed`, which does not change the network's output.
    pub fn unfolded(&self, seed: u64) -> Result<Self, ModelError> {
        match self.form {
            Form::Training => Ok(self.clone()),
            Form::Folded => {
                let fresh = super::init::random_weights(&self.config, Form::Training, seed);
                let tensors = fold::unfold(&self.config, &self.tensors, &fresh.tensors)?;
                Self::new(
                    self.config.clone(),
                    Form::Training,
                    tensors,
                    format!("{}; unfolded by rt4ksr {}", self.provenance, env!("CARGO_PKG_VERSION")),
                )
            }
        }
    }

    /// The model conjugated by transposition ([`super::transpose`]): on an image turned by 90
    /// degrees it gives what this model gives on the image, turned. Same form and figures.
    pub fn transposed(&self) -> Self {
        Self {
            config: self.config.clone(),
            form: self.form,
            tensors: super::transpose::transpose(&self.config, &self.tensors),
            provenance: format!(
                "{}; transposed by rt4ksr {}",
                self.provenance,
                env!("CARGO_PKG_VERSION")
            ),
        }
    }

    /// The element-wise weighted mean of two models' folded weights, `other`'s with weight
    /// `share` (in 0..=1) and this one's with `1 - share` (a "model soup": fine-tunes of one
    /// starting point, averaged, often keep most of what each gained). Both must have the same
    /// configuration.
    pub fn mean(&self, other: &Self, share: f32) -> Result<Self, ModelError> {
        if !(0.0..=1.0).contains(&share) {
            return Err(ModelError::MeanShare(share));
        }
        if self.config != other.config {
            return Err(ModelError::MeanOfDifferent(
                self.config.summary(),
                other.config.summary(),
            ));
        }
        let (a, b) = (self.folded(false)?, other.folded(false)?);
        let tensors = a
            .tensors
            .iter()
            .map(|(name, t)| {
                let data = t
                    .data
                    .iter()
                    .zip(&b.tensors[name].data)
                    .map(|(x, y)| (1.0 - share) * x + share * y)
                    .collect();
                let mean = crate::host_tensor::HostTensor {
                    shape: t.shape.clone(),
                    data,
                };
                (name.clone(), mean)
            })
            .collect();
        let provenance = if share == 0.5 {
            format!("mean of [{}] and [{}]", a.provenance, b.provenance)
        } else {
            format!(
                "mean of [{}] ({}) and [{}] ({share})",
                a.provenance,
                1.0 - share,
                b.provenance
            )
        };
        Self::new(self.config.clone(), Form::Folded, tensors, provenance)
    }

    /// The model with `factor` times the feature channels, computing what this one does
    /// ([`super::widen`]: each channel copied, each weight that reads copies split among them in
    /// shares drawn from `seed`). Same form.
    pub fn widened(&self, factor: usize, seed: u64) -> Result<Self, ModelError> {
        let (config, tensors) = super::widen::widen(&self.config, self.form, &self.tensors, factor, seed)?;
        let provenance = format!(
            "{}; widened {factor}x (seed {seed}) by rt4ksr {}",
            self.provenance,
            env!("CARGO_PKG_VERSION")
        );
        Self::new(config, self.form, tensors, provenance)
    }

    pub fn parameter_count(&self) -> usize {
        self.tensors.values().map(|t| t.numel()).sum()
    }
}

/// Checks that `tensors` is exactly the layout of `config` in `form`.
pub fn check_layout(config: &ModelConfig, form: Form, tensors: &TensorMap) -> Result<(), ModelError> {
    let layout = config.tensor_layout(form);
    for spec in &layout {
        match tensors.get(&spec.name) {
            None if spec.optional => {}
            None => {
                return Err(ModelError::Missing {
                    name: spec.name.clone(),
                    config: format!("{} ({form} form)", config.summary()),
                });
            }
            Some(t) if t.shape != spec.shape => {
                return Err(ModelError::Shape {
                    name: spec.name.clone(),
                    found: t.shape.clone(),
                    expected: spec.shape.clone(),
                    config: format!("{} ({form} form)", config.summary()),
                });
            }
            Some(_) => {}
        }
    }
    if let Some(name) = tensors.keys().find(|n| !layout.iter().any(|s| &s.name == *n)) {
        return Err(ModelError::Unexpected {
            name: name.clone(),
            config: format!("{} ({form} form)", config.summary()),
        });
    }
    Ok(())
}

/// Tells the configuration from tensor names and shapes, for files that do not carry it (the
/// authors' checkpoints, plain safetensors). What the tensors cannot show (activation, block
/// residual, HF extraction, merge) takes the official value.
pub fn infer_config(tensors: &TensorMap) -> Result<(ModelConfig, Form), ModelError> {
    let shape = |name: &str| tensors.get(name).map(|t| t.shape.as_slice());
    let form = if tensors.contains_key("tail.1.rep_conv.weight") {
        Form::Folded
    } else if tensors.contains_key("tail.1.expand_conv.weight") {
        Form::Training
    } else {
        return Err(ModelError::Infer(
            "no `tail.1.rep_conv.weight` nor `tail.1.expand_conv.weight`: not an RT4KSR state dict".into(),
        ));
    };
    let head = shape("head.0.weight").ok_or_else(|| ModelError::Infer("no `head.0.weight` tensor".into()))?;
    let upsample =
        shape("upsample.0.weight").ok_or_else(|| ModelError::Infer("no `upsample.0.weight` tensor".into()))?;
    let feature_channels = head[0];
    let scale = (2..=4).find(|s| 3 * (2 * s) * (2 * s) == upsample[0]).ok_or_else(|| {
        ModelError::Infer(format!(
            "`upsample.0.weight` has {} output channels, not 3*(2s)^2 for s = 2, 3 or 4",
            upsample[0]
        ))
    })?;
    let num_blocks = (0..)
        .take_while(|i| tensors.keys().any(|k| k.starts_with(&format!("body.{i}."))))
        .count();
    let mut config = ModelConfig::official(scale);
    config.feature_channels = feature_channels;
    config.num_blocks = num_blocks;
    config.layernorm = tensors.contains_key("body.0.norm.weight");
    config.eca = tensors.contains_key("body.0.ca.conv.weight");
    Ok((config, form))
}

/// Removes a common prefix such as DataParallel's `module.` from every name.
pub fn strip_prefix(tensors: TensorMap, prefix: &str) -> TensorMap {
    tensors
        .into_iter()
        .map(|(k, v)| (k.strip_prefix(prefix).map(str::to_owned).unwrap_or(k), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_tensor::HostTensor;

    #[test]
    fn the_mean_of_two_models_is_the_mean_of_their_folded_weights() {
        use crate::model::init::perturbed_weights;
        let config = ModelConfig::official(3);
        let (a, b) = (
            perturbed_weights(&config, Form::Training, 1),
            perturbed_weights(&config, Form::Folded, 2),
        );
        let mean = a.mean(&b, 0.5).unwrap();
        assert_eq!(mean.form, Form::Folded);
        let folded = a.folded(false).unwrap();
        let quarter = a.mean(&b, 0.25).unwrap();
        for (name, t) in &mean.tensors {
            let (x, y) = (&folded.tensors[name].data, &b.tensors[name].data);
            for (i, m) in t.data.iter().enumerate() {
                // An equal mean is exactly the halved sum (the embedded x3 model was made so).
                assert_eq!(*m, (x[i] + y[i]) / 2.0, "{name}");
                let q = quarter.tensors[name].data[i];
                assert!(
                    (q - (0.75 * x[i] + 0.25 * y[i])).abs() <= 1e-6 * (x[i].abs() + y[i].abs()),
                    "{name}"
                );
            }
        }
        assert_ne!(mean.tensors, b.tensors);
        assert_ne!(quarter.tensors, mean.tensors);
        let other = perturbed_weights(&ModelConfig::official(2), Form::Folded, 1);
        assert!(matches!(a.mean(&other, 0.5), Err(ModelError::MeanOfDifferent(..))));
        assert!(matches!(a.mean(&b, 1.5), Err(ModelError::MeanShare(..))));
    }

    fn zeros_for(config: &ModelConfig, form: Form) -> TensorMap {
        config
            .tensor_layout(form)
            .into_iter()
            .map(|s| (s.name, HostTensor::zeros(s.shape)))
            .collect()
    }

    #[test]
    fn inference_recovers_configurations_from_shapes() {
        for scale in [2, 3, 4] {
            for form in [Form::Training, Form::Folded] {
                let mut config = ModelConfig::official(scale);
                config.feature_channels = 16;
                config.num_blocks = 3;
                config.eca = scale == 3;
                let (found, found_form) = infer_config(&zeros_for(&config, form)).unwrap();
                assert_eq!(found, config);
                assert_eq!(found_form, form);
            }
        }
    }

    #[test]
    fn a_wrong_shape_is_named_with_both_shapes() {
        let config = ModelConfig::official(2);
        let mut tensors = zeros_for(&config, Form::Folded);
        tensors.insert(
            "body.1.conv1.rep_conv.weight".into(),
            HostTensor::zeros(vec![24, 24, 1, 1]),
        );
        let message = ModelWeights::new(config, Form::Folded, tensors, "test")
            .unwrap_err()
            .to_string();
        assert!(message.contains("body.1.conv1.rep_conv.weight"), "{message}");
        assert!(
            message.contains("[24, 24, 1, 1]") && message.contains("[24, 24, 3, 3]"),
            "{message}"
        );
    }

    #[test]
    fn missing_and_unexpected_tensors_are_named() {
        let config = ModelConfig::official(3);
        let mut tensors = zeros_for(&config, Form::Training);
        tensors.remove("tail.0.bias");
        let message = check_layout(&config, Form::Training, &tensors).unwrap_err().to_string();
        assert!(message.contains("`tail.0.bias` is missing"), "{message}");
        let mut tensors = zeros_for(&config, Form::Training);
        tensors.insert("body.9.norm.weight".into(), HostTensor::zeros(vec![24]));
        let message = check_layout(&config, Form::Training, &tensors).unwrap_err().to_string();
        assert!(message.contains("body.9.norm.weight"), "{message}");
    }

    #[test]
    fn the_dead_branch_is_optional_only_while_the_merge_is_off() {
        let mut config = ModelConfig::official(2);
        let mut tensors = zeros_for(&config, Form::Folded);
        tensors.retain(|k, _| !k.starts_with("hfb.") && k != "gamma");
        check_layout(&config, Form::Folded, &tensors).unwrap();
        config.merge_hf = true;
        assert!(check_layout(&config, Form::Folded, &tensors).is_err());
    }
}
