//! Training RT4KSR: data (random HR crops, online bicubic LR), losses (L1 + high-frequency),
//! learning-rate schedules, resumable checkpoints, and the training loop.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod loss;
pub mod native;
pub mod plot;
pub mod run;
pub mod schedule;

pub use config::TrainConfig;
pub use run::{TrainEvent, Trainer};
