//! The training loop: batches prepared on a worker thread, forward/backward with burn autodiff,
//! Adam/AdamW with the schedule, optional EMA, validation, atomic checkpoints and exact resume.

use super::checkpoint::{Checkpoint, ema_decay_at, ema_update};
use super::config::{Backward, OptimizerKind, TrainConfig};
use super::data::{Batch, TrainingSet};
use super::loss::losses;
use super::native;
use crate::eval::{Scores, make_pair};
use crate::imaging::Image;
use crate::inference::BurnUpscaler;
use crate::model::ModelError;
use crate::model::init::random_weights;
use crate::model::network::{param_id, tensor1, tensor3, tensor4};
use crate::model::rescale::resample_upsample_conv;
use crate::model::{Form, Rt4ksr};
use crate::upscale::UpscaleError;
use crate::{ModelWeights, TensorMap, WeightError};
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device, Tensor, TensorData};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

/// What the loop reports as it goes.
#[derive(Clone, Debug)]
pub enum TrainEvent {
    Started {
        start_step: u64,
        images: usize,
        skipped: Vec<(PathBuf, String)>,
    },
    Step {
        step: u64,
        loss: f64,
        l1: f64,
        hf: f64,
        lr: f64,
        steps_per_sec: f64,
    },
    Validation {
        step: u64,
        psnr_y: f64,
        best: bool,
    },
    Checkpoint {
        step: u64,
    },
}

/// The outcome of a run (or of the part of it that ran).
#[derive(Clone, Debug)]
pub struct Summary {
    pub steps_done: u64,
    pub best_psnr: Option<f64>,
    pub best_step: u64,
    /// Training-form weights at the end.
    pub weights: ModelWeights,
    pub seconds: f64,
}

/// Why a training run could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] super::config::TrainConfigError),
    #[error(transparent)]
    Data(#[from] super::data::DataError),
    #[error(transparent)]
    Weights(#[from] WeightError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Upscale(#[from] UpscaleError),
    #[error("{}: {source}", .path.display())]
    File { path: PathBuf, source: std::io::Error },
    /// The checkpoint's tensors do not fit the configured model.
    #[error("{}: {source}", .path.display())]
    Checkpoint { path: PathBuf, source: ModelError },
    /// burn could not read or write the optimizer state (its own message).
    #[error("{}: optimizer state: {message}", .path.display())]
    OptimizerState { path: PathBuf, message: String },
    #[error(
        "backward = \"native\" needs training on the CPU and a model without the merged HF branch or channel attention ({0})"
    )]
    NativeUnavailable(String),
    #[error("the data thread stopped")]
    DataThreadStopped,
    #[error(
        "{}: fine-tuning needs weights of the configured model ({wanted}) at any scale, the file holds {found}",
        .path.display()
    )]
    InitWeights {
        path: PathBuf,
        wanted: String,
        found: String,
    },
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::File {
        path: path.to_path_buf(),
        source,
    }
}

pub struct Trainer {
    pub config: TrainConfig,
    set: TrainingSet,
    validation: Vec<(Image<u8>, Image<u8>)>,
    /// Where the network trains (burn-flex on the CPU unless set).
    device: Device,
    on_cpu: bool,
}

impl Trainer {
    pub fn new(config: TrainConfig) -> Result<Self, TrainError> {
        config.validate()?;
        let largest = *config.lr_patches.iter().max().expect("validated") * config.model.scale;
        let mut set = TrainingSet::load(&config.data, largest)?.upright(config.upright_folders());
        if !config.data_weights.is_empty() {
            set = set.weighted(&config.data, &config.data_weights)?;
        }
        let mut validation = Vec::new();
        if let Some(dir) = &config.val_data {
            let val = TrainingSet::load(std::slice::from_ref(dir), 2 * config.model.scale + 11)?;
            validation = val.images.iter().map(|hr| make_pair(hr, config.model.scale)).collect();
            set.skipped.extend(val.skipped);
        }
        Ok(Self {
            config,
            set,
            validation,
            device: Device::flex(),
            on_cpu: true,
        })
    }

    /// Trains on another burn device (a GPU backend); the default is the CPU.
    pub fn on_device(mut self, device: Device) -> Self {
        self.device = device;
        self.on_cpu = false;
        self
    }

    /// Whether steps use the hand-written CPU backward pass ([`native`]).
    pub fn native_backward(&self) -> Result<bool, TrainError> {
        let applies = self.on_cpu && native::supports(&self.config.model);
        match self.config.backward {
            Backward::Auto => Ok(applies),
            Backward::Burn => Ok(false),
            Backward::Native if applies => Ok(true),
            Backward::Native => Err(TrainError::NativeUnavailable(self.config.model.summary())),
        }
    }

    fn checkpoint_path(&self) -> PathBuf {
        self.config.out_dir.join("checkpoint.safetensors")
    }

    fn optimizer(&self) -> ModuleOptimizer {
        let c = &self.config;
        let clip = c.grad_clip.map(|v| GradientClippingConfig::Norm(v as f32));
        match c.optimizer {
            OptimizerKind::Adam => AdamConfig::new().with_epsilon(1e-8).with_grad_clipping(clip).init(),
            OptimizerKind::AdamW => AdamWConfig::new()
                .with_epsilon(1e-8)
                .with_weight_decay(c.weight_decay as f32)
                .with_grad_clipping(clip)
                .init(),
        }
    }

    /// Mean Y-PSNR of folded `weights` on the validation images.
    pub fn validate(&self, weights: &ModelWeights) -> Result<f64, TrainError> {
        let upscaler = BurnUpscaler::new(weights, self.device.clone())?;
        let scale = self.config.model.scale;
        let scores: Result<Vec<Scores>, TrainError> = self
            .validation
            .iter()
            .map(|(hr, lr)| {
                Ok(Scores::measure(
                    hr,
                    &crate::inference::upscale_u8(&upscaler, lr)?,
                    scale,
                ))
            })
            .collect();
        Ok(Scores::mean(&scores?).psnr_y)
    }

    /// Runs (or, with `resume`, continues) training. `stop_at` ends the run early after that
    /// many completed steps, writing a checkpoint, as an interruption would.
    pub fn run(
        &self,
        resume: bool,
        stop_at: Option<u64>,
        mut on_event: impl FnMut(TrainEvent),
    ) -> Result<Summary, TrainError> {
        let c = &self.config;
        std::fs::create_dir_all(&c.out_dir).map_err(file_error(&c.out_dir))?;
        let device = self.device.clone().autodiff();
        let native = self.native_backward()?;
        let mut optim = self.optimizer();
        let ckpt_path = self.checkpoint_path();
        let (weights, mut ema, start, mut best_psnr, mut best_step) = if resume && ckpt_path.exists() {
            let ckpt = Checkpoint::load(&ckpt_path)?;
            optim = optim
                .from_bytes(Bytes::from_bytes_vec(ckpt.optimizer.clone()))
                .map_err(|e| TrainError::OptimizerState {
                    path: ckpt_path.clone(),
                    message: format!("{e:?}"),
                })?;
            let w =
                ModelWeights::new(c.model.clone(), Form::Training, ckpt.weights, "checkpoint").map_err(|source| {
                    TrainError::Checkpoint {
                        path: ckpt_path.clone(),
                        source,
                    }
                })?;
            (w, ckpt.ema, ckpt.step, ckpt.best_psnr, ckpt.best_step)
        } else {
            let w = match &c.init_weights {
                Some(path) => initial_weights(path, &c.model, c.seed)?,
                None => random_weights(&c.model, Form::Training, c.seed),
            };
            (w, None, 0, None, 0)
        };
        let mut ema: Option<TensorMap> = c
            .ema_decay
            .map(|_| ema.take().unwrap_or_else(|| weights.tensors.clone()));
        let model = Rt4ksr::from_weights(&weights, &device);
        // The native pass reads the weights on the host; kept in step with the model.
        let mut live = weights.tensors;
        let end = stop_at.map_or(c.steps, |s| s.min(c.steps));
        on_event(TrainEvent::Started {
            start_step: start,
            images: self.set.images.len(),
            skipped: self.set.skipped.clone(),
        });

        let mut log = CsvLog::open(&c.out_dir.join("log.csv"), start)?;
        let began = Instant::now();
        let mut window = Instant::now();
        let mut window_steps = 0u64;
        let (mut sum_loss, mut sum_l1, mut sum_hf) = (0.0, 0.0, 0.0);

        let model = std::thread::scope(|scope| -> Result<Rt4ksr, TrainError> {
            let mut model = model;
            let (tx, rx) = mpsc::sync_channel::<Batch>(4);
            let set = &self.set;
            scope.spawn(move || {
                for step in start..end {
                    let patch = c.lr_patches[(step % c.lr_patches.len() as u64) as usize];
                    if tx
                        .send(set.batch(c.seed, step, c.batch_size, patch, c.model.scale, c.crop_options()))
                        .is_err()
                    {
                        break;
                    }
                }
            });
            for step in start..end {
                let batch = rx.recv().map_err(|_| TrainError::DataThreadStopped)?;
                let (loss_l1, loss_hf, loss_luma, grads) = if native {
                    let out = native::loss_and_gradients(&c.model, &live, &batch, c.loss_weights());
                    (out.l1, out.hf, out.luma, gradients_params(&out.grads, &self.device))
                } else {
                    self.burn_gradients(&model, batch, &device)
                };
                let lr = c.schedule.rate(c.learning_rate, step, c.steps);
                model = optim.step(lr, model, grads);
                sum_loss += loss_l1 + loss_hf * c.hf_loss_weight + loss_luma * c.luma_loss_weight;
                sum_l1 += loss_l1;
                sum_hf += loss_hf;
                window_steps += 1;
                let done = step + 1;
                if native || ema.is_some() {
                    live = model.to_weights("")?.tensors;
                }
                if let (Some(ema), Some(decay)) = (ema.as_mut(), c.ema_decay) {
                    ema_update(ema, &live, ema_decay_at(decay, step));
                }
                if done % c.log_every == 0 || done == end {
                    let n = window_steps as f64;
                    let rate = n / window.elapsed().as_secs_f64().max(1e-9);
                    on_event(TrainEvent::Step {
                        step: done,
                        loss: sum_loss / n,
                        l1: sum_l1 / n,
                        hf: sum_hf / n,
                        lr,
                        steps_per_sec: rate,
                    });
                    log.row(done, sum_loss / n, sum_l1 / n, sum_hf / n, lr, rate, None)?;
                    log.plot()?;
                    (sum_loss, sum_l1, sum_hf, window_steps) = (0.0, 0.0, 0.0, 0);
                    window = Instant::now();
                }
                if !self.validation.is_empty() && (done % c.val_every == 0 || done == c.steps) {
                    let current = self.export_weights(&model, ema.as_ref(), done)?;
                    let psnr = self.validate(&current)?;
                    let best = best_psnr.is_none_or(|b| psnr > b);
                    if best {
                        best_psnr = Some(psnr);
                        best_step = done;
                        current.folded(false)?.save(&c.out_dir.join("best.safetensors"))?;
                    }
                    on_event(TrainEvent::Validation {
                        step: done,
                        psnr_y: psnr,
                        best,
                    });
                    log.row(done, f64::NAN, f64::NAN, f64::NAN, lr, f64::NAN, Some(psnr))?;
                    log.plot()?;
                }
                if done % c.checkpoint_every == 0 || done == end {
                    let weights = model.to_weights("")?;
                    let optimizer = optim.into_bytes().map_err(|e| TrainError::OptimizerState {
                        path: ckpt_path.clone(),
                        message: format!("{e:?}"),
                    })?;
                    Checkpoint {
                        step: done,
                        weights: weights.tensors,
                        ema: ema.clone(),
                        optimizer: optimizer.to_vec(),
                        best_psnr,
                        best_step,
                        model: c.model.clone(),
                        config: c.to_toml(),
                    }
                    .save(&ckpt_path)
                    .map_err(file_error(&ckpt_path))?;
                    on_event(TrainEvent::Checkpoint { step: done });
                }
            }
            Ok(model)
        })?;
        let final_weights = self.export_weights(&model, ema.as_ref(), end)?;
        if end == c.steps {
            final_weights.folded(false)?.save(&c.out_dir.join("last.safetensors"))?;
        }
        Ok(Summary {
            steps_done: end,
            best_psnr,
            best_step,
            weights: final_weights,
            seconds: began.elapsed().as_secs_f64(),
        })
    }

    /// L1, HF and luma losses and gradients of a batch by burn's autodiff.
    fn burn_gradients(&self, model: &Rt4ksr, batch: Batch, device: &Device) -> (f64, f64, f64, GradientsParams) {
        let (p, s) = (batch.lr_patch, self.config.model.scale);
        let lr_in = Tensor::<4>::from_data(TensorData::new(batch.lr, [batch.size, 3, p, p]), device);
        let hr = Tensor::<4>::from_data(TensorData::new(batch.hr, [batch.size, 3, p * s, p * s]), device);
        let sr = model.forward(lr_in);
        let terms = losses(sr, hr, self.config.loss_weights());
        let grads = GradientsParams::from_grads(terms.total.backward(), model);
        let scalar = |t: Tensor<1>| t.into_scalar::<f32>() as f64;
        (scalar(terms.l1), scalar(terms.hf), scalar(terms.luma), grads)
    }

    /// The weights to validate and export: the EMA when it is on, else the live ones.
    fn export_weights(&self, model: &Rt4ksr, ema: Option<&TensorMap>, step: u64) -> Result<ModelWeights, TrainError> {
        let provenance = format!(
            "rt4ksr {} train, step {step} of {}, seed {}, data {}",
            env!("CARGO_PKG_VERSION"),
            self.config.steps,
            self.config.seed,
            self.config
                .data
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        match ema {
            Some(ema) => ModelWeights::new(self.config.model.clone(), Form::Training, ema.clone(), provenance),
            None => model.to_weights(provenance),
        }
        .map_err(TrainError::from)
    }
}

/// Host gradients, by tensor name, as burn's optimizer takes them (on the inner device).
pub fn gradients_params(grads: &TensorMap, device: &Device) -> GradientsParams {
    let mut params = GradientsParams::new();
    for (name, g) in grads {
        match g.shape.len() {
            4 => params.register(param_id(name), tensor4(g, device)),
            3 => params.register(param_id(name), tensor3(g, device)),
            _ => params.register(param_id(name), tensor1(g, device)),
        }
    }
    params
}

/// The CSV of the curves: `step,loss,l1,hf,lr,steps_per_sec,val_psnr_y`. On resume, rows past
/// the checkpoint (written after it by a killed run) are dropped.
struct CsvLog {
    file: std::fs::File,
    path: PathBuf,
}

impl CsvLog {
    const HEADER: &'static str = "step,loss,l1,hf,lr,steps_per_sec,val_psnr_y";

    fn open(path: &Path, start: u64) -> Result<Self, TrainError> {
        let kept: Vec<String> = if start > 0 {
            std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .filter(|l| {
                    l.split(',')
                        .next()
                        .and_then(|s| s.parse::<u64>().ok())
                        .is_some_and(|s| s <= start)
                })
                .map(str::to_owned)
                .collect()
        } else {
            vec![]
        };
        let mut text = format!("{}\n", Self::HEADER);
        for l in kept {
            text.push_str(&l);
            text.push('\n');
        }
        crate::fsutil::write_atomic(path, text.as_bytes()).map_err(file_error(path))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(file_error(path))?;
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    /// Redraws `plot.png` beside the log from everything logged so far.
    fn plot(&self) -> Result<(), TrainError> {
        let text = std::fs::read_to_string(&self.path).map_err(file_error(&self.path))?;
        let (loss, validation) = super::plot::series_from_csv(&text);
        let target = self.path.with_file_name("plot.png");
        crate::fsutil::write_atomic(&target, &super::plot::render(&loss, &validation)).map_err(file_error(&target))
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        step: u64,
        loss: f64,
        l1: f64,
        hf: f64,
        lr: f64,
        rate: f64,
        val: Option<f64>,
    ) -> Result<(), TrainError> {
        let opt = |v: f64| if v.is_nan() { String::new() } else { format!("{v:.6}") };
        writeln!(
            self.file,
            "{step},{},{},{},{lr:e},{},{}",
            opt(loss),
            opt(l1),
            opt(hf),
            opt(rate),
            val.map(|v| format!("{v:.4}")).unwrap_or_default()
        )
        .map_err(file_error(&self.path))
    }
}

/// The weights a fine-tuning run starts from: weights of the configured model, or of the same
/// model at another scale, whose tensors are all taken as they are but the upsample conv (its
/// output channels depend on the scale), which is resampled from the file's
/// (`model::rescale`). Folded weights (a shipped model) are unfolded first, exactly, the
/// tensors folding does not determine drawn from `seed` ([`ModelWeights::unfolded`]).
pub fn initial_weights(path: &Path, model: &crate::ModelConfig, seed: u64) -> Result<ModelWeights, TrainError> {
    let w = ModelWeights::load(path)?;
    let same_but_scale = crate::ModelConfig {
        scale: model.scale,
        ..w.config.clone()
    } == *model;
    if !same_but_scale {
        return Err(TrainError::InitWeights {
            path: path.to_path_buf(),
            wanted: model.summary(),
            found: w.config.summary(),
        });
    }
    let w = w.unfolded(seed).map_err(|source| TrainError::Checkpoint {
        path: path.to_path_buf(),
        source,
    })?;
    if w.config.scale == model.scale {
        return Ok(w);
    }
    let (weight, bias) = resample_upsample_conv(
        &w.tensors["upsample.0.weight"],
        &w.tensors["upsample.0.bias"],
        w.config.scale,
        model.scale,
    );
    let mut tensors = w.tensors;
    tensors.insert("upsample.0.weight".into(), weight);
    tensors.insert("upsample.0.bias".into(), bias);
    let provenance = format!(
        "{} (x{} weights, upsample conv resampled)",
        w.provenance, w.config.scale
    );
    ModelWeights::new(model.clone(), Form::Training, tensors, provenance).map_err(|source| TrainError::Checkpoint {
        path: path.to_path_buf(),
        source,
    })
}
