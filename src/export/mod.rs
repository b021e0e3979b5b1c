//! Export of the folded network to other runtimes.

pub mod onnx;
mod proto;
