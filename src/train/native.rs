//! A hand-written forward and backward pass of the training-form network on the CPU, for the
//! configurations without the merged HF branch or channel attention (the official one among
//! them). Why it exists: a training step through burn-flex's autodiff spends more time around
//! its GEMMs (im2col, col2im, copies, memsets) than in them (docs/training.md has the profile).
//! Here every convolution is a few GEMMs straight on the feature maps:
//!
//! Each image's maps live on a grid with a one-pixel border, `[channel][(h + 2) * (w + 2)]`.
//! A 3x3 convolution is then nine GEMMs whose inputs are the same maps shifted by one tap,
//! with no im2col copy; outputs computed at border positions are garbage and are overwritten
//! (or carry a zero gradient). The border also gives the block's "expand bias as padding" for
//! free: a 1x1 conv of a map whose border is zero puts its bias there.
//!
//! Images are independent until the weight gradients, which are summed in image order, so a
//! step is deterministic whatever the thread count. The optimizer stays burn's.

use super::data::Batch;
use super::loss::{LossWeights, luma_weights};
use crate::engine::math::erf;
use crate::model::network::{LAYERNORM_EPS, LRELU_SLOPE, gaussian_taps};
use crate::model::{Activation, ModelConfig};
use crate::{HostTensor, TensorMap};
use rayon::prelude::*;

/// Whether [`loss_and_gradients`] handles this configuration.
pub fn supports(config: &ModelConfig) -> bool {
    !config.merge_hf && !config.eca
}

/// The losses of one batch and the gradient of `l1 + hf * loss.hf + luma * loss.luma` for
/// every live parameter (the dead HF branch has none, as with burn's autodiff).
pub struct StepGradients {
    pub l1: f64,
    pub hf: f64,
    pub luma: f64,
    pub grads: TensorMap,
}

/// Forward and backward of a batch with the training-form `weights`.
pub fn loss_and_gradients(
    config: &ModelConfig,
    weights: &TensorMap,
    batch: &Batch,
    loss: LossWeights,
) -> StepGradients {
    assert!(
        supports(config),
        "the native path has no merged HF branch or channel attention"
    );
    let (s, patch) = (config.scale, batch.lr_patch);
    let (lr_len, hr_len) = (3 * patch * patch, 3 * patch * patch * s * s);
    assert!(patch.is_multiple_of(2) && batch.lr.len() == batch.size * lr_len && batch.hr.len() == batch.size * hr_len);
    let net = Net::new(config, weights);
    let count = (batch.size * hr_len) as f32;
    let per_image: Vec<(ImageLosses, TensorMap)> = (0..batch.size)
        .into_par_iter()
        .map(|i| {
            let lr = &batch.lr[i * lr_len..][..lr_len];
            let hr = &batch.hr[i * hr_len..][..hr_len];
            net.image_gradients(lr, hr, patch, count, loss)
        })
        .collect();
    let mut total = StepGradients {
        l1: 0.0,
        hf: 0.0,
        luma: 0.0,
        grads: TensorMap::new(),
    };
    for (sums, grads) in per_image {
        total.l1 += sums.l1;
        total.hf += sums.hf;
        total.luma += sums.luma;
        for (name, g) in grads {
            match total.grads.get_mut(&name) {
                Some(sum) => sum.data.iter_mut().zip(&g.data).for_each(|(a, b)| *a += b),
                None => {
                    total.grads.insert(name, g);
                }
            }
        }
    }
    total.l1 /= count as f64;
    total.hf /= count as f64;
    // Luma is one value a pixel, RGB three.
    total.luma /= count as f64 / 3.0;
    for (name, g) in total.grads.iter_mut() {
        g.shape = weights[name].shape.clone();
    }
    total
}

/// The padded grid of one image's feature maps.
#[derive(Clone, Copy)]
struct Grid {
    h: usize,
    w: usize,
}

impl Grid {
    fn stride(self) -> usize {
        self.w + 2
    }

    fn plane(self) -> usize {
        (self.h + 2) * (self.w + 2)
    }

    fn at(self, y: usize, x: usize) -> usize {
        (y + 1) * self.stride() + x + 1
    }

    /// The positions whose 3x3 neighbourhood lies inside the plane (all inner pixels).
    fn span(self) -> std::ops::Range<usize> {
        self.stride() + 1..self.plane() - self.stride() - 1
    }

    fn zero_border(self, maps: &mut [f32]) {
        let (stride, plane) = (self.stride(), self.plane());
        for map in maps.chunks_exact_mut(plane) {
            map[..stride].fill(0.0);
            map[plane - stride..].fill(0.0);
            for y in 1..=self.h {
                map[y * stride] = 0.0;
                map[y * stride + stride - 1] = 0.0;
            }
        }
    }
}

/// A strided matrix inside a slice.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    offset: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> View<'a> {
    fn new(data: &'a [f32], offset: usize, row_stride: usize, col_stride: usize) -> Self {
        Self {
            data,
            offset,
            row_stride,
            col_stride,
        }
    }

    fn check(&self, rows: usize, cols: usize) {
        let last = self.offset + (rows - 1) * self.row_stride + (cols - 1) * self.col_stride;
        assert!(last < self.data.len(), "matrix view reads past its slice");
    }
}

/// `dst[m x n] (+)= lhs[m x k] * rhs[k x n]`; `dst` is (slice, offset, row stride, col stride).
#[allow(clippy::too_many_arguments)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_offset: usize,
    dst_rs: usize,
    dst_cs: usize,
    accumulate: bool,
    lhs: View,
    rhs: View,
) {
    lhs.check(m, k);
    rhs.check(k, n);
    let last = dst_offset + (m - 1) * dst_rs + (n - 1) * dst_cs;
    assert!(last < dst.len(), "matrix product writes past its slice");
    // SAFETY: every index the product touches was bounds-checked above; `dst` is borrowed
    // mutably, so it cannot alias the read-only inputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(dst_offset),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// A convolution's parameters and where its gradients go.
struct Conv<'a> {
    name: String,
    weight: &'a [f32],
    bias: &'a [f32],
    co: usize,
    ci: usize,
    /// 1 or 3.
    k: usize,
}

impl Conv<'_> {
    /// The output positions computed (a 1x1 conv: the whole plane; a 3x3: the inner span) and,
    /// per tap, where the input read for the first of them starts.
    fn layout(&self, grid: Grid) -> (std::ops::Range<usize>, Vec<usize>) {
        let span = if self.k == 1 { 0..grid.plane() } else { grid.span() };
        let starts = (0..self.k * self.k)
            .map(|tap| (span.start as isize + tap_shift(self.k, tap, grid.stride())) as usize)
            .collect();
        (span, starts)
    }

    /// `out = conv(input) + bias` on the grid; a 3x3 conv writes the inner span only.
    fn forward(&self, grid: Grid, input: &[f32], out: &mut [f32]) {
        let plane = grid.plane();
        let (span, starts) = self.layout(grid);
        for (c, map) in out.chunks_exact_mut(plane).enumerate() {
            map[span.clone()].fill(self.bias[c]);
        }
        let kk = self.k * self.k;
        for (tap, &start) in starts.iter().enumerate() {
            let lhs = View::new(self.weight, tap, self.ci * kk, kk);
            let rhs = View::new(input, start, plane, 1);
            matmul(self.co, span.len(), self.ci, out, span.start, plane, 1, true, lhs, rhs);
        }
    }

    /// Accumulates the weight and bias gradients for `d_out` (zero wherever the output is not
    /// used), and, when asked, `d_input += conv^T(d_out)` over the whole plane.
    fn backward(&self, grid: Grid, input: &[f32], d_out: &[f32], d_input: Option<&mut [f32]>, grads: &mut TensorMap) {
        let plane = grid.plane();
        let (span, starts) = self.layout(grid);
        let kk = self.k * self.k;
        let (mut dw, mut db) = take_grads(grads, &self.name, self.weight.len(), self.co);
        for (c, map) in d_out.chunks_exact(plane).enumerate() {
            db[c] += map[span.clone()].iter().sum::<f32>();
        }
        for (tap, &start) in starts.iter().enumerate() {
            let lhs = View::new(d_out, span.start, plane, 1);
            let rhs = View::new(input, start, 1, plane);
            matmul(
                self.co,
                self.ci,
                span.len(),
                &mut dw,
                tap,
                self.ci * kk,
                kk,
                true,
                lhs,
                rhs,
            );
        }
        put_grads(grads, &self.name, dw, db);
        if let Some(d_input) = d_input {
            for (tap, &start) in starts.iter().enumerate() {
                let lhs = View::new(self.weight, tap, kk, self.ci * kk);
                let rhs = View::new(d_out, span.start, plane, 1);
                matmul(self.ci, span.len(), self.co, d_input, start, plane, 1, true, lhs, rhs);
            }
        }
    }
}

/// The plane offset of tap `t` of a `k x k` kernel relative to the output position.
fn tap_shift(k: usize, t: usize, stride: usize) -> isize {
    let r = (k / 2) as isize;
    let (ky, kx) = ((t / k) as isize - r, (t % k) as isize - r);
    ky * stride as isize + kx
}

/// A layer's weight and bias gradients so far (zero at first), taken out of the map.
fn take_grads(grads: &mut TensorMap, name: &str, weights: usize, bias: usize) -> (Vec<f32>, Vec<f32>) {
    let mut take = |suffix: &str, len: usize| {
        grads
            .remove(&format!("{name}.{suffix}"))
            .map_or_else(|| vec![0.0; len], |t| t.data)
    };
    (take("weight", weights), take("bias", bias))
}

fn put_grads(grads: &mut TensorMap, name: &str, weight: Vec<f32>, bias: Vec<f32>) {
    for (suffix, data) in [("weight", weight), ("bias", bias)] {
        grads.insert(format!("{name}.{suffix}"), HostTensor::new(vec![data.len()], data));
    }
}

/// The reparameterizable block in its training form.
struct Block<'a> {
    expand: Conv<'a>,
    fea: Conv<'a>,
    reduce: Conv<'a>,
}

/// What one block's backward pass needs from its forward pass.
struct BlockTape {
    /// The block input (LayerNorm output when there is one), zero on the border.
    z: Vec<f32>,
    expanded: Vec<f32>,
    features: Vec<f32>,
}

impl Block<'_> {
    /// `reduce(fea(expand(z)) + expand(z)) + z`, zero on the border.
    fn forward(&self, grid: Grid, z: Vec<f32>) -> (Vec<f32>, BlockTape) {
        let plane = grid.plane();
        let mut expanded = vec![0.0; self.expand.co * plane];
        self.expand.forward(grid, &z, &mut expanded);
        let mut features = vec![0.0; self.fea.co * plane];
        self.fea.forward(grid, &expanded, &mut features);
        features.iter_mut().zip(&expanded).for_each(|(f, e)| *f += e);
        let mut out = vec![0.0; self.reduce.co * plane];
        self.reduce.forward(grid, &features, &mut out);
        out.iter_mut().zip(&z).for_each(|(o, z)| *o += z);
        grid.zero_border(&mut out);
        (out, BlockTape { z, expanded, features })
    }

    /// Returns the gradient of the block input from that of its output (zero on the border).
    fn backward(&self, grid: Grid, tape: &BlockTape, d_out: &[f32], grads: &mut TensorMap) -> Vec<f32> {
        let plane = grid.plane();
        let mut d_features = vec![0.0; self.fea.co * plane];
        self.reduce
            .backward(grid, &tape.features, d_out, Some(&mut d_features), grads);
        // The identity around `fea` is added on the inner span, where d_features lives.
        let mut d_expanded = d_features.clone();
        self.fea
            .backward(grid, &tape.expanded, &d_features, Some(&mut d_expanded), grads);
        let mut d_z = d_out.to_vec();
        self.expand.backward(grid, &tape.z, &d_expanded, Some(&mut d_z), grads);
        grid.zero_border(&mut d_z);
        d_z
    }
}

/// LayerNorm over channels at every inner position.
struct Norm<'a> {
    name: String,
    weight: &'a [f32],
    bias: &'a [f32],
}

struct NormTape {
    normed: Vec<f32>,
    inv_std: Vec<f32>,
}

impl Norm<'_> {
    fn forward(&self, grid: Grid, x: &[f32]) -> (Vec<f32>, NormTape) {
        let plane = grid.plane();
        let c = self.weight.len();
        let mut mean = vec![0f32; plane];
        for map in x.chunks_exact(plane) {
            mean.iter_mut().zip(map).for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= c as f32);
        let mut normed: Vec<f32> = x
            .chunks_exact(plane)
            .flat_map(|map| map.iter().zip(&mean).map(|(v, m)| v - m))
            .collect();
        let mut var = vec![0f32; plane];
        for map in normed.chunks_exact(plane) {
            var.iter_mut().zip(map).for_each(|(s, v)| *s += v * v);
        }
        let inv_std: Vec<f32> = var
            .iter()
            .map(|s| 1.0 / (s / c as f32 + LAYERNORM_EPS as f32).sqrt())
            .collect();
        for map in normed.chunks_exact_mut(plane) {
            map.iter_mut().zip(&inv_std).for_each(|(v, r)| *v *= r);
        }
        grid.zero_border(&mut normed);
        let mut out = normed.clone();
        for (ch, map) in out.chunks_exact_mut(plane).enumerate() {
            map.iter_mut().for_each(|v| *v = *v * self.weight[ch] + self.bias[ch]);
        }
        grid.zero_border(&mut out);
        (out, NormTape { normed, inv_std })
    }

    fn backward(&self, grid: Grid, tape: &NormTape, d_out: &[f32], grads: &mut TensorMap) -> Vec<f32> {
        let plane = grid.plane();
        let c = self.weight.len();
        let (mut dw, mut db) = take_grads(grads, &self.name, c, c);
        let mut d_normed = vec![0f32; c * plane];
        let (mut mean_d, mut mean_dn) = (vec![0f32; plane], vec![0f32; plane]);
        for ch in 0..c {
            let (d, n) = (&d_out[ch * plane..][..plane], &tape.normed[ch * plane..][..plane]);
            let dn = &mut d_normed[ch * plane..][..plane];
            for q in 0..plane {
                dw[ch] += d[q] * n[q];
                db[ch] += d[q];
                dn[q] = d[q] * self.weight[ch];
                mean_d[q] += dn[q];
                mean_dn[q] += dn[q] * n[q];
            }
        }
        for ch in 0..c {
            let n = &tape.normed[ch * plane..][..plane];
            let dn = &mut d_normed[ch * plane..][..plane];
            for q in 0..plane {
                dn[q] = tape.inv_std[q] * (dn[q] - (mean_d[q] + n[q] * mean_dn[q]) / c as f32);
            }
        }
        put_grads(grads, &self.name, dw, db);
        grid.zero_border(&mut d_normed);
        d_normed
    }
}

/// The activation of `x` and its derivative there.
fn activate(kind: Activation, x: f32) -> (f32, f32) {
    match kind {
        Activation::Gelu => {
            let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
            let density =
                (-0.5 * x * x).exp() * (0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2);
            (x * cdf, cdf + x * density)
        }
        Activation::Relu => (x.max(0.0), f32::from(x > 0.0)),
        Activation::Lrelu if x >= 0.0 => (x, 1.0),
        Activation::Lrelu => (x * LRELU_SLOPE as f32, LRELU_SLOPE as f32),
    }
}

/// The network's live parameters.
struct Net<'a> {
    config: &'a ModelConfig,
    head: Conv<'a>,
    body: Vec<(Option<Norm<'a>>, Block<'a>)>,
    tail_norm: Norm<'a>,
    tail: Block<'a>,
    upsample: Conv<'a>,
}

impl<'a> Net<'a> {
    fn new(config: &'a ModelConfig, weights: &'a TensorMap) -> Self {
        let f = config.feature_channels;
        let tensor = |name: &str| -> &'a [f32] {
            &weights
                .get(name)
                .unwrap_or_else(|| panic!("training-form weights hold {name}"))
                .data
        };
        let conv = |name: String, co, ci, k| Conv {
            weight: tensor(&format!("{name}.weight")),
            bias: tensor(&format!("{name}.bias")),
            name,
            co,
            ci,
            k,
        };
        let block = |prefix: &str| Block {
            expand: conv(format!("{prefix}.expand_conv"), 2 * f, f, 1),
            fea: conv(format!("{prefix}.fea_conv"), 2 * f, 2 * f, 3),
            reduce: conv(format!("{prefix}.reduce_conv"), f, 2 * f, 1),
        };
        let norm = |name: String| Norm {
            weight: tensor(&format!("{name}.weight")),
            bias: tensor(&format!("{name}.bias")),
            name,
        };
        let r = 2 * config.scale;
        Self {
            config,
            head: conv("head.0".into(), f, 12, 3),
            body: (0..config.num_blocks)
                .map(|i| {
                    let norm = config.layernorm.then(|| norm(format!("body.{i}.norm")));
                    (norm, block(&format!("body.{i}.conv1")))
                })
                .collect(),
            tail_norm: norm("tail.0".into()),
            tail: block("tail.1"),
            upsample: conv("upsample.0".into(), 3 * r * r, f, 3),
        }
    }

    /// Loss sums and weight gradients of one image; `count` is the batch's number of HR
    /// values (the losses are means over the batch).
    fn image_gradients(
        &self,
        lr: &[f32],
        hr: &[f32],
        patch: usize,
        count: f32,
        loss: LossWeights,
    ) -> (ImageLosses, TensorMap) {
        let grid = Grid {
            h: patch / 2,
            w: patch / 2,
        };
        let plane = grid.plane();
        let f = self.config.feature_channels;
        let act = self.config.activation;
        let mut grads = TensorMap::new();

        // Forward.
        let input = unshuffle_into_grid(lr, patch, grid);
        let mut head = vec![0.0; f * plane];
        self.head.forward(grid, &input, &mut head);
        grid.zero_border(&mut head);
        let mut x = head;
        let mut tapes = Vec::with_capacity(self.body.len());
        for (norm, block) in &self.body {
            let (z, norm_tape) = match norm {
                Some(norm) => {
                    let (z, tape) = norm.forward(grid, &x);
                    (z, Some(tape))
                }
                None => (x.clone(), None),
            };
            let (mut y, block_tape) = block.forward(grid, z);
            // y becomes act(y); `slope` keeps act' there for the backward pass.
            let mut slope = vec![0f32; y.len()];
            for (v, d) in y.iter_mut().zip(slope.iter_mut()) {
                (*v, *d) = activate(act, *v);
            }
            if self.config.residual {
                y.iter_mut().zip(&x).for_each(|(y, x)| *y += x);
            }
            tapes.push((norm_tape, block_tape, slope));
            x = y;
        }
        let (z, tail_norm_tape) = self.tail_norm.forward(grid, &x);
        let (tail_out, tail_tape) = self.tail.forward(grid, z);
        let mut pre_shuffle = vec![0.0; self.upsample.co * plane];
        self.upsample.forward(grid, &tail_out, &mut pre_shuffle);
        let sr = shuffle_from_grid(&pre_shuffle, grid, 2 * self.config.scale);

        // Loss and its gradient.
        let side = patch * self.config.scale;
        let (sums, d_sr) = loss_gradient(&sr, hr, side, count, loss);

        // Backward.
        let d_pre_shuffle = unshuffle_gradient(&d_sr, grid, 2 * self.config.scale);
        let mut d_x = vec![0.0; f * plane];
        self.upsample
            .backward(grid, &tail_out, &d_pre_shuffle, Some(&mut d_x), &mut grads);
        grid.zero_border(&mut d_x);
        let d_z = self.tail.backward(grid, &tail_tape, &d_x, &mut grads);
        let mut d_x = self.tail_norm.backward(grid, &tail_norm_tape, &d_z, &mut grads);
        for ((norm, block), (norm_tape, block_tape, slope)) in self.body.iter().zip(&tapes).rev() {
            let d_pre: Vec<f32> = d_x.iter().zip(slope).map(|(d, s)| d * s).collect();
            let d_z = block.backward(grid, block_tape, &d_pre, &mut grads);
            let d_in = match (norm, norm_tape) {
                (Some(norm), Some(tape)) => norm.backward(grid, tape, &d_z, &mut grads),
                _ => d_z,
            };
            if self.config.residual {
                d_x.iter_mut().zip(&d_in).for_each(|(d, g)| *d += g);
            } else {
                d_x = d_in;
            }
        }
        self.head.backward(grid, &input, &d_x, None, &mut grads);
        (sums, grads)
    }
}

/// `[3, p, p]` -> the grid's `[12, plane]`, channel `c * 4 + dy * 2 + dx` (PixelUnshuffle(2)).
fn unshuffle_into_grid(lr: &[f32], patch: usize, grid: Grid) -> Vec<f32> {
    let plane = grid.plane();
    let mut out = vec![0.0; 12 * plane];
    for c in 0..3 {
        for y in 0..patch {
            for x in 0..patch {
                let ch = c * 4 + (y % 2) * 2 + x % 2;
                out[ch * plane + grid.at(y / 2, x / 2)] = lr[(c * patch + y) * patch + x];
            }
        }
    }
    out
}

/// The grid's `[3 r^2, plane]` -> `[3, h r, w r]` (PixelShuffle(r)).
fn shuffle_from_grid(maps: &[f32], grid: Grid, r: usize) -> Vec<f32> {
    let (side_y, side_x) = (grid.h * r, grid.w * r);
    let mut out = vec![0.0; 3 * side_y * side_x];
    for c in 0..3 {
        for y in 0..side_y {
            for x in 0..side_x {
                let ch = c * r * r + (y % r) * r + x % r;
                out[(c * side_y + y) * side_x + x] = maps[ch * grid.plane() + grid.at(y / r, x / r)];
            }
        }
    }
    out
}

/// The adjoint of [`shuffle_from_grid`]: zero off the inner pixels.
fn unshuffle_gradient(d_out: &[f32], grid: Grid, r: usize) -> Vec<f32> {
    let (side_y, side_x) = (grid.h * r, grid.w * r);
    let mut maps = vec![0.0; 3 * r * r * grid.plane()];
    for c in 0..3 {
        for y in 0..side_y {
            for x in 0..side_x {
                let ch = c * r * r + (y % r) * r + x % r;
                maps[ch * grid.plane() + grid.at(y / r, x / r)] = d_out[(c * side_y + y) * side_x + x];
            }
        }
    }
    maps
}

/// One image's sums of |SR - HR|, |hf(SR) - hf(HR)| (over its RGB values) and |Y(SR) - Y(HR)|
/// (over its pixels).
struct ImageLosses {
    l1: f64,
    hf: f64,
    luma: f64,
}

/// The sums of one image's losses, and the gradient of the batch loss `l1 / count +
/// loss.hf * hf / count + loss.luma * luma / (count / 3)` with respect to SR (`count` RGB
/// values, a third as many pixels). The HF difference is `hf(SR - HR)`, as `x - blur(x)` is
/// linear; so is the luma difference.
fn loss_gradient(sr: &[f32], hr: &[f32], side: usize, count: f32, loss: LossWeights) -> (ImageLosses, Vec<f32>) {
    let diff: Vec<f32> = sr.iter().zip(hr).map(|(s, h)| s - h).collect();
    let mut blurred = diff.clone();
    for plane in blurred.chunks_exact_mut(side * side) {
        blur(plane, side, false);
    }
    let hf_diff: Vec<f32> = diff.iter().zip(&blurred).map(|(d, b)| d - b).collect();
    let l1 = diff.iter().map(|d| d.abs() as f64).sum();
    let hf = hf_diff.iter().map(|d| d.abs() as f64).sum();
    let sign = |v: f32| {
        if v > 0.0 {
            1.0
        } else if v < 0.0 {
            -1.0
        } else {
            0.0
        }
    };
    let d_hf: Vec<f32> = hf_diff.iter().map(|&v| loss.hf * sign(v) / count).collect();
    let mut d_blur = d_hf.clone();
    for plane in d_blur.chunks_exact_mut(side * side) {
        blur(plane, side, true);
    }
    let mut d_sr: Vec<f32> = diff
        .iter()
        .zip(d_hf.iter().zip(&d_blur))
        .map(|(&d, (&g, &gb))| sign(d) / count + g - gb)
        .collect();
    let plane = side * side;
    let luma_of = luma_weights();
    let mut luma = 0.0;
    for p in 0..plane {
        let y: f32 = (0..3).map(|c| luma_of[c] * diff[c * plane + p]).sum();
        luma += y.abs() as f64;
        if loss.luma != 0.0 {
            let d_y = loss.luma * sign(y) / (count / 3.0);
            for c in 0..3 {
                d_sr[c * plane + p] += d_y * luma_of[c];
            }
        }
    }
    (ImageLosses { l1, hf, luma }, d_sr)
}

/// The 5x5, sigma 1 Gaussian with reflect padding on one square plane, in place, or its
/// adjoint (`transpose`), pass by pass.
fn blur(plane: &mut [f32], side: usize, transpose: bool) {
    assert!(side >= 3, "reflect padding needs sides of at least 3");
    let taps = gaussian_taps();
    let reflect = |i: isize| -> usize {
        let n = side as isize;
        let i = if i < 0 { -i } else { i };
        (if i >= n { 2 * (n - 1) - i } else { i }) as usize
    };
    let mut line = vec![0f32; side];
    for vertical in [false, true] {
        for a in 0..side {
            let index = |b: usize| if vertical { b * side + a } else { a * side + b };
            line.iter_mut().for_each(|v| *v = 0.0);
            for i in 0..side {
                for (t, k) in taps.iter().enumerate() {
                    let j = reflect(i as isize + t as isize - 2);
                    if transpose {
                        line[j] += k * plane[index(i)];
                    } else {
                        line[i] += k * plane[index(j)];
                    }
                }
            }
            for (b, v) in line.iter().enumerate() {
                plane[index(b)] = *v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::random_weights;
    use crate::model::network::param_id;
    use crate::model::{Form, Rt4ksr};
    use crate::train::loss::losses;
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor, TensorData};
    use rand::{Rng, SeedableRng};

    /// Burn's autodiff on the same batch: (l1, hf, luma, gradients by tensor name).
    fn burn_reference(
        config: &ModelConfig,
        weights: &TensorMap,
        batch: &Batch,
        loss: LossWeights,
    ) -> ([f64; 3], TensorMap) {
        let device = Device::flex().autodiff();
        let model_weights = crate::ModelWeights::new(config.clone(), Form::Training, weights.clone(), "test").unwrap();
        let model = Rt4ksr::from_weights(&model_weights, &device);
        let (s, n, p) = (config.scale, batch.size, batch.lr_patch);
        let x = Tensor::<4>::from_data(TensorData::new(batch.lr.clone(), [n, 3, p, p]), &device);
        let y = Tensor::<4>::from_data(TensorData::new(batch.hr.clone(), [n, 3, p * s, p * s]), &device);
        let sr = model.forward(x);
        let terms = losses(sr, y, loss);
        let mut grads = GradientsParams::from_grads(terms.total.backward(), &model);
        let mut out = TensorMap::new();
        for (name, t) in weights {
            let g = if t.shape.len() == 4 {
                grads.remove::<4>(param_id(name)).map(crate::model::network::host)
            } else {
                grads.remove::<1>(param_id(name)).map(crate::model::network::host)
            };
            if let Some(g) = g {
                out.insert(name.clone(), g);
            }
        }
        let scalar = |t: Tensor<1>| t.into_scalar::<f32>() as f64;
        ([scalar(terms.l1), scalar(terms.hf), scalar(terms.luma)], out)
    }

    fn agree_with_burn(config: ModelConfig, patch: usize, loss: LossWeights) {
        let batch = 2;
        let s = config.scale;
        let mut weights = random_weights(&config, Form::Training, 7).tensors;
        // Away from the initialisation's unit norms and zero biases, so every term matters.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for t in weights.values_mut() {
            t.data.iter_mut().for_each(|v| *v += rng.random_range(-0.05..0.05));
        }
        let lr: Vec<f32> = (0..batch * 3 * patch * patch)
            .map(|_| rng.random_range(0.0..1.0))
            .collect();
        let hr: Vec<f32> = (0..batch * 3 * patch * patch * s * s)
            .map(|_| rng.random_range(0.0..1.0))
            .collect();
        let batch = Batch {
            lr,
            hr,
            size: batch,
            lr_patch: patch,
        };
        let ours = loss_and_gradients(&config, &weights, &batch, loss);
        let ([l1, hf, luma], theirs) = burn_reference(&config, &weights, &batch, loss);
        assert!((ours.l1 - l1).abs() < 1e-5 * l1, "l1 {} vs burn {l1}", ours.l1);
        assert!((ours.hf - hf).abs() < 1e-5 * hf, "hf {} vs burn {hf}", ours.hf);
        assert!(
            (ours.luma - luma).abs() < 1e-5 * luma,
            "luma {} vs burn {luma}",
            ours.luma
        );
        let names = |m: &TensorMap| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&ours.grads), names(&theirs), "the same parameters get gradients");
        for (name, want) in &theirs {
            let got = &ours.grads[name];
            assert_eq!(got.shape, want.shape, "{name}");
            let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
            let worst = got
                .data
                .iter()
                .zip(&want.data)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                scale > 0.0 && worst <= 2e-4 * scale,
                "{name}: worst {worst:e} of {scale:e}"
            );
        }
    }

    #[test]
    fn official_configuration_matches_burn_autodiff_at_x2() {
        agree_with_burn(ModelConfig::official(2), 8, LossWeights { hf: 0.7, luma: 0.0 });
    }

    #[test]
    fn the_luma_loss_matches_burn_autodiff() {
        // Alone beside L1, and with the HF loss, at both scales the shipped models train.
        agree_with_burn(ModelConfig::official(2), 8, LossWeights { hf: 0.0, luma: 2.0 });
        agree_with_burn(ModelConfig::official(3), 6, LossWeights { hf: 0.7, luma: 0.5 });
    }

    #[test]
    fn official_configuration_matches_burn_autodiff_at_x3() {
        agree_with_burn(ModelConfig::official(3), 6, LossWeights { hf: 0.7, luma: 0.0 });
    }

    #[test]
    fn residual_blocks_without_layernorm_match_burn_autodiff() {
        for activation in [Activation::Relu, Activation::Lrelu] {
            let config = ModelConfig {
                layernorm: false,
                residual: true,
                activation,
                num_blocks: 2,
                ..ModelConfig::official(2)
            };
            agree_with_burn(config, 8, LossWeights { hf: 0.7, luma: 0.0 });
        }
    }

    #[test]
    fn gradients_are_the_same_bits_on_one_thread_and_on_three() {
        let config = ModelConfig::official(2);
        let weights = random_weights(&config, Form::Training, 5).tensors;
        let batch = Batch {
            lr: (0..5 * 3 * 64).map(|i| (i % 13) as f32 / 13.0).collect(),
            hr: (0..5 * 3 * 256).map(|i| (i % 7) as f32 / 7.0).collect(),
            size: 5,
            lr_patch: 8,
        };
        let on = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| loss_and_gradients(&config, &weights, &batch, LossWeights { hf: 1.0, luma: 1.0 }))
        };
        let (one, three) = (on(1), on(3));
        assert_eq!((one.l1, one.hf, one.luma), (three.l1, three.hf, three.luma));
        assert_eq!(one.grads, three.grads);
    }

    #[test]
    fn blur_adjoint_is_the_transpose() {
        // <blur(a), b> == <a, blur^T(b)> for arbitrary planes.
        let side = 7;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let a: Vec<f32> = (0..side * side).map(|_| rng.random_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..side * side).map(|_| rng.random_range(-1.0..1.0)).collect();
        let (mut ba, mut tb) = (a.clone(), b.clone());
        blur(&mut ba, side, false);
        blur(&mut tb, side, true);
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| (p * q) as f64).sum::<f64>();
        assert!((dot(&ba, &b) - dot(&a, &tb)).abs() < 1e-5);
    }
}
