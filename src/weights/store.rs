//! Safetensors files. The project's own weight file is a safetensors file (so any safetensors
//! tool can open it) whose header metadata holds the configuration, the form and the
//! provenance. Plain safetensors files without that metadata are read too, their configuration
//! told from the tensor shapes.

use super::{FormatError, ModelWeights, WeightError, infer_config, strip_prefix};
use crate::fsutil;
use crate::host_tensor::{HostTensor, TensorMap};
use crate::model::config::{Form, ModelConfig};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::path::Path;

const FORMAT_KEY: &str = "format";
const FORMAT_VALUE: &str = "rt4ksr-weights-v1";
const CHECKPOINT_FORMAT: &str = "rt4ksr-checkpoint-v1";
const CONFIG_KEY: &str = "rt4ksr.config";
const FORM_KEY: &str = "rt4ksr.form";
const PROVENANCE_KEY: &str = "rt4ksr.provenance";

/// Reads the tensors of a safetensors file as f32 (f16/bf16/f64 are converted).
pub fn read_tensors(bytes: &[u8], path: &Path) -> Result<(TensorMap, HashMap<String, String>), WeightError> {
    tensors_of(bytes).map_err(|error| WeightError::Format {
        path: path.to_owned(),
        error: Box::new(error),
    })
}

/// [`read_tensors`] without the file name.
pub(super) fn tensors_of(bytes: &[u8]) -> Result<(TensorMap, HashMap<String, String>), FormatError> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(FormatError::NotSafetensors)?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let file = SafeTensors::deserialize(bytes).map_err(FormatError::InvalidSafetensors)?;
    Ok((float_tensors(&file, |_| false)?, metadata))
}

/// The tensors of a parsed file as f32, but those whose name `skip` picks (a checkpoint's
/// optimizer bytes).
pub(super) fn float_tensors(file: &SafeTensors<'_>, skip: impl Fn(&str) -> bool) -> Result<TensorMap, FormatError> {
    let mut tensors = TensorMap::new();
    for (name, view) in file.tensors() {
        if skip(&name) {
            continue;
        }
        let Some(data) = to_f32(&view) else {
            return Err(FormatError::NotFloat {
                tensor: name,
                dtype: view.dtype(),
            });
        };
        tensors.insert(name, HostTensor::new(view.shape().to_vec(), data));
    }
    Ok(tensors)
}

/// The tensor's elements as f32, or `None` when it is not a float tensor.
fn to_f32(view: &TensorView<'_>) -> Option<Vec<f32>> {
    let raw = view.data();
    let chunks = |n: usize| raw.chunks_exact(n);
    Some(match view.dtype() {
        Dtype::F32 => chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
        Dtype::F64 => chunks(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
            .collect(),
        Dtype::F16 => chunks(2)
            .map(|b| half::f16::from_le_bytes(b.try_into().unwrap()).to_f32())
            .collect(),
        Dtype::BF16 => chunks(2)
            .map(|b| half::bf16::from_le_bytes(b.try_into().unwrap()).to_f32())
            .collect(),
        _ => return None,
    })
}

/// Reads a weight file in safetensors form: the project's own, or a plain state dict.
pub fn read(bytes: &[u8], path: &Path) -> Result<ModelWeights, WeightError> {
    let fail = |key: &'static str| {
        move |error| WeightError::Format {
            path: path.to_owned(),
            error: Box::new(FormatError::Metadata { key, error }),
        }
    };
    if let Ok((_, header)) = SafeTensors::read_metadata(bytes)
        && header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(FORMAT_KEY))
            .map(String::as_str)
            == Some(CHECKPOINT_FORMAT)
    {
        return super::checkpoint::Checkpoint::from_bytes(bytes, path)?.model_weights();
    }
    let (tensors, metadata) = read_tensors(bytes, path)?;
    if metadata.get(FORMAT_KEY).map(String::as_str) == Some(FORMAT_VALUE) {
        let config: ModelConfig =
            serde_json::from_str(metadata.get(CONFIG_KEY).map_or("", |s| s)).map_err(fail(CONFIG_KEY))?;
        let form: Form = serde_json::from_value(serde_json::Value::String(
            metadata.get(FORM_KEY).cloned().unwrap_or_default(),
        ))
        .map_err(fail(FORM_KEY))?;
        let provenance = metadata.get(PROVENANCE_KEY).cloned().unwrap_or_default();
        return Ok(ModelWeights::new(config, form, tensors, provenance)?);
    }
    let prefixed = !tensors.is_empty() && tensors.keys().all(|k| k.starts_with("module."));
    let tensors = if prefixed {
        strip_prefix(tensors, "module.")
    } else {
        tensors
    };
    let (config, form) = infer_config(&tensors)?;
    Ok(ModelWeights::new(
        config,
        form,
        tensors,
        format!("safetensors {}", path.display()),
    )?)
}

/// Serializes weights with their configuration metadata.
pub fn to_bytes(weights: &ModelWeights) -> Vec<u8> {
    let metadata = HashMap::from([
        (FORMAT_KEY.to_owned(), FORMAT_VALUE.to_owned()),
        (
            CONFIG_KEY.to_owned(),
            serde_json::to_string(&weights.config).expect("config serializes"),
        ),
        (FORM_KEY.to_owned(), weights.form.to_string()),
        (PROVENANCE_KEY.to_owned(), weights.provenance.clone()),
    ]);
    plain_bytes(&weights.tensors, Some(metadata))
}

/// Serializes a tensor map as f32 safetensors.
pub fn plain_bytes(tensors: &TensorMap, metadata: Option<HashMap<String, String>>) -> Vec<u8> {
    let raw: Vec<(&String, Vec<u8>, &Vec<usize>)> = tensors
        .iter()
        .map(|(name, t)| (name, t.data.iter().flat_map(|v| v.to_le_bytes()).collect(), &t.shape))
        .collect();
    let views = raw.iter().map(|(name, bytes, shape)| {
        let view = TensorView::new(Dtype::F32, shape.to_vec(), bytes).expect("sizes agree");
        (name.as_str(), view)
    });
    safetensors::serialize(views, metadata).expect("f32 tensors serialize")
}

/// Writes the project's own format atomically.
pub fn write(weights: &ModelWeights, path: &Path) -> Result<(), WeightError> {
    fsutil::write_atomic(path, &to_bytes(weights)).map_err(|error| WeightError::Io {
        path: path.to_owned(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_weights(config: &ModelConfig, form: Form) -> ModelWeights {
        let mut seed = 7u32;
        let tensors = config
            .tensor_layout(form)
            .into_iter()
            .map(|s| {
                let n = s.shape.iter().product();
                let data = (0..n)
                    .map(|_| {
                        seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                        (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
                    })
                    .collect();
                (s.name, HostTensor::new(s.shape, data))
            })
            .collect();
        ModelWeights::new(config.clone(), form, tensors, "random").unwrap()
    }

    #[test]
    fn own_format_round_trips_configuration_form_and_tensors() {
        let mut config = ModelConfig::official(3);
        config.activation = crate::model::config::Activation::Lrelu;
        config.residual = true;
        config.merge_hf = true;
        let weights = random_weights(&config, Form::Training);
        let back = read(&to_bytes(&weights), Path::new("mem")).unwrap();
        assert_eq!(back.config, config);
        assert_eq!(back.form, Form::Training);
        assert_eq!(back.tensors, weights.tensors);
        assert_eq!(back.provenance, "random");
    }

    #[test]
    fn plain_safetensors_get_their_configuration_from_shapes() {
        let weights = random_weights(&ModelConfig::official(4), Form::Folded);
        let prefixed: TensorMap = weights
            .tensors
            .iter()
            .map(|(k, v)| (format!("module.{k}"), v.clone()))
            .collect();
        let back = read(&plain_bytes(&prefixed, None), Path::new("mem")).unwrap();
        assert_eq!(back.config, ModelConfig::official(4));
        assert_eq!(back.form, Form::Folded);
        assert_eq!(back.tensors, weights.tensors);
    }

    #[test]
    fn truncated_files_are_named_errors() {
        let bytes = to_bytes(&random_weights(&ModelConfig::official(2), Form::Folded));
        for cut in [0, 7, 8, 100, bytes.len() - 1] {
            let err = read(&bytes[..cut], Path::new("cut.safetensors"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("cut.safetensors:"), "{err}");
        }
    }

    #[test]
    fn half_precision_tensors_are_converted_exactly() {
        let values = [1.0f32, -2.0, 2f32.powi(-24), 65504.0, 0.333_251_95];
        for (dtype, bytes) in [
            (
                Dtype::F16,
                values
                    .iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                    .collect::<Vec<u8>>(),
            ),
            (
                Dtype::BF16,
                values
                    .iter()
                    .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                    .collect(),
            ),
        ] {
            let view = TensorView::new(dtype, vec![values.len()], &bytes).unwrap();
            let file = safetensors::serialize([("t", view)], None).unwrap();
            let (tensors, _) = read_tensors(&file, Path::new("mem")).unwrap();
            let want: Vec<f32> = match dtype {
                Dtype::F16 => values.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect(),
                _ => values.iter().map(|&v| half::bf16::from_f32(v).to_f32()).collect(),
            };
            assert_eq!(tensors["t"].data, want, "{dtype:?}");
        }
        assert_eq!(half::f16::from_bits(0x0001).to_f32(), 2f32.powi(-24));
    }
}
