//! Scalar reference versions of the per-pixel maths of the fast path; the SIMD kernels follow
//! the same formulas.

/// The numerator and denominator coefficients (in x^2) of the rational approximation of erf on
/// [-4, 4] used by Eigen and XLA for f32; max error 6.5e-8 against the exact function.
pub const ERF_ALPHA: [f32; 7] = [
    -2.726_142_3e-10,
    2.770_681_4e-8,
    -2.101_024e-6,
    -5.692_506_4e-5,
    -7.349_906_3e-4,
    -2.954_6e-3,
    -1.609_603_3e-2,
];
pub const ERF_BETA: [f32; 5] = [
    -1.456_607_2e-5,
    -2.133_740_6e-4,
    -1.682_827e-3,
    -7.373_329e-3,
    -1.426_474e-2,
];

pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    // Plain multiply-adds: `mul_add` is a libm call unless FMA is a compile-time target
    // feature, and this runs per element in training (the SIMD kernels use FMA themselves).
    let p = ERF_ALPHA[1..].iter().fold(ERF_ALPHA[0], |p, &c| p * x2 + c);
    let q = ERF_BETA[1..].iter().fold(ERF_BETA[0], |q, &c| q * x2 + c);
    x * p / q
}

/// Exact-form GELU, `x/2 (1 + erf(x / sqrt 2))`.
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf by its Taylor series in f64, for tests: within about 1e-9 for |x| <= 4.3 (the terms
/// grow to e^(x^2) before they fall).
#[cfg(test)]
pub(crate) fn erf_f64(x: f64) -> f64 {
    let mut term = x;
    let mut sum = x;
    for n in 1..200 {
        term *= -x * x / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_is_accurate_to_a_few_ulps() {
        let mut worst = 0f64;
        for i in -5000..=5000 {
            let x = i as f64 / 1000.0;
            let want = if x.abs() > 4.0 {
                x.signum() * erf_f64(4.0)
            } else {
                erf_f64(x)
            };
            worst = worst.max((erf(x as f32) as f64 - want).abs());
        }
        assert!(worst < 5e-7, "{worst:e}");
        assert!((erf_f64(6.0f64.min(4.0)) - 1.0).abs() < 2e-8);
    }
}
