//! Arguments that several commands share: which model runs (`upscale`, `video`, `export`) and
//! memory sizes like `1G` (`upscale`, `video`).

use anyhow::Result;
use clap::Args;
use rt4ksr::ModelWeights;
use rt4ksr::upscale::Engine;
use std::path::PathBuf;

/// Which model runs: the embedded one for a scale, or a weight file.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// Upscaling factor of the embedded default model (2, 3 or 4); a --weights file sets its own.
    #[arg(long, short)]
    pub scale: Option<usize>,
    /// Weight file (.pth, safetensors, rt4ksr file or checkpoint) instead of the embedded model.
    #[arg(long)]
    pub weights: Option<PathBuf>,
}

impl ModelArgs {
    /// The weights of `--weights`, else the embedded model of `-s` (x2 by default), ready on
    /// the fastest engine that runs them.
    pub fn engine(&self, device: &super::device::DeviceArgs) -> Result<Box<dyn Engine + Send + Sync>> {
        let weights = self.load()?;
        Ok(rt4ksr::inference::engine_on(
            &weights,
            &device.open()?,
            device.precision,
        )?)
    }

    /// The weights of `--weights`, else the embedded model of `-s` (x2 by default).
    pub fn load(&self) -> Result<ModelWeights> {
        Ok(rt4ksr::default_models::load_chosen(
            self.weights.as_deref(),
            self.scale,
        )?)
    }
}

/// Parses `1G`, `512M`, `64K` or a plain byte count.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('G') => (&t[..t.len() - 1], 1u64 << 30),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('K') => (&t[..t.len() - 1], 1 << 10),
        _ => (t, 1),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 512M or 2G"))?;
    if value <= 0.0 {
        return Err(format!("`{text}` must be positive"));
    }
    Ok((value * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_take_a_binary_suffix_and_must_be_positive() {
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes(" 512m "), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5K"), Ok(1536));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("0M").unwrap_err().contains("positive"));
        assert!(parse_bytes("lots").unwrap_err().contains("not a size"));
    }
}
