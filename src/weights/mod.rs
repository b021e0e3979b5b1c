//! Weight files: the authors' PyTorch checkpoints, plain safetensors (either form), and the
//! project's own file, a safetensors file whose metadata carries the configuration, the form
//! and where the weights came from, so that no one has to pass architecture flags by hand.
//! The weights type itself is the model's ([`ModelWeights`]); this module only reads and writes.

pub mod checkpoint;
mod error;
pub mod pickle;
pub mod pth;
pub mod store;

pub use crate::model::weights::{ModelError, ModelWeights, check_layout, infer_config, strip_prefix};
pub use error::{CheckpointError, FormatError, WeightError};

use std::path::Path;

/// A file's bytes, an error naming it otherwise.
fn read_file(path: &Path) -> Result<Vec<u8>, WeightError> {
    std::fs::read(path).map_err(|error| WeightError::Io {
        path: path.to_owned(),
        error,
    })
}

impl ModelWeights {
    /// Reads any supported weight file, telling the format by its first bytes.
    pub fn load(path: &Path) -> Result<Self, WeightError> {
        Self::from_bytes(&read_file(path)?, path)
    }

    /// As [`ModelWeights::load`], from bytes already in memory; `path` names them in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, WeightError> {
        let read = || {
            if bytes.starts_with(b"PK\x03\x04") {
                let tensors = pth::read_state_dict(bytes, path)?;
                let (config, form) = infer_config(&tensors)?;
                let provenance = format!("PyTorch checkpoint {}", path.display());
                Ok(Self::new(config, form, tensors, provenance)?)
            } else {
                store::read(bytes, path)
            }
        };
        read().map_err(|e| e.in_file(path))
    }

    /// Writes the project's own format (safetensors + configuration metadata), atomically.
    pub fn save(&self, path: &Path) -> Result<(), WeightError> {
        store::write(self, path)
    }
}
