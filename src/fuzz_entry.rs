//! The parser entry points the fuzz targets (`fuzz/fuzz_targets/`) drive, shared with
//! `tests/reliability.rs`, which replays the fuzz corpora and every crash found through the same
//! calls. Each takes any bytes and must return (an error is fine), never panic or hang.

use std::path::Path;

/// The restricted unpickler alone.
pub fn pickle(data: &[u8]) {
    let _ = crate::weights::pickle::unpickle(data);
}

/// Every weight format through `ModelWeights::from_bytes` (then folding, for files that load)
/// and the training-checkpoint reader.
pub fn weights(data: &[u8]) {
    let path = Path::new("fuzz-input");
    if let Ok(weights) = crate::ModelWeights::from_bytes(data, path) {
        let _ = weights.folded(false);
    }
    let _ = crate::train::checkpoint::Checkpoint::from_bytes(data, path);
}

/// A YUV4MPEG2 stream: header, up to four frames, and their conversion to RGB.
pub fn y4m(data: &[u8]) {
    use crate::video::color::{ColorSpec, Matrix, frame_to_rgb};
    use crate::video::y4m::{Header, read_frame};
    let mut input = data;
    let Ok(header) = Header::read(&mut input) else { return };
    let spec = ColorSpec {
        matrix: Matrix::default_for(header.height),
        full_range: header.full_range,
        depth: header.depth,
    };
    for index in 0..4 {
        match read_frame(&mut input, &header, index) {
            Ok(Some(frame)) => {
                let _ = frame_to_rgb(&frame, &header, spec);
            }
            _ => break,
        }
    }
}

/// An image file through the upscaler's decoder, with a 4-megapixel bomb limit.
pub fn image(data: &[u8]) {
    use crate::imaging::picture::{DecodeLimits, decode};
    let _ = decode(data, DecodeLimits { max_pixels: 4_000_000 });
}

/// The entry point of a target by name.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    Some(match name {
        "pickle" => pickle,
        "weights" => weights,
        "y4m" => y4m,
        "image" => image,
        _ => return None,
    })
}
