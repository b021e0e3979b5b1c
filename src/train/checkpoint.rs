//! Resumable checkpoints: one safetensors file with the training-form weights, the EMA weights,
//! the optimizer state (as a byte tensor) and, in the metadata, the step, the best validation
//! score and the run's configuration. Batches are a function of (seed, step), so the step is all
//! the random state there is. Written atomically: a killed run leaves the previous checkpoint.

use crate::fsutil;
use crate::host_tensor::TensorMap;
use crate::weights::store::read_tensors;
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
    /// The run's configuration, TOML.
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
    pub fn model_weights(&self) -> Result<crate::ModelWeights, String> {
        let config = super::TrainConfig::from_toml(&self.config)?;
        let tensors = self.ema.clone().unwrap_or_else(|| self.weights.clone());
        let provenance = format!(
            "rt4ksr training checkpoint, step {} of {}, seed {}{}",
            self.step,
            config.steps,
            config.seed,
            if self.ema.is_some() { ", EMA weights" } else { "" }
        );
        crate::ModelWeights::new(config.model, crate::Form::Training, tensors, provenance).map_err(|e| e.to_string())
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        fsutil::write_atomic(path, &self.to_bytes())
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses a checkpoint held in memory; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, String> {
        let fail = |why: &str| format!("{}: not a usable checkpoint ({why})", path.display());
        let file = SafeTensors::deserialize(bytes).map_err(|e| fail(&e.to_string()))?;
        let optimizer = file
            .tensor(OPTIMIZER_TENSOR)
            .map_err(|_| fail("no optimizer state"))?
            .data()
            .to_vec();
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| fail(&e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some("rt4ksr-checkpoint-v1") {
            return Err(fail("wrong format tag"));
        }
        // The float tensors; the optimizer bytes are not one of them.
        let floats = without_tensor(bytes, OPTIMIZER_TENSOR).map_err(|e| fail(&e))?;
        let (all, _) = read_tensors(&floats, path).map_err(|e| fail(&e.to_string()))?;
        let split = |prefix: &str| -> TensorMap {
            all.iter()
                .filter_map(|(k, v)| k.strip_prefix(prefix).map(|n| (n.to_owned(), v.clone())))
                .collect()
        };
        let ema = split("ema.");
        let number = |key: &str| {
            meta.get(key)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| fail(key))
        };
        Ok(Self {
            step: number("step")?,
            weights: split("model."),
            ema: (!ema.is_empty()).then_some(ema),
            optimizer,
            best_psnr: meta.get("best_psnr").and_then(|v| v.parse().ok()),
            best_step: number("best_step")?,
            config: meta.get("config").cloned().unwrap_or_default(),
        })
    }
}

/// The same safetensors file without one tensor (re-serialized).
fn without_tensor(bytes: &[u8], skip: &str) -> Result<Vec<u8>, String> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let views: Vec<(String, TensorView<'_>)> = file.tensors().into_iter().filter(|(n, _)| n != skip).collect();
    safetensors::serialize(views, None).map_err(|e| e.to_string())
}

/// The decay used after `step` updates: the configured one, warmed up as
/// `min(decay, (1 + step) / (10 + step))` so that the average does not carry the random
/// initialisation for thousands of steps.
pub fn ema_decay_at(decay: f64, step: u64) -> f64 {
    decay.min((1.0 + step as f64) / (10.0 + step as f64))
}

/// Exponential moving average update: `ema = decay * ema + (1 - decay) * current`.
pub fn ema_update(ema: &mut TensorMap, current: &TensorMap, decay: f64) {
    for (name, value) in current {
        let avg = ema.entry(name.clone()).or_insert_with(|| value.clone());
        for (a, &v) in avg.data.iter_mut().zip(&value.data) {
            *a = (decay * *a as f64 + (1.0 - decay) * v as f64) as f32;
        }
    }
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
            config: "steps = 5".into(),
        };
        let dir = std::env::temp_dir().join(format!("rt4ksr-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.safetensors");
        ckpt.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), ckpt);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ema_decay_warms_up() {
        assert!((ema_decay_at(0.999, 0) - 0.1).abs() < 1e-12);
        assert!((ema_decay_at(0.999, 90) - 0.91).abs() < 1e-12);
        assert_eq!(ema_decay_at(0.999, 1_000_000), 0.999);
    }

    #[test]
    fn ema_moves_toward_the_current_weights() {
        let mut ema = TensorMap::from([("w".to_string(), HostTensor::new(vec![1], vec![0.0]))]);
        let cur = TensorMap::from([("w".to_string(), HostTensor::new(vec![1], vec![1.0]))]);
        ema_update(&mut ema, &cur, 0.9);
        assert!((ema["w"].data[0] - 0.1).abs() < 1e-7);
    }
}
