//! Every knob of the RT4KSR design space, the official presets, and the tensor layout that a
//! configuration implies (names and shapes as in the authors' checkpoints).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Non-linearity used after each block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Exact GELU (erf form), as `nn.GELU()`.
    Gelu,
    Relu,
    /// Leaky ReLU with negative slope 0.05 (the official `lrelu`).
    Lrelu,
}

/// How the high-frequency input of the HF branch is extracted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HfExtraction {
    /// `x - GaussianBlur(x)`: 5x5, sigma 1, reflect padding.
    Gaussian,
    /// `x - nearest_up(avg_pool2(x))`.
    AvgPool,
}

/// Which of the two equivalent network forms a set of weights describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// Reparameterizable residual blocks (1x1 expand, 3x3, 1x1 reduce, identities).
    Training,
    /// Every residual block folded into one 3x3 convolution.
    Folded,
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Form::Training => "training",
            Form::Folded => "folded",
        })
    }
}

/// The architecture hyper-parameters. `Default` is the official x2 model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Upscaling factor (2, 3 or 4).
    pub scale: usize,
    /// Feature channels F of the deep branch.
    pub feature_channels: usize,
    /// Number N of simplified NAF blocks.
    pub num_blocks: usize,
    pub activation: Activation,
    pub hf_extraction: HfExtraction,
    /// Efficient channel attention in each body block.
    pub eca: bool,
    /// LayerNorm at the start of each body block.
    pub layernorm: bool,
    /// Identity skip around each body block.
    pub residual: bool,
    /// Merge the HF branch into the tail (`gamma * deep + hf`). Off in the official models,
    /// where the HF branch is dead work.
    pub merge_hf: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self::official(2)
    }
}

/// Input channels (RGB).
pub const IMAGE_CHANNELS: usize = 3;
/// Channels after PixelUnshuffle(2) of an RGB image.
pub const UNSHUFFLED_CHANNELS: usize = IMAGE_CHANNELS * 4;
/// The residual blocks expand F channels to EXPAND_RATIO * F.
pub const EXPAND_RATIO: usize = 2;

/// A configuration that makes no buildable network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("scale must be 2, 3 or 4, not {0}")]
    Scale(usize),
    #[error("feature_channels must be in 1..=4096, not {0}")]
    FeatureChannels(usize),
    #[error("num_blocks must be at most 1024, not {0}")]
    NumBlocks(usize),
}

impl ModelConfig {
    /// The authors' settings: F=24, N=4, GELU, LayerNorm, no residual, no ECA, merge off.
    pub fn official(scale: usize) -> Self {
        Self {
            scale,
            feature_channels: 24,
            num_blocks: 4,
            activation: Activation::Gelu,
            hf_extraction: HfExtraction::Gaussian,
            eca: false,
            layernorm: true,
            residual: false,
            merge_hf: false,
        }
    }

    /// Checks the values make a buildable network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(2..=4).contains(&self.scale) {
            return Err(ConfigError::Scale(self.scale));
        }
        if self.feature_channels == 0 || self.feature_channels > 4096 {
            return Err(ConfigError::FeatureChannels(self.feature_channels));
        }
        if self.num_blocks > 1024 {
            return Err(ConfigError::NumBlocks(self.num_blocks));
        }
        Ok(())
    }

    /// Output channels of the last conv: 3 * (2s)^2, shuffled by PixelShuffle(2s).
    pub fn upsample_channels(&self) -> usize {
        IMAGE_CHANNELS * (2 * self.scale) * (2 * self.scale)
    }

    /// Kernel size of the ECA 1-D conv, as the official ECALayer with gamma=1, b=1.
    pub fn eca_kernel(&self) -> usize {
        let t = ((self.feature_channels as f64).log2() + 1.0).abs() as usize;
        if t % 2 == 1 { t } else { t + 1 }
    }

    /// Names and shapes of every tensor of this configuration in the given form, in the
    /// official naming. `optional` tensors (the dead HF branch when the merge is off) may be
    /// absent from a file.
    pub fn tensor_layout(&self, form: Form) -> Vec<TensorSpec> {
        let f = self.feature_channels;
        let mut specs = Vec::new();
        let mut push =
            |name: String, shape: Vec<usize>, optional: bool| specs.push(TensorSpec { name, shape, optional });
        let rrb = |prefix: &str, optional: bool, push: &mut dyn FnMut(String, Vec<usize>, bool)| match form {
            Form::Training => {
                let e = EXPAND_RATIO * f;
                push(format!("{prefix}.expand_conv.weight"), vec![e, f, 1, 1], optional);
                push(format!("{prefix}.expand_conv.bias"), vec![e], optional);
                push(format!("{prefix}.fea_conv.weight"), vec![e, e, 3, 3], optional);
                push(format!("{prefix}.fea_conv.bias"), vec![e], optional);
                push(format!("{prefix}.reduce_conv.weight"), vec![f, e, 1, 1], optional);
                push(format!("{prefix}.reduce_conv.bias"), vec![f], optional);
            }
            Form::Folded => {
                push(format!("{prefix}.rep_conv.weight"), vec![f, f, 3, 3], optional);
                push(format!("{prefix}.rep_conv.bias"), vec![f], optional);
            }
        };
        push("head.0.weight".into(), vec![f, UNSHUFFLED_CHANNELS, 3, 3], false);
        push("head.0.bias".into(), vec![f], false);
        let dead = !self.merge_hf;
        rrb("hfb.0", dead, &mut push);
        push("gamma".into(), vec![1], dead);
        for i in 0..self.num_blocks {
            if self.layernorm {
                push(format!("body.{i}.norm.weight"), vec![f], false);
                push(format!("body.{i}.norm.bias"), vec![f], false);
            }
            rrb(&format!("body.{i}.conv1"), false, &mut push);
            if self.eca {
                push(format!("body.{i}.ca.conv.weight"), vec![1, 1, self.eca_kernel()], false);
            }
        }
        push("tail.0.weight".into(), vec![f], false);
        push("tail.0.bias".into(), vec![f], false);
        rrb("tail.1", false, &mut push);
        push(
            "upsample.0.weight".into(),
            vec![self.upsample_channels(), f, 3, 3],
            false,
        );
        push("upsample.0.bias".into(), vec![self.upsample_channels()], false);
        specs
    }

    /// Trainable parameters of the given form, dead branch included when `with_dead` is set.
    pub fn parameter_count(&self, form: Form, with_dead: bool) -> usize {
        self.tensor_layout(form)
            .iter()
            .filter(|s| with_dead || !s.optional)
            .map(|s| s.shape.iter().product::<usize>())
            .sum()
    }

    /// Multiply-accumulates of the folded network for an LR input of `width` x `height`;
    /// `with_dead` adds the HF branch the official configuration computes and discards.
    pub fn folded_macs(&self, width: usize, height: usize, with_dead: bool) -> u64 {
        let f = self.feature_channels as u64;
        let pixels = (width / 2) as u64 * (height / 2) as u64;
        let conv3 = |cin: u64, cout: u64| pixels * cin * cout * 9;
        let mut macs = conv3(UNSHUFFLED_CHANNELS as u64, f)
            + (self.num_blocks as u64 + 1) * conv3(f, f)
            + conv3(f, self.upsample_channels() as u64);
        if with_dead || self.merge_hf {
            let blur = match self.hf_extraction {
                HfExtraction::Gaussian => 25,
                HfExtraction::AvgPool => 1,
            };
            macs +=
                (width * height * IMAGE_CHANNELS) as u64 * blur + conv3(UNSHUFFLED_CHANNELS as u64, f) + conv3(f, f);
        }
        macs
    }

    /// A short human description, used in error messages.
    pub fn summary(&self) -> String {
        format!(
            "x{} F={} N={} {:?}{}{}{}{}",
            self.scale,
            self.feature_channels,
            self.num_blocks,
            self.activation,
            if self.layernorm { " layernorm" } else { "" },
            if self.eca { " eca" } else { "" },
            if self.residual { " residual" } else { "" },
            if self.merge_hf { " merge-hf" } else { "" },
        )
        .to_lowercase()
    }
}

/// One tensor of a configuration's layout.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
    /// May be absent from a file (dead weights).
    pub optional: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_parameter_counts_match_the_reference_checkpoints() {
        // ../shared/reference/README.md: 152,233 / 165,253 training, 44,521 / 57,541 folded.
        assert_eq!(ModelConfig::official(2).parameter_count(Form::Training, true), 152_233);
        assert_eq!(ModelConfig::official(3).parameter_count(Form::Training, true), 165_253);
        assert_eq!(ModelConfig::official(2).parameter_count(Form::Folded, true), 44_521);
        assert_eq!(ModelConfig::official(3).parameter_count(Form::Folded, true), 57_541);
    }

    #[test]
    fn official_macs_match_the_published_figures() {
        // 11.94 GMAC for 720p -> 4K at x3 and 20.16 GMAC for 1080p -> 4K at x2, useful work.
        let x3 = ModelConfig::official(3).folded_macs(1280, 720, false) as f64 / 1e9;
        let x2 = ModelConfig::official(2).folded_macs(1920, 1080, false) as f64 / 1e9;
        assert!((x3 - 11.94).abs() < 0.005, "{x3}");
        assert!((x2 - 20.16).abs() < 0.005, "{x2}");
        let dead = ModelConfig::official(3).folded_macs(1280, 720, true) as f64 / 1e9;
        let share = (dead - x3) / x3;
        assert!((0.13..0.17).contains(&share), "{share}");
    }

    #[test]
    fn eca_kernel_follows_the_official_formula() {
        let mut c = ModelConfig::official(2);
        assert_eq!(c.eca_kernel(), 5); // log2(24)+1 = 5.58 -> 5
        c.feature_channels = 64;
        assert_eq!(c.eca_kernel(), 7); // 6+1 = 7
        c.feature_channels = 16;
        assert_eq!(c.eca_kernel(), 5); // 4+1 = 5
    }

    #[test]
    fn validation_rejects_unsupported_scales() {
        let mut c = ModelConfig::official(2);
        c.scale = 5;
        assert_eq!(c.validate(), Err(ConfigError::Scale(5)));
        c.scale = 4;
        c.feature_channels = 0;
        assert_eq!(c.validate(), Err(ConfigError::FeatureChannels(0)));
    }
}
