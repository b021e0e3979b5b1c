//! Every weight format through the one entry point users reach (`--weights FILE`): PyTorch zip +
//! pickle, plain safetensors, the project's own files, and training checkpoints.
#![no_main]
use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz-input");
    if let Ok(weights) = rt4ksr::ModelWeights::from_bytes(data, path) {
        // A file that loads must also fold (or say why not).
        let _ = weights.folded(false);
    }
    let _ = rt4ksr::train::checkpoint::Checkpoint::from_bytes(data, path);
});
