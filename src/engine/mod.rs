//! The fast CPU inference engine for the folded network.
//!
//! Why not burn for this: a 3x3 24->24 conv runs at ~12 GMAC/s in burn-flex on this machine
//! (`rt4ksr bench`), a seventh of the fp32 peak. Here each layer is one pass of a direct
//! convolution over zero-bordered planar feature maps, vectorised over 16 pixels of a row and
//! blocked over 6 output channels (12 AVX2 accumulators), with the next block's LayerNorm and
//! the activation fused into the epilogue, the pixel unshuffle folded into the input packing
//! and the pixel shuffle into the last layer's stores. Rows are split over the cores, buffers
//! live in a reusable [`Workspace`], and the dead HF branch is never computed.

mod kernels;
pub mod math;

use crate::imaging::Image;
use crate::model::{Activation, Form, ModelConfig};
use crate::{ModelWeights, TensorMap};
use rayon::prelude::*;

/// Pixels per vector block of a row.
pub const BLOCK: usize = 16;

/// What follows a layer's convolution, per pixel.
#[derive(Clone, Debug)]
pub struct Epilogue {
    pub activation: Option<Activation>,
    /// LayerNorm of the next block, applied to this layer's output (weight, bias).
    pub norm: Option<(Vec<f32>, Vec<f32>)>,
}

/// One 3x3 convolution with its weights packed as `[ci][ky][kx][co]`.
#[derive(Clone, Debug)]
pub struct Layer {
    pub ci: usize,
    pub co: usize,
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub epilogue: Epilogue,
}

impl Layer {
    fn new(weight: &crate::HostTensor, bias: &crate::HostTensor, epilogue: Epilogue) -> Self {
        let (co, ci) = (weight.shape[0], weight.shape[1]);
        let mut packed = vec![0f32; ci * 9 * co];
        for o in 0..co {
            for i in 0..ci {
                for k in 0..9 {
                    packed[(i * 9 + k) * co + o] = weight.data[(o * ci + i) * 9 + k];
                }
            }
        }
        Self {
            ci,
            co,
            weights: packed,
            bias: bias.data.clone(),
            epilogue,
        }
    }
}

/// Which instruction set the kernels use, chosen once at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx2Fma,
    Portable,
}

impl Isa {
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return Isa::Avx2Fma;
        }
        Isa::Portable
    }
}

/// The folded network, ready for the fast kernels.
#[derive(Clone, Debug)]
pub struct FastEngine {
    pub config: ModelConfig,
    /// Head, body blocks, tail (all F outputs), then the upsample conv.
    pub layers: Vec<Layer>,
    pub isa: Isa,
}

/// Buffers for one frame size, reused from frame to frame. Feature maps are stored row by row,
/// all channels of a row together: `[(y * C + c) * stride + x]`, with a zero border.
#[derive(Default)]
pub struct Workspace {
    h: usize,
    w: usize,
    stride: usize,
    input: Vec<f32>,
    ping: Vec<f32>,
    pong: Vec<f32>,
}

impl Workspace {
    fn prepare(&mut self, h: usize, w: usize, ci_head: usize, features: usize) {
        if (self.h, self.w) == (h, w) {
            return;
        }
        // Room for the 1-pixel zero border and for the last block to read past the row end.
        let stride = w.div_ceil(BLOCK) * BLOCK + BLOCK;
        let plane = (h + 2) * stride;
        *self = Self {
            h,
            w,
            stride,
            input: vec![0.0; ci_head * plane],
            ping: vec![0.0; features * plane],
            pong: vec![0.0; features * plane],
        };
    }
}

impl FastEngine {
    /// Whether the fast path implements this configuration: merge off (the HF branch is dead),
    /// no channel attention, no block residual, feature channels a multiple of 6.
    pub fn supports(config: &ModelConfig) -> bool {
        !config.merge_hf && !config.eca && !config.residual && config.feature_channels % 6 == 0
    }

    /// Builds the engine from weights (folding them first); `None` when unsupported.
    pub fn new(weights: &ModelWeights) -> Result<Option<Self>, crate::WeightError> {
        if !Self::supports(&weights.config) {
            return Ok(None);
        }
        let folded = weights.folded(false)?;
        Ok(Some(Self::from_folded(&folded.config, &folded.tensors, Isa::detect())))
    }

    /// As [`FastEngine::new`] with a chosen instruction set (for tests and benchmarks).
    pub fn from_folded(config: &ModelConfig, t: &TensorMap, isa: Isa) -> Self {
        debug_assert!(crate::weights::check_layout(config, Form::Folded, t).is_ok());
        let norm = |prefix: &str| {
            Some((
                t[&format!("{prefix}.weight")].data.clone(),
                t[&format!("{prefix}.bias")].data.clone(),
            ))
        };
        let body_norm = |i: usize| {
            if config.layernorm {
                norm(&format!("body.{i}.norm"))
            } else {
                None
            }
        };
        let after = |i: usize| {
            if i < config.num_blocks {
                body_norm(i)
            } else {
                norm("tail.0")
            }
        };
        let act = Some(config.activation);
        let mut layers = vec![Layer::new(
            &t["head.0.weight"],
            &t["head.0.bias"],
            Epilogue {
                activation: None,
                norm: after(0),
            },
        )];
        for i in 0..config.num_blocks {
            let p = format!("body.{i}.conv1.rep_conv");
            layers.push(Layer::new(
                &t[&format!("{p}.weight")],
                &t[&format!("{p}.bias")],
                Epilogue {
                    activation: act,
                    norm: after(i + 1),
                },
            ));
        }
        layers.push(Layer::new(
            &t["tail.1.rep_conv.weight"],
            &t["tail.1.rep_conv.bias"],
            Epilogue {
                activation: None,
                norm: None,
            },
        ));
        layers.push(Layer::new(
            &t["upsample.0.weight"],
            &t["upsample.0.bias"],
            Epilogue {
                activation: None,
                norm: None,
            },
        ));
        Self {
            config: config.clone(),
            layers,
            isa,
        }
    }

    /// Upscales an RGB image with even sides; output not clamped.
    pub fn upscale(&self, rgb: &Image<f32>, ws: &mut Workspace) -> Result<Image<f32>, String> {
        let mut out = Image::zeros(0, 0, 0);
        self.upscale_into(rgb, ws, &mut out)?;
        Ok(out)
    }

    /// As [`FastEngine::upscale`], writing into `out`, which is reallocated only when the frame
    /// size changes: for streams of frames, where fresh 4K buffers would cost page faults.
    pub fn upscale_into(&self, rgb: &Image<f32>, ws: &mut Workspace, out: &mut Image<f32>) -> Result<(), String> {
        crate::model::network::check_input_size(&self.config, rgb.height, rgb.width)?;
        if rgb.channels != 3 {
            return Err(format!("the network takes RGB images, got {} channels", rgb.channels));
        }
        let (h, w) = (rgb.height / 2, rgb.width / 2);
        let f = self.config.feature_channels;
        ws.prepare(h, w, 12, f);
        let stride = ws.stride;
        // Pixel unshuffle into the zero-bordered head input: channel c*4 + dy*2 + dx.
        for c in 0..3 {
            let src = rgb.plane(c);
            for dy in 0..2 {
                for dx in 0..2 {
                    let ch = c * 4 + dy * 2 + dx;
                    for y in 0..h {
                        let row = &src[(2 * y + dy) * rgb.width..][..rgb.width];
                        let out = &mut ws.input[((y + 1) * 12 + ch) * stride + 1..][..w];
                        for (x, o) in out.iter_mut().enumerate() {
                            *o = row[2 * x + dx];
                        }
                    }
                }
            }
        }
        let geometry = Geometry { h, w, stride };
        let n = self.layers.len();
        let (ws_input, ping, pong) = (&ws.input, &mut ws.ping, &mut ws.pong);
        run_layer(self.isa, &self.layers[0], ws_input, Target::Features(ping), geometry);
        for (i, layer) in self.layers[1..n - 1].iter().enumerate() {
            let (src, dst) = if i % 2 == 0 {
                (&*ping, &mut *pong)
            } else {
                (&*pong, &mut *ping)
            };
            run_layer(self.isa, layer, src, Target::Features(dst), geometry);
        }
        let last_src = if (n - 2) % 2 == 1 { &*pong } else { &*ping };
        let s = self.config.scale;
        if (out.channels, out.height, out.width) != (3, rgb.height * s, rgb.width * s) {
            *out = Image::zeros(3, rgb.height * s, rgb.width * s);
        }
        run_layer(
            self.isa,
            &self.layers[n - 1],
            last_src,
            Target::Shuffled { image: out, scale: s },
            geometry,
        );
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Geometry {
    h: usize,
    w: usize,
    stride: usize,
}

/// Where a layer's output goes.
enum Target<'a> {
    /// A zero-bordered planar feature map.
    Features(&'a mut [f32]),
    /// The final image, through PixelShuffle(2s).
    Shuffled { image: &'a mut Image<f32>, scale: usize },
}

/// A raw pointer that may be shared by the row workers: each writes disjoint rows.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

fn run_layer(isa: Isa, layer: &Layer, src: &[f32], target: Target<'_>, g: Geometry) {
    let (out, shuffle, out_w) = match target {
        Target::Features(buf) => (SharedOut(buf.as_mut_ptr()), None, 0),
        Target::Shuffled { image, scale } => {
            let w = image.width;
            (SharedOut(image.data.as_mut_ptr()), Some(2 * scale), w)
        }
    };
    let out_h = g.h * shuffle.unwrap_or(1);
    // Rows in chunks small enough to balance the cores, large enough to amortise the task.
    let rows_per_task = g.h.div_ceil(rayon::current_num_threads() * 8).max(1);
    (0..g.h).into_par_iter().step_by(rows_per_task).for_each(|y0| {
        let out = out;
        let mut block = vec![0f32; layer.co * BLOCK];
        for y in y0..(y0 + rows_per_task).min(g.h) {
            for x0 in (0..g.w).step_by(BLOCK) {
                kernels::conv_block(isa, layer, src, g.stride, y, x0, &mut block);
                kernels::epilogue(isa, &layer.epilogue, layer.co, &mut block);
                let valid = BLOCK.min(g.w - x0);
                // SAFETY: rows y are owned by this task; every index is inside the buffer
                // sized for this geometry (checked by the debug asserts).
                unsafe {
                    match shuffle {
                        None => {
                            for c in 0..layer.co {
                                let at = ((y + 1) * layer.co + c) * g.stride + x0 + 1;
                                debug_assert!(at + valid <= layer.co * (g.h + 2) * g.stride);
                                let from = block[c * BLOCK..].as_ptr();
                                if valid == BLOCK {
                                    // A fixed-size copy compiles to two vector moves, where a
                                    // memmove call per 64 bytes cost 5% of the frame.
                                    (out.0.add(at) as *mut [f32; BLOCK])
                                        .write_unaligned(*(from as *const [f32; BLOCK]));
                                } else {
                                    std::ptr::copy_nonoverlapping(from, out.0.add(at), valid);
                                }
                            }
                        }
                        Some(r) => {
                            let out_plane = out_h * out_w;
                            // PixelShuffle(r): conv channel c = (ch, i, j) of pixel x goes to
                            // output row y*r + i, column x*r + j of plane ch.
                            for c in 0..layer.co {
                                let (ch, i, j) = (c / (r * r), (c / r) % r, c % r);
                                let row = out.0.add(ch * out_plane + (y * r + i) * out_w + x0 * r + j);
                                debug_assert!(
                                    ch * out_plane + (y * r + i) * out_w + (x0 + valid - 1) * r + j < 3 * out_plane
                                );
                                for (p, &v) in block[c * BLOCK..][..valid].iter().enumerate() {
                                    *row.add(p * r) = v;
                                }
                            }
                        }
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::perturbed_weights;

    #[test]
    fn packing_puts_output_channels_innermost() {
        let w = crate::HostTensor::new(vec![2, 1, 3, 3], (0..18).map(|v| v as f32).collect());
        let b = crate::HostTensor::new(vec![2], vec![0.0, 0.0]);
        let layer = Layer::new(
            &w,
            &b,
            Epilogue {
                activation: None,
                norm: None,
            },
        );
        assert_eq!(&layer.weights[..4], &[0.0, 9.0, 1.0, 10.0]);
    }

    #[test]
    fn unsupported_configurations_fall_back() {
        let mut c = ModelConfig::official(2);
        assert!(FastEngine::supports(&c));
        c.eca = true;
        assert!(!FastEngine::supports(&c));
        let w = perturbed_weights(&c, Form::Folded, 1);
        assert!(FastEngine::new(&w).unwrap().is_none());
    }
}

/// Measures the machine's fp32 multiply-accumulate peak: every core runs independent FMA chains
/// (enough to hide the FMA latency) for about `millis` ms. Returns GMAC/s over all cores.
pub fn measure_peak_gmacs(millis: u64) -> f64 {
    let threads = rayon::current_num_threads();
    let per_thread: Vec<f64> = (0..threads)
        .into_par_iter()
        .map(|_| {
            let start = std::time::Instant::now();
            let mut macs = 0u64;
            while start.elapsed().as_millis() < millis as u128 {
                macs += kernels::fma_burst(Isa::detect());
            }
            macs as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    per_thread.iter().sum()
}
