//! Running a network on whole images with burn (the reference path): planar 0..1 RGB in,
//! planar RGB out, odd sides handled by reflection padding and cropping.

use crate::imaging::{Image, pad_to_even};
use crate::model::network::{host, tensor4};
use crate::upscale::{FrameThreads, UpscaleError};
use crate::{HostTensor, ModelWeights, Rt4ksr};
use burn::tensor::Device;

/// The number format the network computes in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// The fastest format that keeps fp32 quality: on the CPU the AMX split-bf16 path where the
    /// CPU has AMX-BF16 (within 0.02 dB Y-PSNR of fp32, README), else fp32; fp32 on a GPU.
    #[default]
    Auto,
    Fp32,
    /// Half precision: weights and activations in f16 (GPUs; input and output stay f32).
    Fp16,
    /// The CPU's AMX tiles in split bf16 (each value as a bf16 high and low part, three
    /// products per pair, fp32 accumulation): CPUs with AMX-BF16.
    Bf16,
}

/// A precision name that is not one of the four.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision `{0}` (auto, fp32, fp16 or bf16)")]
pub struct UnknownPrecision(pub String);

impl std::str::FromStr for Precision {
    type Err = UnknownPrecision;

    fn from_str(text: &str) -> Result<Self, UnknownPrecision> {
        match text {
            "auto" => Ok(Precision::Auto),
            "fp32" => Ok(Precision::Fp32),
            "fp16" => Ok(Precision::Fp16),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(UnknownPrecision(text.into())),
        }
    }
}

/// Why no engine was made: the weights, or a precision the device cannot compute in.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Weights(#[from] crate::WeightError),
    #[error("--precision bf16 is the CPU engine's AMX path; burn's devices compute in fp32 or fp16")]
    Bf16OffCpu,
    #[error("--precision fp16 runs on a GPU device; the CPU computes in fp32 or AMX bf16 (--precision bf16)")]
    Fp16OnCpu,
    /// The CPU has no usable AMX (absent, or the kernel refused its tile state).
    #[error("--precision bf16: {0}")]
    NoAmx(crate::engine::isa::Unavailable),
    /// AMX is there, but the fast engine's AMX path does not take this model.
    #[error("--precision bf16: {0}")]
    Unfit(crate::engine::Unfit),
}

/// A network ready to upscale images on one device.
pub struct BurnUpscaler {
    net: Rt4ksr,
    device: Device,
    scale: usize,
    config: crate::ModelConfig,
    precision: Precision,
}

/// Casts every float parameter of a module to half precision.
struct ToHalf;

impl burn::module::ModuleMapper for ToHalf {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<burn::tensor::Tensor<D>>,
    ) -> burn::module::Param<burn::tensor::Tensor<D>> {
        param.map(|t| t.cast(burn::tensor::FloatDType::F16))
    }
}

impl BurnUpscaler {
    /// Folds the weights if needed (inference always runs the folded form) and loads them.
    pub fn new(weights: &ModelWeights, device: Device) -> Result<Self, crate::WeightError> {
        Self::load(weights, device, Precision::Fp32)
    }

    /// The precision it computes in (fp32 or fp16).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// As [`BurnUpscaler::new`], computing in the given precision.
    pub fn with_precision(weights: &ModelWeights, device: Device, precision: Precision) -> Result<Self, EngineError> {
        let precision = match precision {
            Precision::Auto | Precision::Fp32 => Precision::Fp32,
            Precision::Fp16 => Precision::Fp16,
            Precision::Bf16 => return Err(EngineError::Bf16OffCpu),
        };
        Ok(Self::load(weights, device, precision)?)
    }

    /// Loads the network in `precision`, fp32 or fp16.
    fn load(weights: &ModelWeights, device: Device, precision: Precision) -> Result<Self, crate::WeightError> {
        use burn::module::Module;
        let folded = weights.folded(false)?;
        let mut net = Rt4ksr::from_weights(&folded, &device);
        if precision == Precision::Fp16 {
            net = net.map(&mut ToHalf);
        }
        Ok(Self {
            net,
            device,
            scale: weights.config.scale,
            config: weights.config.clone(),
            precision,
        })
    }

    /// Upscales a 3-channel image; the output is not clamped.
    pub fn upscale(&self, image: &Image<f32>) -> Result<Image<f32>, UpscaleError> {
        self.submit(image)?()
    }

    /// Uploads the image and queues the network on the device; the returned closure downloads
    /// the result (on a GPU the work runs while the caller does something else in between).
    fn submit(&self, image: &Image<f32>) -> Result<crate::upscale::Pending<'static>, UpscaleError> {
        if image.channels != 3 {
            return Err(crate::model::InputError::Channels(image.channels).into());
        }
        let (h, w) = (image.height, image.width);
        let padded = pad_to_even(image).into_owned();
        let input = HostTensor::new(vec![1, 3, padded.height, padded.width], padded.data);
        let mut x = tensor4(&input, &self.device);
        if self.precision == Precision::Fp16 {
            x = x.cast(burn::tensor::FloatDType::F16);
        }
        let y = self.net.try_forward(x)?.cast(burn::tensor::FloatDType::F32);
        let s = self.scale;
        Ok(Box::new(move || {
            let out = host(y);
            let out = Image::new(3, out.shape[2], out.shape[3], out.data);
            Ok(if (out.height, out.width) == (h * s, w * s) {
                out
            } else {
                out.crop(0, 0, h * s, w * s)
            })
        }))
    }
}

impl crate::upscale::Engine for BurnUpscaler {
    fn config(&self) -> &crate::ModelConfig {
        &self.config
    }

    fn run(&self, rgb: &Image<f32>) -> Result<Image<f32>, UpscaleError> {
        self.upscale(rgb)
    }

    /// The output buffer is not reused: the download makes its own.
    fn start(&self, rgb: &Image<f32>, _out: Image<f32>) -> Result<crate::upscale::Pending<'_>, UpscaleError> {
        self.submit(rgb)
    }

    fn computes_asynchronously(&self) -> bool {
        self.device != Device::flex()
    }

    /// Three feature maps alive at once (F channels at a quarter of the LR pixels), the
    /// pre-shuffle tensor twice (before and after the shuffle), and the output; calibrated
    /// against the peak RSS of whole 720p and 1080p frames.
    fn bytes_per_lr_pixel(&self) -> usize {
        let f = self.config.feature_channels;
        let up = self.config.upsample_channels();
        let s = self.config.scale;
        3 * f + 2 * up + 12 * s * s
    }
}

/// The fast engine with its reusable buffers, as an [`Engine`](crate::upscale::Engine).
pub struct FastUpscaler {
    engine: crate::engine::FastEngine,
    workspace: std::sync::Mutex<crate::engine::Workspace>,
    /// Workspaces for frames on their calling thread, several at once: each frame takes one
    /// and puts it back.
    calling_thread_workspaces: std::sync::Mutex<Vec<crate::engine::Workspace>>,
}

impl FastUpscaler {
    pub fn new(engine: crate::engine::FastEngine) -> Self {
        Self {
            engine,
            workspace: Default::default(),
            calling_thread_workspaces: Default::default(),
        }
    }

    /// Runs `frame` with a workspace for `threads`: the shared one for all cores, else a spare
    /// one of the calling thread's kind (made when none is spare).
    fn with_workspace<R>(&self, threads: FrameThreads, frame: impl FnOnce(&mut crate::engine::Workspace) -> R) -> R {
        match threads {
            FrameThreads::AllCores => {
                frame(&mut self.workspace.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
            }
            FrameThreads::CallingThread => {
                let spare = self
                    .calling_thread_workspaces
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .pop();
                let mut ws = spare.unwrap_or_else(crate::engine::Workspace::for_calling_thread);
                let result = frame(&mut ws);
                self.calling_thread_workspaces
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(ws);
                result
            }
        }
    }
}

impl crate::upscale::Engine for FastUpscaler {
    fn config(&self) -> &crate::ModelConfig {
        &self.engine.config
    }

    fn run(&self, rgb: &Image<f32>) -> Result<Image<f32>, UpscaleError> {
        let mut out = Image::zeros(0, 0, 0);
        self.run_into(rgb, &mut out, FrameThreads::AllCores)?;
        Ok(out)
    }

    fn run_into(&self, rgb: &Image<f32>, out: &mut Image<f32>, threads: FrameThreads) -> Result<(), UpscaleError> {
        let padded = pad_to_even(rgb);
        self.with_workspace(threads, |ws| self.engine.upscale_into(&padded, ws, out))?;
        let s = self.engine.config.scale;
        let (h, w) = (rgb.height * s, rgb.width * s);
        if (out.height, out.width) != (h, w) {
            *out = out.crop(0, 0, h, w);
        }
        Ok(())
    }

    fn fuses_yuv420(&self) -> bool {
        true
    }

    fn run_yuv_to_yuv420(
        &self,
        frame: &crate::yuv::Frame,
        conversion: &crate::yuv::YuvToRgb,
        coefficients: crate::yuv::YuvCoefficients,
        out: &mut Vec<u8>,
        threads: FrameThreads,
    ) -> Result<(), UpscaleError> {
        Ok(self.with_workspace(threads, |ws| {
            self.engine
                .upscale_yuv_to_yuv420(frame, conversion, ws, coefficients, out)
        })?)
    }

    /// A frame per thread of rayon's pool (the cores, or as many threads as asked for).
    fn frames_at_once(&self) -> usize {
        rayon::current_num_threads()
    }

    fn run_into_rgb8(&self, rgb: &Image<f32>, out: &mut [u8]) -> Result<bool, UpscaleError> {
        self.with_workspace(FrameThreads::AllCores, |ws| self.engine.upscale_to_rgb8(rgb, ws, out))?;
        Ok(true)
    }

    fn run_rgb8_into_rgb8(&self, samples: &[u8], size: (usize, usize), out: &mut [u8]) -> Result<bool, UpscaleError> {
        self.with_workspace(FrameThreads::AllCores, |ws| {
            self.engine.upscale_rgb8_to_rgb8(samples, size, ws, out)
        })?;
        Ok(true)
    }

    /// The float input frame (3 floats an LR pixel) and the 3 s^2 output floats an LR pixel;
    /// the per-band rings of three steps are small next to them.
    fn bytes_per_lr_pixel(&self) -> usize {
        let c = &self.engine.config;
        12 + 12 * c.scale * c.scale
    }
}

/// The fastest fp32 engine that runs these weights: the fast CPU engine where it supports the
/// configuration, else burn on the CPU.
pub fn best_engine(weights: &ModelWeights) -> Result<Box<dyn crate::upscale::Engine + Send + Sync>, EngineError> {
    cpu_engine(weights, Precision::Fp32)
}

/// The fast CPU engine in `precision` (see [`Precision`]), or burn where the fast engine does
/// not implement the configuration (fp32 only).
pub fn cpu_engine(
    weights: &ModelWeights,
    precision: Precision,
) -> Result<Box<dyn crate::upscale::Engine + Send + Sync>, EngineError> {
    use crate::engine::{FastEngine, Isa, Path};
    let isa = match precision {
        Precision::Fp32 => Isa::best_fp32(),
        Precision::Auto => match Isa::new(Path::AmxBf16) {
            Ok(amx) if FastEngine::fits(&weights.config, Path::AmxBf16) => amx,
            _ => Isa::best_fp32(),
        },
        Precision::Bf16 => Isa::new(Path::AmxBf16).map_err(EngineError::NoAmx)?,
        Precision::Fp16 => return Err(EngineError::Fp16OnCpu),
    };
    Ok(match FastEngine::with_isa(weights, isa)? {
        Ok(engine) => Box::new(FastUpscaler::new(engine)),
        Err(why) if isa.path().is_reduced_precision() => return Err(EngineError::Unfit(why)),
        Err(_) => Box::new(BurnUpscaler::new(weights, Device::flex())?),
    })
}

/// The engine for an opened device: the fast CPU engine on the CPU, burn on a GPU (whole
/// frames stay on the device from upload to download).
pub fn engine_on(
    weights: &ModelWeights,
    device: &crate::device::OpenedDevice,
    precision: Precision,
) -> Result<Box<dyn crate::upscale::Engine + Send + Sync>, EngineError> {
    if device.is_cpu() {
        cpu_engine(weights, precision)
    } else {
        Ok(Box::new(BurnUpscaler::with_precision(
            weights,
            device.device.clone(),
            precision,
        )?))
    }
}

/// Upscales an 8-bit image with any engine (odd sides handled by `upscale_rgb`) and rounds to
/// 8 bit (clamped, half to even).
pub fn upscale_u8(engine: &dyn crate::upscale::Engine, image: &Image<u8>) -> Result<Image<u8>, UpscaleError> {
    let out = crate::upscale::upscale_rgb(engine, &image.map(|v| v as f32 / 255.0), usize::MAX, |_, _| {})?;
    Ok(out.map(|v| v as f64).quantize_u8())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::perturbed_weights;
    use crate::{Form, ModelConfig};

    #[test]
    fn half_precision_stays_close_to_single_precision() {
        let weights = perturbed_weights(&ModelConfig::official(2), Form::Training, 9);
        let image = Image::new(
            3,
            18,
            22,
            (0..3 * 18 * 22).map(|i| ((i * 31) % 100) as f32 / 100.0).collect(),
        );
        let full = BurnUpscaler::new(&weights, Device::flex())
            .unwrap()
            .upscale(&image)
            .unwrap();
        let half = BurnUpscaler::with_precision(&weights, Device::flex(), Precision::Fp16)
            .unwrap()
            .upscale(&image)
            .unwrap();
        let worst = full.max_abs_diff(&half);
        // f16 keeps 11 bits: a few 1e-3 after seven layers, far below one 8-bit level (3.9e-3)
        // on average, but not bit-equal.
        assert!(worst > 0.0 && worst < 2e-2, "worst difference {worst}");
    }
}
