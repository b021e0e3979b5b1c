//! A plain host-side tensor: the neutral exchange type between weight files, the f64 folding
//! and the burn model. Keeping it independent of burn lets the file formats and the folding be
//! exact and testable without a backend.

use std::collections::BTreeMap;

/// Row-major f32 tensor with an explicit shape.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Named tensors, sorted by name so that files written from them are deterministic.
pub type TensorMap = BTreeMap<String, HostTensor>;

impl HostTensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "HostTensor: shape {shape:?} does not match {} values",
            data.len()
        );
        Self { shape, data }
    }

    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            data: vec![0.0; n],
        }
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Largest absolute element-wise difference; shapes must agree.
    pub fn max_abs_diff(&self, other: &HostTensor) -> f32 {
        assert_eq!(self.shape, other.shape, "max_abs_diff: shapes differ");
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }
}
