//! Video through pipes: YUV4MPEG2 streams, colour conversion, and the threaded pipeline.

pub mod color;
pub mod ffmpeg;
pub mod pipeline;
pub mod raw;
pub mod y4m;
