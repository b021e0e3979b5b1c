//! The training run's side of checkpoints: the EMA of the weights. The file format is
//! [`crate::weights::checkpoint`]'s.

use crate::host_tensor::TensorMap;
pub use crate::weights::checkpoint::Checkpoint;

/// The decay used after `step` updates: the configured one, warmed up as
/// `min(decay, (1 + step) / (10 + step))` so that the average does not carry the random
/// initialisation for thousands of steps.
pub fn ema_decay_at(decay: f64, step: u64) -> f64 {
    decay.min((1.0 + step as f64) / (10.0 + step as f64))
}

/// Exponential moving average update: `ema = decay * ema + (1 - decay) * current`.
pub fn ema_update(ema: &mut TensorMap, current: &TensorMap, decay: f64) {
    for (name, value) in current {
        let avg = ema.entry(name.clone()).or_insert_with(|| value.clone());
        for (a, &v) in avg.data.iter_mut().zip(&value.data) {
            *a = (decay * *a as f64 + (1.0 - decay) * v as f64) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_tensor::HostTensor;

    #[test]
    fn ema_decay_warms_up() {
        assert!((ema_decay_at(0.999, 0) - 0.1).abs() < 1e-12);
        assert!((ema_decay_at(0.999, 90) - 0.91).abs() < 1e-12);
        assert_eq!(ema_decay_at(0.999, 1_000_000), 0.999);
    }

    #[test]
    fn ema_moves_toward_the_current_weights() {
        let mut ema = TensorMap::from([("w".to_string(), HostTensor::new(vec![1], vec![0.0]))]);
        let cur = TensorMap::from([("w".to_string(), HostTensor::new(vec![1], vec![1.0]))]);
        ema_update(&mut ema, &cur, 0.9);
        assert!((ema["w"].data[0] - 0.1).abs() < 1e-7);
    }
}
