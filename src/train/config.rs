//! A training run's settings, read from TOML; every field can also be set on the command line.

use super::data::CropOptions;
use super::loss::LossWeights;
use super::schedule::Schedule;
use crate::model::ModelConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Adam,
    AdamW,
}

/// Who computes the gradients of a training step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backward {
    /// The hand-written CPU pass when it covers the model and training runs on the CPU, else
    /// burn's autodiff.
    Auto,
    /// burn's autodiff (any configuration, any device).
    Burn,
    /// The hand-written CPU pass (`train::native`); an error where it does not apply.
    Native,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// The network to train (default: the official configuration at x2).
    pub model: ModelConfig,
    /// Folders of HR training images (searched recursively).
    pub data: Vec<PathBuf>,
    /// Relative share of each `data` folder in the batches' crops (one weight a folder); empty:
    /// every image equally likely, whatever its folder.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data_weights: Vec<f64>,
    /// Those of the `data` folders whose crops keep their orientation: the four flips, never
    /// turned on their side (screens and text, whose lines run across); empty, the default,
    /// gives every folder all eight flips and rotations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upright_data: Vec<PathBuf>,
    /// Folder of HR validation images (Y-PSNR every `val_every` steps); none to skip.
    pub val_data: Option<PathBuf>,
    /// Where checkpoints, the log, the plot and the exported models go.
    pub out_dir: PathBuf,
    pub steps: u64,
    pub batch_size: usize,
    /// LR patch sides; with several, step k uses `lr_patches[k % len]` (multi-size training).
    pub lr_patches: Vec<usize>,
    pub optimizer: OptimizerKind,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// Weight of the high-frequency loss next to L1.
    pub hf_loss_weight: f64,
    /// Weight of an L1 loss on luma (BT.601 Y, the channel Y-PSNR measures) next to L1 on RGB;
    /// 0, the default, leaves it out.
    #[serde(skip_serializing_if = "is_zero")]
    pub luma_loss_weight: f64,
    /// LR patches clamped to 0..1 and rounded to 8 bits, as in a saved image, in `rt4ksr eval`
    /// and in what users upscale; false, the default (and every run before the option), keeps
    /// them as the bicubic makes them, with the over- and undershoots of sharp edges.
    #[serde(skip_serializing_if = "is_false")]
    pub lr_8bit: bool,
    /// The share of crops turned negative (255 - v) before their LR is made, 0 to 1; 0, the
    /// default, leaves them as they are.
    #[serde(skip_serializing_if = "is_zero")]
    pub invert_fraction: f64,
    /// Clip the gradient norm of each parameter to this value.
    pub grad_clip: Option<f64>,
    /// Exponential moving average of the weights (e.g. 0.999); validation and export use it.
    pub ema_decay: Option<f64>,
    pub seed: u64,
    pub val_every: u64,
    pub checkpoint_every: u64,
    pub log_every: u64,
    /// Start from these weights (official .pth or a project file) instead of a random init.
    pub init_weights: Option<PathBuf>,
    /// Who computes the gradients; both give the same step up to float rounding.
    pub backward: Backward,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: ModelConfig::official(2),
            data: vec![],
            data_weights: vec![],
            upright_data: vec![],
            val_data: None,
            out_dir: PathBuf::from("runs/train"),
            steps: 100_000,
            batch_size: 16,
            lr_patches: vec![64],
            optimizer: OptimizerKind::Adam,
            learning_rate: 5e-4,
            weight_decay: 0.0,
            schedule: Schedule::MultiStep {
                milestones: vec![20_000, 40_000, 60_000, 80_000],
                gamma: 0.5,
            },
            hf_loss_weight: 1.0,
            luma_loss_weight: 0.0,
            lr_8bit: false,
            invert_fraction: 0.0,
            grad_clip: None,
            ema_decay: None,
            seed: 2023,
            val_every: 1000,
            checkpoint_every: 500,
            log_every: 50,
            init_weights: None,
            backward: Backward::Auto,
        }
    }
}

/// A training configuration that cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum TrainConfigError {
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    #[error(transparent)]
    Model(#[from] crate::model::config::ConfigError),
    #[error("no training data folder given (`data` / --data)")]
    NoData,
    #[error("data_weights: {weights} given for {folders} data folders; one each, finite, 0 or more, not all 0")]
    DataWeights { folders: usize, weights: usize },
    #[error("upright_data: {} is not one of the data folders", .0.display())]
    UprightData(PathBuf),
    #[error("batch_size must be positive and lr_patches even sides of at least 4")]
    Batch,
    #[error("learning_rate must be positive")]
    LearningRate,
    #[error("ema_decay must be in [0, 1)")]
    EmaDecay,
    #[error("hf_loss_weight and luma_loss_weight must be finite and 0 or more")]
    LossWeights,
    #[error("invert_fraction must be between 0 and 1")]
    InvertFraction,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_false(v: &bool) -> bool {
    !v
}

impl TrainConfig {
    pub fn from_toml(text: &str) -> Result<Self, TrainConfigError> {
        Ok(toml::from_str(text)?)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes")
    }

    pub fn validate(&self) -> Result<(), TrainConfigError> {
        self.model.validate()?;
        if self.data.is_empty() {
            return Err(TrainConfigError::NoData);
        }
        let weights_usable = self.data_weights.len() == self.data.len()
            && self.data_weights.iter().all(|w| w.is_finite() && *w >= 0.0)
            && self.data_weights.iter().any(|w| *w > 0.0);
        if !self.data_weights.is_empty() && !weights_usable {
            return Err(TrainConfigError::DataWeights {
                folders: self.data.len(),
                weights: self.data_weights.len(),
            });
        }
        if let Some(stray) = self.upright_data.iter().find(|d| !self.data.contains(d)) {
            return Err(TrainConfigError::UprightData(stray.clone()));
        }
        if self.batch_size == 0 || self.lr_patches.is_empty() || self.lr_patches.iter().any(|&p| p < 4 || p % 2 != 0) {
            return Err(TrainConfigError::Batch);
        }
        if self.learning_rate <= 0.0 || !self.learning_rate.is_finite() {
            return Err(TrainConfigError::LearningRate);
        }
        if let Some(d) = self.ema_decay
            && !(0.0..1.0).contains(&d)
        {
            return Err(TrainConfigError::EmaDecay);
        }
        if ![self.hf_loss_weight, self.luma_loss_weight]
            .iter()
            .all(|w| w.is_finite() && *w >= 0.0)
        {
            return Err(TrainConfigError::LossWeights);
        }
        if !(0.0..=1.0).contains(&self.invert_fraction) {
            return Err(TrainConfigError::InvertFraction);
        }
        Ok(())
    }

    /// Per `data` folder, whether its crops keep their orientation (`upright_data`).
    pub fn upright_folders(&self) -> Vec<bool> {
        self.data.iter().map(|d| self.upright_data.contains(d)).collect()
    }

    /// How the batches' crops are made.
    pub fn crop_options(&self) -> CropOptions {
        CropOptions {
            lr_8bit: self.lr_8bit,
            invert_fraction: self.invert_fraction,
        }
    }

    /// The weights of the losses next to L1 on RGB.
    pub fn loss_weights(&self) -> LossWeights {
        LossWeights {
            hf: self.hf_loss_weight as f32,
            luma: self.luma_loss_weight as f32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn toml_round_trips_and_rejects_unknown_fields() {
        let c = TrainConfig {
            data: vec!["a".into(), "b".into()],
            schedule: Schedule::Cosine { min_lr: 1e-7 },
            ema_decay: Some(0.999),
            ..Default::default()
        };
        assert_eq!(TrainConfig::from_toml(&c.to_toml()).unwrap(), c);
        assert!(
            TrainConfig::from_toml("stepz = 3")
                .unwrap_err()
                .to_string()
                .contains("stepz")
        );
        let no_data = TrainConfig {
            data: vec![],
            ..c.clone()
        };
        assert!(matches!(no_data.validate(), Err(TrainConfigError::NoData)));
        let bad_ema = TrainConfig {
            ema_decay: Some(1.0),
            ..c.clone()
        };
        assert!(matches!(bad_ema.validate(), Err(TrainConfigError::EmaDecay)));
        for (hf, luma) in [(-1.0, 0.0), (1.0, -0.5), (1.0, f64::INFINITY), (f64::NAN, 0.0)] {
            let bad = TrainConfig {
                hf_loss_weight: hf,
                luma_loss_weight: luma,
                ..c.clone()
            };
            assert!(
                matches!(bad.validate(), Err(TrainConfigError::LossWeights)),
                "{hf} {luma}"
            );
        }
        // The luma loss is written only where it is on, so that the configs (and checkpoints)
        // from before it read and write as they did.
        assert!(!c.to_toml().contains("luma_loss_weight"));
        let luma = TrainConfig {
            luma_loss_weight: 0.5,
            ..c.clone()
        };
        assert!(luma.validate().is_ok() && luma.to_toml().contains("luma_loss_weight = 0.5"));
        assert_eq!(TrainConfig::from_toml(&luma.to_toml()).unwrap(), luma);
        // 8-bit LR patches likewise.
        assert!(!c.to_toml().contains("lr_8bit"));
        let quantized = TrainConfig {
            lr_8bit: true,
            ..c.clone()
        };
        assert!(quantized.to_toml().contains("lr_8bit = true"));
        assert_eq!(TrainConfig::from_toml(&quantized.to_toml()).unwrap(), quantized);
        // And inverted crops, whose share must be one.
        assert!(!c.to_toml().contains("invert_fraction"));
        let inverted = TrainConfig {
            invert_fraction: 0.5,
            ..c.clone()
        };
        assert!(inverted.validate().is_ok() && inverted.to_toml().contains("invert_fraction = 0.5"));
        for bad in [-0.1, 1.5, f64::NAN] {
            let bad = TrainConfig {
                invert_fraction: bad,
                ..c.clone()
            };
            assert!(matches!(bad.validate(), Err(TrainConfigError::InvertFraction)));
        }
        for weights in [vec![1.0], vec![0.0, 0.0], vec![1.0, f64::NAN], vec![1.0, -0.5]] {
            let bad = TrainConfig {
                data_weights: weights.clone(),
                ..c.clone()
            };
            assert!(
                matches!(bad.validate(), Err(TrainConfigError::DataWeights { folders: 2, .. })),
                "{weights:?}"
            );
        }
        let weighted = TrainConfig {
            data_weights: vec![3.0, 0.0],
            ..c.clone()
        };
        weighted.validate().unwrap();
        assert_eq!(TrainConfig::from_toml(&weighted.to_toml()).unwrap(), weighted);
        assert!(
            !c.to_toml().contains("data_weights"),
            "unweighted configs stay as they were"
        );
        // Upright folders: written only where some are, each one of `data`.
        assert!(!c.to_toml().contains("upright_data"));
        let upright = TrainConfig {
            upright_data: vec![c.data[1].clone()],
            ..c.clone()
        };
        upright.validate().unwrap();
        assert_eq!(upright.upright_folders(), vec![false, true]);
        assert_eq!(TrainConfig::from_toml(&upright.to_toml()).unwrap(), upright);
        let stray = TrainConfig {
            upright_data: vec!["elsewhere".into()],
            ..c.clone()
        };
        assert!(matches!(stray.validate(), Err(TrainConfigError::UprightData(d)) if d == Path::new("elsewhere")));
        let partial = TrainConfig::from_toml("steps = 7\n[model]\nscale = 3\nfeature_channels = 24\nnum_blocks = 4\nactivation = \"gelu\"\nhf_extraction = \"gaussian\"\neca = false\nlayernorm = true\nresidual = false\nmerge_hf = false\n").unwrap();
        assert_eq!(partial.steps, 7);
        assert_eq!(partial.model, ModelConfig::official(3));
    }

    #[test]
    fn the_shipped_configs_parse_and_validate() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let c = TrainConfig::from_toml(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            c.validate().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // The official width, but where a run starts from a widened model (`convert --widen`).
            let widened = c
                .init_weights
                .as_ref()
                .is_some_and(|p| p.to_string_lossy().contains(".wide."));
            let width = if widened { 48 } else { 24 };
            assert_eq!(c.model.feature_channels, width, "{}", path.display());
            count += 1;
        }
        assert!(count >= 3, "configs found: {count}");
    }
}
