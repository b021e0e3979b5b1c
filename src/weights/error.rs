//! The errors of reading weight files, one type per layer of the format.

use std::path::PathBuf;

/// Everything that can be wrong with a weight file. Each message names the file or tensor and
/// says what was expected, so a user can act on it without a backtrace.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    // The message already holds the cause: no `#[source]`, so `{:#}` does not repeat it.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: not a weight file this program reads ({error})")]
    // Boxed, here and below: the variants stay small, and with them every Result that carries
    // a WeightError.
    Format { path: PathBuf, error: Box<FormatError> },
    #[error("{path}: PyTorch checkpoint refused: {error}")]
    Pickle {
        path: PathBuf,
        error: Box<super::pth::PthError>,
    },
    /// The tensors do not make the model (missing tensor, wrong shape, unknown configuration).
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error("no embedded model for x{0} (there are x2, x3 and x4); give one with --weights")]
    NoEmbeddedModel(usize),
    #[error("{}: the model is x{model}, x{asked} was asked for", path.display())]
    ScaleMismatch { path: PathBuf, model: usize, asked: usize },
    /// A model error with the file it came from.
    #[error("{path}: {error}")]
    InFile {
        path: PathBuf,
        error: crate::model::ModelError,
    },
}

impl WeightError {
    /// Names the file in errors that do not already.
    pub fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            WeightError::Model(error) => WeightError::InFile {
                path: path.to_owned(),
                error,
            },
            other => other,
        }
    }
}

/// What is wrong with a safetensors weight file or training checkpoint (`WeightError::Format`
/// adds the file).
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not a safetensors file: {0}")]
    NotSafetensors(safetensors::SafeTensorError),
    #[error("invalid safetensors: {0}")]
    InvalidSafetensors(safetensors::SafeTensorError),
    #[error("tensor `{tensor}`: dtype {dtype:?} is not a float weight type")]
    NotFloat { tensor: String, dtype: safetensors::Dtype },
    #[error("metadata `{key}` is not valid: {error}")]
    Metadata {
        key: &'static str,
        error: serde_json::Error,
    },
    #[error("not a usable checkpoint ({0})")]
    Checkpoint(#[from] CheckpointError),
}

/// Why a file tagged as a training checkpoint cannot be used as one.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("no optimizer state")]
    NoOptimizer,
    #[error("wrong format tag")]
    WrongTag,
    #[error("metadata `{0}` is missing or not a number")]
    Number(&'static str),
    /// Checkpoints written before the model was stored on its own: its `[model]` table is read
    /// out of the run's TOML.
    #[error("training configuration: {0}")]
    TrainingToml(toml::de::Error),
    #[error("the training configuration has no [model] table")]
    NoModelTable,
    #[error("[model]: {0}")]
    ModelTable(toml::de::Error),
    #[error("metadata `model`: {0}")]
    Model(serde_json::Error),
    /// The safetensors container itself (re-serialized without the optimizer bytes).
    #[error("{0}")]
    Container(safetensors::SafeTensorError),
    #[error(transparent)]
    Tensors(Box<FormatError>),
}
