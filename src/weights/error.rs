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
    #[error("{0}")]
    Unavailable(String),
    /// A model error (missing tensor, unknown configuration...) with the file it came from.
    #[error("{path}: {error}")]
    InFile { path: PathBuf, error: Box<WeightError> },
}

impl WeightError {
    /// Names the file in errors that do not already.
    pub fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            WeightError::Missing { .. }
            | WeightError::Shape { .. }
            | WeightError::Unexpected { .. }
            | WeightError::Infer(_) => WeightError::InFile {
                path: path.to_owned(),
                error: Box::new(self),
            },
            other => other,
        }
    }
}
