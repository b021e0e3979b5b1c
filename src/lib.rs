//! rt4ksr: real-time 4K super-resolution (RT4KSR, CVPRW 2023) in Rust.
//!
//! The library holds the model ([`model`]), its weight files ([`weights`]) and the pieces the
//! command-line tool is built from; the binary is a thin layer over it.

pub mod fsutil;
pub mod host_tensor;
pub mod model;
pub mod weights;

pub use host_tensor::{HostTensor, TensorMap};
pub use model::{Form, ModelConfig, Rt4ksr};
pub use weights::{ModelWeights, WeightError};
pub mod default_models;
pub mod device;
pub mod engine;
pub mod eval;
pub mod export;
pub mod fuzz_entry;
pub mod imaging;
pub mod inference;
pub mod metrics;
pub mod train;
pub mod upscale;
pub mod video;
pub mod yuv;
