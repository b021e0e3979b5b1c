//! Resumable training checkpoints: one safetensors file with the training-form weights, the EMA
//! weights, the optimizer state (as a byte tensor) and, in the metadata, the step, the best
//! validation score, the model's configuration and the run's training configuration. Batches
//! are a function of (seed, step), so the step is all the random state there is. Written
//! atomically: a killed run leaves the previous checkpoint.

use super::store::float_tensors;
use super::{CheckpointError, FormatError, WeightError};
use crate::fsutil;
use crate::host_tensor::TensorMap;
use crate::model::{Form, ModelConfig, ModelWeights};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Steps completed.
    pub step: u64,
    pub weights: TensorMap,
    pub ema: Option<TensorMap>,
    pub optimizer: Vec<u8>,
    pub best_psnr: Option<f64>,
    pub best_step: u64,
    /// The model the weights are for, stored on its own (metadata `model`, JSON), so that
    /// reading a checkpoint never depends on the training options of the code that wrote it.
    pub model: ModelConfig,
    /// The run's training configuration, TOML, kept as text for `--resume` and provenance.
    pub config: String,
}

const OPTIMIZER_TENSOR: &str = "optimizer_state";

impl Checkpoint {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut raw: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        let mut add = |prefix: &str, map: &TensorMap| {
            for (name, t) in map {
                let bytes = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                raw.push((format!("{prefix}{name}"), Dtype::F32, t.shape.clone(), bytes));
            }
        };
        add("model.", &self.weights);
        if let Some(ema) = &self.ema {
            add("ema.", ema);
        }
        raw.push((
            OPTIMIZER_TENSOR.into(),
            Dtype::U8,
            vec![self.optimizer.len()],
            self.optimizer.clone(),
        ));
        let mut meta = HashMap::from([
            ("format".to_string(), "rt4ksr-checkpoint-v1".to_string()),
            ("step".to_string(), self.step.to_string()),
            ("best_step".to_string(), self.best_step.to_string()),
            ("config".to_string(), self.config.clone()),
            (
                "model".to_string(),
                serde_json::to_string(&self.model).expect("config serializes"),
            ),
        ]);
        if let Some(p) = self.best_psnr {
            meta.insert("best_psnr".into(), format!("{p:?}"));
        }
        let views = raw
            .iter()
            .map(|(n, d, s, b)| (n.as_str(), TensorView::new(*d, s.clone(), b).expect("sizes")));
        safetensors::serialize(views, Some(meta)).expect("checkpoint serializes")
    }

    /// The weights a checkpoint stands for as a model: the EMA when the run keeps one.
    pub fn model_weights(&self) -> Result<ModelWeights, WeightError> {
        let tensors = self.ema.clone().unwrap_or_else(|| self.weights.clone());
        // Step count and seed for the provenance, read leniently from the training TOML.
        let run: Option<toml::Table> = self.config.parse().ok();
        let field = |key: &str| {
            run.as_ref()
                .and_then(|t| t.get(key))
                .map_or_else(|| "?".to_owned(), ToString::to_string)
        };
        let provenance = format!(
            "rt4ksr training checkpoint, step {} of {}, seed {}{}",
            self.step,
            field("steps"),
            field("seed"),
            if self.ema.is_some() { ", EMA weights" } else { "" }
        );
        Ok(ModelWeights::new(
            self.model.clone(),
            Form::Training,
            tensors,
            provenance,
        )?)
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        fsutil::write_atomic(path, &self.to_bytes())
    }

    pub fn load(path: &Path) -> Result<Self, WeightError> {
        Self::from_bytes(&super::read_file(path)?, path)
    }

    /// Parses a checkpoint held in memory; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, WeightError> {
        Self::parse(bytes).map_err(|error| WeightError::Format {
            path: path.to_owned(),
            error: Box::new(FormatError::Checkpoint(error)),
        })
    }

    fn parse(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let file = SafeTensors::deserialize(bytes).map_err(CheckpointError::Container)?;
        let optimizer = file
            .tensor(OPTIMIZER_TENSOR)
            .map_err(|_| CheckpointError::NoOptimizer)?
            .data()
            .to_vec();
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(CheckpointError::Container)?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some("rt4ksr-checkpoint-v1") {
            return Err(CheckpointError::WrongTag);
        }
        // The float tensors; the optimizer bytes are not one of them.
        let all =
            float_tensors(&file, |name| name == OPTIMIZER_TENSOR).map_err(|e| CheckpointError::Tensors(Box::new(e)))?;
        let split = |prefix: &str| -> TensorMap {
            all.iter()
                .filter_map(|(k, v)| k.strip_prefix(prefix).map(|n| (n.to_owned(), v.clone())))
                .collect()
        };
        let ema = split("ema.");
        let number = |key: &'static str| {
            meta.get(key)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(CheckpointError::Number(key))
        };
        let config = meta.get("config").cloned().unwrap_or_default();
        let model = match meta.get("model") {
            Some(json) => serde_json::from_str(json).map_err(CheckpointError::Model)?,
            None => model_of_training_toml(&config)?,
        };
        Ok(Self {
            step: number("step")?,
            weights: split("model."),
            ema: (!ema.is_empty()).then_some(ema),
            optimizer,
            best_psnr: meta.get("best_psnr").and_then(|v| v.parse().ok()),
            best_step: number("best_step")?,
            model,
            config,
        })
    }
}

/// The same safetensors file without one tensor (re-serialized).
/// The `[model]` table of a training configuration, alone: checkpoints written before the
/// model was stored on its own carry only the run's TOML, whose other options may since have
/// been renamed or removed.
fn model_of_training_toml(text: &str) -> Result<ModelConfig, CheckpointError> {
    let table: toml::Table = text.parse().map_err(CheckpointError::TrainingToml)?;
    let model = table.get("model").cloned().ok_or(CheckpointError::NoModelTable)?;
    model.try_into().map_err(CheckpointError::ModelTable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_tensor::HostTensor;

    #[test]
    fn round_trip_is_exact() {
        let mut weights = TensorMap::new();
        weights.insert("head.0.bias".into(), HostTensor::new(vec![3], vec![0.1, -2.5, 1e-30]));
        let ckpt = Checkpoint {
            step: 1234,
            weights: weights.clone(),
            ema: Some(weights),
            optimizer: vec![1, 2, 3, 255],
            best_psnr: Some(31.234567890123),
            best_step: 1000,
            model: ModelConfig::official(3),
            config: "steps = 5".into(),
        };
        let dir = std::env::temp_dir().join(format!("rt4ksr-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.safetensors");
        ckpt.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), ckpt);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A checkpoint written by the code before the model was stored on its own (session 13's
    /// main, `tests/fixtures/checkpoint-v1.safetensors`: F=6, N=1, x2, two steps) reads, and
    /// so does one whose training options were renamed or removed since.
    #[test]
    fn older_checkpoints_read_whatever_became_of_the_training_options() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/checkpoint-v1.safetensors"
        ));
        let old = Checkpoint::load(path).unwrap();
        assert_eq!((old.step, old.model.feature_channels, old.model.num_blocks), (2, 6, 1));
        let weights = old.model_weights().unwrap();
        assert!(weights.provenance.contains("step 2 of 2"), "{}", weights.provenance);
        let mut changed = old.clone();
        changed.config = changed
            .config
            .replace("batch_size = 2", "batch_size_renamed = 2")
            .replace("steps = 2\n", "");
        assert!(!changed.config.contains("\nsteps ="));
        let mut bytes = changed.to_bytes();
        // As the old code wrote it: no `model` metadata.
        bytes = strip_model_metadata(&bytes);
        let back = Checkpoint::from_bytes(&bytes, path).unwrap();
        assert_eq!(back.model, old.model);
        back.model_weights().unwrap();
    }

    fn strip_model_metadata(bytes: &[u8]) -> Vec<u8> {
        let file = SafeTensors::deserialize(bytes).unwrap();
        let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
        let mut meta = header.metadata().clone().unwrap();
        meta.remove("model");
        safetensors::serialize(file.tensors(), Some(meta)).unwrap()
    }
}
