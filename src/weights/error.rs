use std::path::PathBuf;

/// Everything that can be wrong with a weight file. Each message names the file or tensor and
/// says what was expected, so a user can act on it without a backtrace.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    // The message already holds the cause: no `#[source]`, so `{:#}` does not repeat it.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: not a weight file this program reads ({reason})")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: PyTorch checkpoint refused: {reason}")]
    Pickle { path: PathBuf, reason: String },
    /// The tensors do not make the model (missing tensor, wrong shape, unknown configuration).
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error("{0}")]
    Unavailable(String),
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
