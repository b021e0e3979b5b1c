//! The RT4KSR network on burn: one code for both forms (a residual block is either the
//! training block or its folded 3x3 conv), for inference, for training with autodiff, and for
//! any burn device.

use super::config::{Activation, Form, HfExtraction, ModelConfig};
use super::weights::{ModelError, ModelWeights};
use crate::host_tensor::{HostTensor, TensorMap};
use burn::module::{Module, Param, ParamId};
use burn::tensor::module::{conv1d, conv2d};
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Device, Tensor, TensorData, activation};
use std::collections::BTreeMap;

/// LayerNorm over channels, per pixel (the official LayerNorm2d, eps 1e-6).
pub const LAYERNORM_EPS: f64 = 1e-6;
pub const LRELU_SLOPE: f64 = 0.05;

/// A convolution with bias and symmetric zero padding.
#[derive(Module, Debug)]
pub struct Conv {
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
    pub padding: usize,
}

impl Conv {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let p = self.padding;
        conv2d(
            x,
            self.weight.val(),
            Some(self.bias.val()),
            ConvOptions::new([1, 1], [p, p], [1, 1], 1),
        )
    }
}

#[derive(Module, Debug)]
pub struct LayerNorm2d {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
}

impl LayerNorm2d {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let c = self.weight.dims()[0];
        let centred = x.clone() - x.mean_dim(1);
        let var = (centred.clone() * centred.clone()).mean_dim(1);
        let normed = centred / (var + LAYERNORM_EPS).sqrt();
        normed * self.weight.val().reshape([1, c, 1, 1]) + self.bias.val().reshape([1, c, 1, 1])
    }
}

/// The reparameterizable residual block in its training form.
#[derive(Module, Debug)]
pub struct TrainingBlock {
    pub expand: Conv,
    pub fea: Conv,
    pub reduce: Conv,
}

impl TrainingBlock {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        // The official block pads the expand output with the expand bias; a 1x1 conv of the
        // zero-padded input is exactly that, and keeps the gradient path of the bias.
        let expanded = self.expand.forward(x.clone().pad((1, 1, 1, 1), PadMode::Constant(0.0)));
        let identity = expanded.clone().narrow(2, 1, h).narrow(3, 1, w);
        let features = self.fea.forward(expanded) + identity;
        self.reduce.forward(features) + x
    }
}

/// A residual block in either form. The training form is the larger (its three convs'
/// parameters); a model holds a handful of blocks, built once, so they are not boxed.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ResidualBlock {
    Training(TrainingBlock),
    Folded(Conv),
}

impl ResidualBlock {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            ResidualBlock::Training(block) => block.forward(x),
            ResidualBlock::Folded(conv) => conv.forward(x),
        }
    }
}

/// Efficient channel attention: a 1-D conv over the channel means, then a sigmoid gate.
#[derive(Module, Debug)]
pub struct ChannelAttention {
    pub weight: Param<Tensor<3>>,
}

impl ChannelAttention {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, c, _, _] = x.dims();
        let k = self.weight.dims()[2];
        let pooled = x.clone().mean_dim(2).mean_dim(3).reshape([n, 1, c]);
        let opts = ConvOptions::new([1], [(k - 1) / 2], [1], 1);
        let gate = activation::sigmoid(conv1d(pooled, self.weight.val(), None, opts));
        x * gate.reshape([n, c, 1, 1])
    }
}

/// LayerNorm -> residual block -> activation [-> channel attention] [+ input].
#[derive(Module, Debug)]
pub struct NafBlock {
    pub norm: Option<LayerNorm2d>,
    pub conv: ResidualBlock,
    pub attention: Option<ChannelAttention>,
}

/// The whole network.
#[derive(Module, Debug)]
pub struct Rt4ksr {
    pub head: Conv,
    /// The high-frequency branch; absent from folded weights when it is dead (merge off).
    pub hf_block: Option<ResidualBlock>,
    pub gamma: Option<Param<Tensor<1>>>,
    pub body: Vec<NafBlock>,
    pub tail_norm: LayerNorm2d,
    pub tail: ResidualBlock,
    pub upsample: Conv,
    #[module(skip)]
    pub config: ModelConfig,
    #[module(skip)]
    pub form: Form,
}

/// Named intermediate activations, as in the reference files (`head_lr`, `body0`, ...).
pub type Trace = BTreeMap<&'static str, Tensor<4>>;

impl Rt4ksr {
    /// Builds the network from checked weights on `device`.
    pub fn from_weights(weights: &ModelWeights, device: &Device) -> Self {
        let t = &weights.tensors;
        let param = |name: &str| named_param(name, tensor4(&t[name], device));
        let param1 = |name: &str| named_param(name, tensor1(&t[name], device));
        let conv = |prefix: &str, padding: usize| Conv {
            weight: param(&format!("{prefix}.weight")),
            bias: param1(&format!("{prefix}.bias")),
            padding,
        };
        let block = |prefix: &str| match weights.form {
            Form::Training => ResidualBlock::Training(TrainingBlock {
                expand: conv(&format!("{prefix}.expand_conv"), 0),
                fea: conv(&format!("{prefix}.fea_conv"), 0),
                reduce: conv(&format!("{prefix}.reduce_conv"), 0),
            }),
            Form::Folded => ResidualBlock::Folded(conv(&format!("{prefix}.rep_conv"), 1)),
        };
        let norm = |prefix: &str| LayerNorm2d {
            weight: param1(&format!("{prefix}.weight")),
            bias: param1(&format!("{prefix}.bias")),
        };
        let config = &weights.config;
        let hf_present = t.contains_key(match weights.form {
            Form::Training => "hfb.0.expand_conv.weight",
            Form::Folded => "hfb.0.rep_conv.weight",
        });
        let body = (0..config.num_blocks)
            .map(|i| NafBlock {
                norm: config.layernorm.then(|| norm(&format!("body.{i}.norm"))),
                conv: block(&format!("body.{i}.conv1")),
                attention: config.eca.then(|| ChannelAttention {
                    weight: {
                        let name = format!("body.{i}.ca.conv.weight");
                        named_param(&name, tensor3(&t[&name], device))
                    },
                }),
            })
            .collect();
        Self {
            head: conv("head.0", 1),
            hf_block: hf_present.then(|| block("hfb.0")),
            gamma: t.contains_key("gamma").then(|| param1("gamma")),
            body,
            tail_norm: norm("tail.0"),
            tail: block("tail.1"),
            upsample: conv("upsample.0", 1),
            config: config.clone(),
            form: weights.form,
        }
    }

    /// Reads the parameters back into host tensors with the official names.
    pub fn to_weights(&self, provenance: impl Into<String>) -> Result<ModelWeights, ModelError> {
        let mut t = TensorMap::new();
        let mut put = |name: String, value: HostTensor| {
            t.insert(name, value);
        };
        fn conv_into(put: &mut dyn FnMut(String, HostTensor), prefix: &str, conv: &Conv) {
            put(format!("{prefix}.weight"), host(conv.weight.val()));
            put(format!("{prefix}.bias"), host(conv.bias.val()));
        }
        fn block_into(put: &mut dyn FnMut(String, HostTensor), prefix: &str, block: &ResidualBlock) {
            match block {
                ResidualBlock::Training(b) => {
                    conv_into(put, &format!("{prefix}.expand_conv"), &b.expand);
                    conv_into(put, &format!("{prefix}.fea_conv"), &b.fea);
                    conv_into(put, &format!("{prefix}.reduce_conv"), &b.reduce);
                }
                ResidualBlock::Folded(c) => conv_into(put, &format!("{prefix}.rep_conv"), c),
            }
        }
        conv_into(&mut put, "head.0", &self.head);
        if let Some(block) = &self.hf_block {
            block_into(&mut put, "hfb.0", block);
        }
        if let Some(gamma) = &self.gamma {
            put("gamma".into(), host(gamma.val()));
        }
        for (i, b) in self.body.iter().enumerate() {
            if let Some(norm) = &b.norm {
                put(format!("body.{i}.norm.weight"), host(norm.weight.val()));
                put(format!("body.{i}.norm.bias"), host(norm.bias.val()));
            }
            block_into(&mut put, &format!("body.{i}.conv1"), &b.conv);
            if let Some(att) = &b.attention {
                put(format!("body.{i}.ca.conv.weight"), host(att.weight.val()));
            }
        }
        put("tail.0.weight".into(), host(self.tail_norm.weight.val()));
        put("tail.0.bias".into(), host(self.tail_norm.bias.val()));
        block_into(&mut put, "tail.1", &self.tail);
        conv_into(&mut put, "upsample.0", &self.upsample);
        ModelWeights::new(self.config.clone(), self.form, t, provenance)
    }

    /// Checks that an LR input of `height` x `width` can go through the network.
    pub fn check_input_size(&self, height: usize, width: usize) -> Result<(), InputError> {
        check_input_size(&self.config, height, width)
    }

    /// As [`Rt4ksr::forward`], with the input size checked first: a clear error instead of a
    /// panic inside the backend.
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<4>, InputError> {
        let [_, c, h, w] = x.dims();
        if c != 3 {
            return Err(InputError::Channels(c));
        }
        self.check_input_size(h, w)?;
        Ok(self.forward(x))
    }

    /// Super-resolves a batch `[N, 3, H, W]` (H, W even) to `[N, 3, sH, sW]`. The HF branch is
    /// computed only when the merge uses it.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.run(x, None)
    }

    /// As [`Rt4ksr::forward`], also returning the intermediate activations, the dead branch
    /// included when its weights are loaded.
    pub fn forward_traced(&self, x: Tensor<4>) -> (Tensor<4>, Trace) {
        let mut trace = Trace::new();
        let out = self.run(x, Some(&mut trace));
        (out, trace)
    }

    fn activate(&self, x: Tensor<4>) -> Tensor<4> {
        match self.config.activation {
            Activation::Gelu => activation::gelu(x),
            Activation::Relu => activation::relu(x),
            Activation::Lrelu => activation::leaky_relu(x, LRELU_SLOPE),
        }
    }

    fn run(&self, x: Tensor<4>, mut trace: Option<&mut Trace>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let hf_fits = check_input_size(
            &ModelConfig {
                merge_hf: true,
                ..self.config.clone()
            },
            h,
            w,
        )
        .is_ok();
        let want_hf = self.config.merge_hf || (trace.is_some() && hf_fits);
        let mut record = |name: &'static str, t: &Tensor<4>| {
            if let Some(trace) = trace.as_deref_mut() {
                trace.insert(name, t.clone());
            }
        };
        let hf_features = match (&self.hf_block, want_hf) {
            (Some(hf_block), true) => {
                let hf = high_frequencies(x.clone(), self.config.hf_extraction);
                record("hf", &hf);
                let head_hf = self.head.forward(pixel_unshuffle(hf, 2));
                record("head_hf", &head_hf);
                let out = self.activate(hf_block.forward(head_hf));
                record("hfb_out", &out);
                Some(out)
            }
            _ => None,
        };
        let head = self.head.forward(pixel_unshuffle(x, 2));
        record("head_lr", &head);
        let mut features = head;
        for (i, block) in self.body.iter().enumerate() {
            let residual = features.clone();
            let mut y = features;
            if let Some(norm) = &block.norm {
                y = norm.forward(y);
            }
            y = self.activate(block.conv.forward(y));
            if let Some(attention) = &block.attention {
                // As the official block: `x = ca(x) * x`, where ca(x) is already x * gate.
                y = attention.forward(y.clone()) * y;
            }
            features = if self.config.residual { y + residual } else { y };
            if i == 0 {
                record("body0", &features);
            }
        }
        record("body_out", &features);
        if self.config.merge_hf {
            let gamma = self
                .gamma
                .as_ref()
                .expect("checked by the layout")
                .val()
                .reshape([1, 1, 1, 1]);
            let hf = hf_features.expect("computed when merging");
            features = features * gamma + hf;
        }
        let tail = self.tail.forward(self.tail_norm.forward(features));
        record("tail_out", &tail);
        let pre_shuffle = self.upsample.forward(tail);
        record("pre_shuffle", &pre_shuffle);
        let out = pixel_shuffle(pre_shuffle, 2 * self.config.scale);
        record("output", &out);
        out
    }
}

/// Checks an LR input size against a configuration.
/// Why the network cannot take an input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("the network needs even, non-zero input sides, got {width}x{height} (pad odd sides first)")]
    Sides { width: usize, height: usize },
    #[error("the Gaussian HF branch needs sides of at least 4, got {width}x{height}")]
    TooSmallForHf { width: usize, height: usize },
    #[error("the network takes RGB images, got {0} channels")]
    Channels(usize),
}

pub fn check_input_size(config: &ModelConfig, height: usize, width: usize) -> Result<(), InputError> {
    if height == 0 || width == 0 || !height.is_multiple_of(2) || !width.is_multiple_of(2) {
        return Err(InputError::Sides { width, height });
    }
    if config.merge_hf && config.hf_extraction == HfExtraction::Gaussian && (height < 4 || width < 4) {
        return Err(InputError::TooSmallForHf { width, height });
    }
    Ok(())
}

/// `x - blur(x)` with the configured low-pass.
pub fn high_frequencies(x: Tensor<4>, kind: HfExtraction) -> Tensor<4> {
    let low = match kind {
        HfExtraction::Gaussian => gaussian_blur(x.clone()),
        HfExtraction::AvgPool => {
            let [n, c, h, w] = x.dims();
            let pooled = x.clone().reshape([n, c, h / 2, 2, w / 2, 2]).mean_dim(3).mean_dim(5);
            pooled.expand([n, c, h / 2, 2, w / 2, 2]).reshape([n, c, h, w])
        }
    };
    x - low
}

/// The 1-D Gaussian taps for 5x5, sigma 1, computed in f32 as torchvision does.
pub fn gaussian_taps() -> [f32; 5] {
    let pdf: Vec<f32> = (-2..=2).map(|t| (-0.5 * (t as f32) * (t as f32)).exp()).collect();
    let sum: f32 = pdf.iter().sum();
    std::array::from_fn(|i| pdf[i] / sum)
}

/// Depthwise 5x5 Gaussian blur (sigma 1) with reflect padding (PyTorch `reflect`).
pub fn gaussian_blur(x: Tensor<4>) -> Tensor<4> {
    let [_, c, _, _] = x.dims();
    let k = gaussian_taps();
    let mut kernel = Vec::with_capacity(c * 25);
    for _ in 0..c {
        for ky in k {
            for kx in k {
                kernel.push(ky * kx);
            }
        }
    }
    let weight = Tensor::<4>::from_data(TensorData::new(kernel, [c, 1, 5, 5]), &x.device());
    let padded = x.pad((2, 2, 2, 2), PadMode::Reflect);
    conv2d(padded, weight, None, ConvOptions::new([1, 1], [0, 0], [1, 1], c))
}

/// `[N, C, H, W]` -> `[N, C r^2, H/r, W/r]`, channel index `c r^2 + dy r + dx`.
pub fn pixel_unshuffle(x: Tensor<4>, r: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h / r, r, w / r, r])
        .permute([0, 1, 3, 5, 2, 4])
        .reshape([n, c * r * r, h / r, w / r])
}

/// `[N, C r^2, h, w]` -> `[N, C, h r, w r]`, the inverse of [`pixel_unshuffle`].
pub fn pixel_shuffle(x: Tensor<4>, r: usize) -> Tensor<4> {
    let [n, cr2, h, w] = x.dims();
    let c = cr2 / (r * r);
    x.reshape([n, c, r, r, h, w])
        .permute([0, 1, 4, 2, 5, 3])
        .reshape([n, c, h * r, w * r])
}

/// A parameter whose id is derived from its name, so that optimizer state saved in one
/// process finds its parameter again after the network is rebuilt in another (resume).
pub fn named_param<const D: usize>(name: &str, tensor: Tensor<D>) -> Param<Tensor<D>> {
    let mut param = Param::from_tensor(tensor);
    param.id = param_id(name);
    param
}

/// The id of the parameter named `name` (a weight-file tensor name) in a network built by
/// [`Rt4ksr::from_weights`].
pub fn param_id(name: &str) -> ParamId {
    // FNV-1a: stable across runs and platforms.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    ParamId::from(hash)
}

pub fn tensor4(t: &HostTensor, device: &Device) -> Tensor<4> {
    let shape: [usize; 4] = t.shape.as_slice().try_into().expect("rank 4");
    Tensor::from_data(TensorData::new(t.data.clone(), shape), device)
}

pub fn tensor3(t: &HostTensor, device: &Device) -> Tensor<3> {
    let shape: [usize; 3] = t.shape.as_slice().try_into().expect("rank 3");
    Tensor::from_data(TensorData::new(t.data.clone(), shape), device)
}

pub fn tensor1(t: &HostTensor, device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(t.data.clone(), [t.numel()]), device)
}

/// Copies a tensor of any rank back to the host.
pub fn host<const D: usize>(t: Tensor<D>) -> HostTensor {
    let shape = t.dims().to_vec();
    let data = t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 data");
    HostTensor::new(shape, data)
}
