//! The default models, embedded in the binary so that a fresh machine upscales with no
//! download: the project's own x2, x3 and x4 models, trained by `rt4ksr train` on the training set
//! (see docs/training.md for how, and README.md for their quality).

use crate::{ModelWeights, WeightError};
use std::path::Path;

const X2: &[u8] = include_bytes!("../models/rt4ksr_x2.safetensors");
const X3: &[u8] = include_bytes!("../models/rt4ksr_x3.safetensors");
const X4: &[u8] = include_bytes!("../models/rt4ksr_x4.safetensors");

/// Scales with an embedded model.
pub const SCALES: [usize; 3] = [2, 3, 4];

/// The embedded model for `scale`.
pub fn load(scale: usize) -> Result<ModelWeights, WeightError> {
    let (bytes, name) = match scale {
        2 => (X2, "embedded x2 model"),
        3 => (X3, "embedded x3 model"),
        4 => (X4, "embedded x4 model"),
        other => return Err(WeightError::NoEmbeddedModel(other)),
    };
    ModelWeights::from_bytes(bytes, Path::new(name))
}

/// The model a user asks for: the weight file where one is given (its scale must be `scale`,
/// where given), else the embedded model of `scale` (x2 by default).
pub fn load_chosen(weights: Option<&Path>, scale: Option<usize>) -> Result<ModelWeights, WeightError> {
    match weights {
        Some(path) => {
            let w = ModelWeights::load(path)?;
            match scale {
                Some(asked) if asked != w.config.scale => Err(WeightError::ScaleMismatch {
                    path: path.to_path_buf(),
                    model: w.config.scale,
                    asked,
                }),
                _ => Ok(w),
            }
        }
        None => load(scale.unwrap_or(2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_models_load_folded_with_their_scale() {
        for s in SCALES {
            let w = load(s).unwrap();
            assert_eq!(w.config.scale, s);
            assert_eq!(w.form, crate::Form::Folded);
        }
        assert!(load(5).unwrap_err().to_string().contains("--weights"));
    }
}
