//! The network: its configuration, the burn implementation of both forms, the exact folding
//! between them, initialisation, moving a trained model to another scale, its transpose, and
//! widening it.

pub mod config;
pub mod fold;
pub mod init;
pub mod network;
pub mod rescale;
pub mod transpose;
pub mod weights;
pub mod widen;

pub use config::{Activation, Form, HfExtraction, ModelConfig};
pub use network::{InputError, Rt4ksr};
pub use weights::{ModelError, ModelWeights};
