//! Learning-rate schedules.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Schedule {
    /// Multiply by `gamma` at each milestone step (the official: halve at 20/40/60/80%).
    MultiStep { milestones: Vec<u64>, gamma: f64 },
    /// Cosine decay from the base rate to `min_lr` over the run.
    Cosine { min_lr: f64 },
}

impl Schedule {
    /// The rate at `step` (0-based) of a run of `total` steps.
    pub fn rate(&self, base: f64, step: u64, total: u64) -> f64 {
        match self {
            Schedule::MultiStep { milestones, gamma } => {
                base * gamma.powi(milestones.iter().filter(|&&m| step >= m).count() as i32)
            }
            Schedule::Cosine { min_lr } => {
                let t = step.min(total) as f64 / total.max(1) as f64;
                min_lr + 0.5 * (base - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multistep_halves_at_each_milestone() {
        let s = Schedule::MultiStep {
            milestones: vec![10, 20],
            gamma: 0.5,
        };
        assert_eq!(s.rate(1e-3, 9, 30), 1e-3);
        assert_eq!(s.rate(1e-3, 10, 30), 5e-4);
        assert_eq!(s.rate(1e-3, 29, 30), 2.5e-4);
    }

    #[test]
    fn cosine_runs_from_base_to_minimum() {
        let s = Schedule::Cosine { min_lr: 1e-6 };
        assert_eq!(s.rate(1e-3, 0, 100), 1e-3);
        assert!((s.rate(1e-3, 50, 100) - (1e-6 + 0.5 * (1e-3 - 1e-6))).abs() < 1e-15);
        assert!((s.rate(1e-3, 100, 100) - 1e-6).abs() < 1e-15);
    }
}
