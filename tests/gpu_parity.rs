//! The GPU backend against the official outputs and the CPU path, and a few training steps on
//! it. Built with `--features wgpu`; in CI it runs on Mesa's lavapipe (a software Vulkan
//! device), where `RT4KSR_REQUIRE_GPU_BACKEND=1` makes a missing device a failure, not a skip.
#![cfg(feature = "wgpu")]

mod common;

use burn::tensor::Device;
use rt4ksr::device::{DeviceChoice, open};
use rt4ksr::imaging::Image;
use rt4ksr::imaging::io::save_rgb8;
use rt4ksr::inference::{best_engine, engine_on};
use rt4ksr::model::init::perturbed_weights;
use rt4ksr::model::network::{host, tensor4};
use rt4ksr::train::schedule::Schedule;
use rt4ksr::train::{TrainConfig, TrainEvent, Trainer};
use rt4ksr::upscale::upscale_rgb;
use rt4ksr::weights::store::read_tensors;
use rt4ksr::{Form, ModelConfig, ModelWeights, Rt4ksr};

const TOLERANCE: f32 = 1e-4;

fn gpu(test: &str) -> Option<rt4ksr::device::OpenedDevice> {
    match open(DeviceChoice::Wgpu) {
        Ok(d) => Some(d),
        Err(e) if std::env::var("RT4KSR_REQUIRE_GPU_BACKEND").is_ok_and(|v| v == "1") => panic!("{e}"),
        Err(e) => {
            eprintln!("SKIP {test}: {e}");
            None
        }
    }
}

#[test]
fn both_forms_match_pytorch_on_the_gpu() {
    let Some(dir) = common::shared_dir("both_forms_match_pytorch_on_the_gpu") else {
        return;
    };
    let Some(gpu) = gpu("both_forms_match_pytorch_on_the_gpu") else {
        return;
    };
    for scale in [2, 3] {
        let weights = ModelWeights::load(&dir.join(format!("models/official/rt4ksr_x{scale}.pth"))).unwrap();
        let folded = weights.folded(false).unwrap();
        for case in ["astronaut_96x128", "coffee_96x128"] {
            let path = dir.join(format!("reference/rt4ksr_x{scale}_{case}.safetensors"));
            let case = read_tensors(&std::fs::read(&path).unwrap(), &path).unwrap().0;
            for (form, w, key) in [
                ("training", &weights, "train.output"),
                ("folded", &folded, "rep.output"),
            ] {
                let net = Rt4ksr::from_weights(w, &gpu.device);
                let out = host(net.forward(tensor4(&case["input"], &gpu.device)));
                let diff = out.max_abs_diff(&case[key]);
                eprintln!("x{scale} {form}: max abs diff {diff:.2e}");
                assert!(diff <= TOLERANCE, "x{scale} {form} on the GPU: {diff:e}");
            }
        }
    }
}

#[test]
fn the_gpu_upscaler_matches_the_fast_cpu_engine() {
    let Some(gpu) = gpu("the_gpu_upscaler_matches_the_fast_cpu_engine") else {
        return;
    };
    for scale in [2, 3] {
        let weights = perturbed_weights(&ModelConfig::official(scale), Form::Training, 3);
        let on_gpu = engine_on(&weights, &gpu, rt4ksr::inference::Precision::Fp32).unwrap();
        let on_cpu = best_engine(&weights).unwrap();
        let (h, w) = (45, 62);
        let data = (0..3 * h * w).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
        let picture = Image::new(3, h, w, data);
        let a = upscale_rgb(on_gpu.as_ref(), &picture, usize::MAX, |_, _| {}).unwrap();
        let b = upscale_rgb(on_cpu.as_ref(), &picture, usize::MAX, |_, _| {}).unwrap();
        let diff = a.max_abs_diff(&b);
        eprintln!("x{scale}: GPU vs fast CPU engine {diff:.2e}");
        assert!(diff <= TOLERANCE as f64, "x{scale}: {diff:e}");
    }
}

#[test]
fn a_few_training_steps_run_on_the_gpu_as_on_the_cpu() {
    let Some(gpu) = gpu("a_few_training_steps_run_on_the_gpu_as_on_the_cpu") else {
        return;
    };
    let dir = common::scratch("gpu-train");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    for k in 0..2usize {
        let data = (0..3 * 32 * 40).map(|i| ((i * (5 + k) + i / 40) % 256) as u8).collect();
        save_rgb8(&dir.join(format!("data/img{k}.png")), &Image::new(3, 32, 40, data)).unwrap();
    }
    let config = |out: &str| TrainConfig {
        model: ModelConfig {
            feature_channels: 6,
            num_blocks: 1,
            ..ModelConfig::official(2)
        },
        data: vec![dir.join("data")],
        out_dir: dir.join(out),
        steps: 4,
        batch_size: 2,
        lr_patches: vec![8],
        learning_rate: 1e-3,
        schedule: Schedule::MultiStep {
            milestones: vec![],
            gamma: 0.5,
        },
        checkpoint_every: 100,
        log_every: 1,
        ..TrainConfig::default()
    };
    let losses = |trainer: Trainer| {
        let mut v = Vec::new();
        trainer
            .run(false, None, |e| {
                if let TrainEvent::Step { loss, .. } = e {
                    v.push(loss)
                }
            })
            .unwrap();
        v
    };
    let cpu = losses(Trainer::new(config("cpu")).unwrap().on_device(Device::flex()));
    let on_gpu = losses(Trainer::new(config("gpu")).unwrap().on_device(gpu.device.clone()));
    eprintln!("losses: cpu {cpu:?}, gpu {on_gpu:?}");
    assert_eq!(cpu.len(), on_gpu.len());
    assert!(on_gpu.iter().all(|l| l.is_finite()));
    // Same seed, same batches, same initial weights: the first loss agrees; later ones drift
    // only by rounding.
    assert!(
        (cpu[0] - on_gpu[0]).abs() <= 1e-4 * cpu[0].abs().max(1.0),
        "{} vs {}",
        cpu[0],
        on_gpu[0]
    );
    for (a, b) in cpu.iter().zip(&on_gpu) {
        assert!((a - b).abs() <= 1e-2 * a.abs().max(1e-3), "{a} vs {b}");
    }
}
