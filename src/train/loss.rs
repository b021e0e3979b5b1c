//! The training losses: L1 on pixels plus the paper's high-frequency loss
//! `|| (HR - blur(HR)) - (SR - blur(SR)) ||_1` with the 5x5, sigma 1 Gaussian, and optionally
//! L1 on luma.

use crate::imaging::color::LUMA_WEIGHTS;
use crate::model::HfExtraction;
use crate::model::network::high_frequencies;
use burn::tensor::{Tensor, TensorData};

/// The weights of the losses next to L1 on RGB (which has weight 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossWeights {
    /// The high-frequency loss.
    pub hf: f32,
    /// L1 on luma ([`luma_l1`]).
    pub luma: f32,
}

/// Luma per unit of R, G and B on the 0..1 scale: BT.601 studio range, the Y that Y-PSNR
/// measures, offset left out (it cancels in a difference).
pub fn luma_weights() -> [f32; 3] {
    LUMA_WEIGHTS.map(|w| (w / 255.0) as f32)
}

/// A batch's training loss, `l1 + weights.hf * hf + weights.luma * luma`, and its terms.
pub struct Losses {
    pub total: Tensor<1>,
    pub l1: Tensor<1>,
    pub hf: Tensor<1>,
    pub luma: Tensor<1>,
}

/// The training loss of `sr` against `hr` (see [`Losses`]).
pub fn losses(sr: Tensor<4>, hr: Tensor<4>, weights: LossWeights) -> Losses {
    let l1 = l1(sr.clone(), hr.clone());
    let luma = luma_l1(sr.clone(), hr.clone());
    let hf = hf_loss(sr, hr);
    let total = l1.clone() + hf.clone() * weights.hf as f64 + luma.clone() * weights.luma as f64;
    Losses { total, l1, hf, luma }
}

/// Mean absolute error.
pub fn l1(sr: Tensor<4>, hr: Tensor<4>) -> Tensor<1> {
    (sr - hr).abs().mean()
}

/// Mean absolute error of luma over the pixels: on content whose colours differ in chroma
/// more than in luma (where L1 on RGB spends the network on chroma errors that Y-PSNR does
/// not see), it weighs the errors the way the evaluation does.
pub fn luma_l1(sr: Tensor<4>, hr: Tensor<4>) -> Tensor<1> {
    let weights = Tensor::<4>::from_data(TensorData::new(luma_weights().to_vec(), [1, 3, 1, 1]), &sr.device());
    ((sr - hr) * weights).sum_dim(1).abs().mean()
}

/// Mean absolute error of the high frequencies.
pub fn hf_loss(sr: Tensor<4>, hr: Tensor<4>) -> Tensor<1> {
    l1(
        high_frequencies(sr, HfExtraction::Gaussian),
        high_frequencies(hr, HfExtraction::Gaussian),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::network::gaussian_taps;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn hf_loss_of_a_single_impulse_matches_the_hand_computation() {
        // HR is zero; SR is zero except one value 1 at the centre of a 7x7 image. blur(SR) is
        // the 5x5 Gaussian kernel around the centre (no border effects), so
        // hf(SR) = impulse - kernel: |1 - k0*k0| at the centre plus k_i*k_j at the 24 others,
        // i.e. (1 - k0^2) + (1 - k0^2) = 2 (1 - k0^2) in total (the kernel sums to 1), over 49
        // pixels.
        let device = Device::flex();
        let mut data = vec![0f32; 49];
        data[24] = 1.0;
        let sr = Tensor::<4>::from_data(TensorData::new(data, [1, 1, 7, 7]), &device);
        let hr = Tensor::<4>::zeros([1, 1, 7, 7], &device);
        let k0 = gaussian_taps()[2] as f64;
        let expected = 2.0 * (1.0 - k0 * k0) / 49.0;
        let got = hf_loss(sr.clone(), hr.clone()).into_scalar::<f32>() as f64;
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
        // And the plain L1 of the same pair is 1/49.
        assert!((l1(sr, hr).into_scalar::<f32>() as f64 - 1.0 / 49.0).abs() < 1e-7);
    }

    #[test]
    fn hf_loss_ignores_a_constant_offset() {
        let device = Device::flex();
        let hr = Tensor::<4>::random([1, 3, 8, 8], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
        let sr = hr.clone() + 0.25;
        assert!(hf_loss(sr.clone(), hr.clone()).into_scalar::<f32>() < 1e-6);
        assert!((l1(sr, hr).into_scalar::<f32>() - 0.25).abs() < 1e-6);
    }
}
