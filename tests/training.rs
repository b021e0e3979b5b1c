//! Training end to end on tiny generated images: the loss goes down, and a run interrupted and
//! resumed from its checkpoint ends with bit-identical weights to an uninterrupted one.

mod common;

use rt4ksr::imaging::Image;
use rt4ksr::imaging::io::save_rgb8;
use rt4ksr::model::ModelConfig;
use rt4ksr::train::schedule::Schedule;
use rt4ksr::train::{TrainConfig, TrainEvent, Trainer};
use std::path::{Path, PathBuf};

/// Smooth colourful patterns with some edges, so there is something to learn.
fn make_images(dir: &Path, count: usize) {
    for k in 0..count {
        let (h, w) = (40, 48);
        let mut data = vec![0u8; 3 * h * w];
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let v = 128.0
                        + 80.0 * ((x as f64 * (0.2 + 0.05 * k as f64) + c as f64).sin())
                        + 40.0 * ((y as f64 * 0.3 - k as f64).cos())
                        + if (x / 8 + y / 8 + k) % 2 == 0 { 20.0 } else { -20.0 };
                    data[(c * h + y) * w + x] = v.clamp(0.0, 255.0) as u8;
                }
            }
        }
        save_rgb8(&dir.join(format!("img{k}.png")), &Image::new(3, h, w, data)).unwrap();
    }
}

fn tiny_config(dir: &Path, out: &str) -> TrainConfig {
    TrainConfig {
        model: ModelConfig {
            feature_channels: 8,
            num_blocks: 1,
            ..ModelConfig::official(2)
        },
        data: vec![dir.join("data")],
        val_data: Some(dir.join("data")),
        out_dir: dir.join(out),
        steps: 8,
        batch_size: 2,
        lr_patches: vec![8, 6],
        learning_rate: 2e-3,
        schedule: Schedule::MultiStep {
            milestones: vec![4],
            gamma: 0.5,
        },
        ema_decay: Some(0.9),
        val_every: 4,
        checkpoint_every: 100,
        log_every: 1,
        ..TrainConfig::default()
    }
}

#[test]
fn a_tiny_run_lowers_the_loss_and_exports_models() {
    let dir = common::scratch("train-loss");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    make_images(&dir.join("data"), 3);
    std::fs::write(dir.join("data/broken.png"), b"not an image").unwrap();
    let config = TrainConfig {
        steps: 60,
        ema_decay: None,
        val_every: 60,
        ..tiny_config(&dir, "run")
    };
    let trainer = Trainer::new(config).unwrap();
    let mut losses = Vec::new();
    let mut skipped = 0;
    let summary = trainer
        .run(false, None, |e| match e {
            TrainEvent::Step { loss, .. } => losses.push(loss),
            TrainEvent::Started { skipped: s, .. } => skipped = s.len(),
            _ => {}
        })
        .unwrap();
    assert_eq!(
        skipped, 2,
        "the broken file is skipped and counted (training and validation)"
    );
    assert_eq!(losses.len(), 60);
    let first: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = losses[50..].iter().sum::<f64>() / 10.0;
    assert!(last < 0.7 * first, "loss went from {first} to {last}");
    assert!(summary.best_psnr.unwrap() > 10.0);
    for file in [
        "best.safetensors",
        "last.safetensors",
        "checkpoint.safetensors",
        "log.csv",
        "plot.png",
    ] {
        assert!(dir.join("run").join(file).exists(), "{file}");
    }
    let best = rt4ksr::ModelWeights::load(&dir.join("run/best.safetensors")).unwrap();
    assert_eq!(best.form, rt4ksr::Form::Folded);
    assert!(best.provenance.contains("train"), "{}", best.provenance);
}

#[test]
fn resume_after_interruption_is_bit_identical() {
    let dir = common::scratch("train-resume");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    make_images(&dir.join("data"), 2);

    let straight = Trainer::new(tiny_config(&dir, "straight"))
        .unwrap()
        .run(false, None, |_| {})
        .unwrap();

    let config = tiny_config(&dir, "interrupted");
    let first = Trainer::new(config.clone())
        .unwrap()
        .run(false, Some(3), |_| {})
        .unwrap();
    assert_eq!(first.steps_done, 3);
    let resumed = Trainer::new(config).unwrap().run(true, None, |_| {}).unwrap();
    assert_eq!(resumed.steps_done, 8);
    assert_eq!(
        resumed.weights.tensors, straight.weights.tensors,
        "resumed weights differ"
    );
    assert_eq!(resumed.best_psnr, straight.best_psnr);
    let log = std::fs::read_to_string(dir.join("interrupted/log.csv")).unwrap();
    assert_eq!(log.lines().filter(|l| !l.is_empty()).count(), 1 + 8 + 2, "{log}");
}

#[test]
fn a_folder_without_usable_images_is_a_clear_error() {
    let dir = common::scratch("train-empty");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/a.png"), b"junk").unwrap();
    let err = Trainer::new(tiny_config(&dir, "out")).err().unwrap();
    assert!(
        matches!(
            &err,
            rt4ksr::train::run::TrainError::Data(rt4ksr::train::data::DataError::NoImages { skipped: 1, .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("no usable training image"), "{err}");
}

#[test]
fn fine_tuning_starts_from_a_model_of_the_same_or_another_scale() {
    use rt4ksr::model::Form;
    use rt4ksr::model::init::perturbed_weights;
    use rt4ksr::model::rescale::resample_upsample_conv;
    use rt4ksr::train::run::initial_weights;
    let dir = common::scratch("fine-tune");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    make_images(&dir.join("data"), 2);
    let x2 = tiny_config(&dir, "unused").model;
    let source = perturbed_weights(&x2, Form::Training, 11);
    let path = dir.join("x2.safetensors");
    source.save(&path).unwrap();

    // Same model: the file's weights as they are.
    assert_eq!(initial_weights(&path, &x2, 1).unwrap().tensors, source.tensors);

    // A folded model (as shipped): unfolded into the training form, which folds back to it.
    let folded = source.folded(false).unwrap();
    let folded_path = dir.join("x2-folded.safetensors");
    folded.save(&folded_path).unwrap();
    let unfolded = initial_weights(&folded_path, &x2, 1).unwrap();
    assert_eq!(unfolded.form, Form::Training);
    let back = unfolded.folded(false).unwrap();
    for (name, t) in &folded.tensors {
        let worst = t
            .data
            .iter()
            .zip(&back.tensors[name].data)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-6, "{name}: {worst:e}");
    }

    // x3 from x2: everything as it is but the upsample conv, whose output channels depend on
    // the scale: resampled from the file's.
    let x3 = ModelConfig { scale: 3, ..x2.clone() };
    let start = initial_weights(&path, &x3, 1).unwrap();
    let (weight, bias) = resample_upsample_conv(
        &source.tensors["upsample.0.weight"],
        &source.tensors["upsample.0.bias"],
        2,
        3,
    );
    assert_eq!(start.tensors["upsample.0.weight"], weight);
    assert_eq!(start.tensors["upsample.0.bias"], bias);
    assert_eq!(weight.shape[0], x3.upsample_channels());
    let mut taken = 0;
    for (name, tensor) in &start.tensors {
        if !name.starts_with("upsample.") {
            assert_eq!(tensor, &source.tensors[name], "{name}");
            taken += 1;
        }
    }
    assert_eq!(taken, source.tensors.len() - 2);

    // Another width is a clear error naming the file.
    let wider = ModelConfig {
        feature_channels: 12,
        ..x2.clone()
    };
    let err = initial_weights(&path, &wider, 1).unwrap_err();
    assert!(
        matches!(&err, rt4ksr::train::run::TrainError::InitWeights { path: p, .. } if p == &path),
        "{err}"
    );
    assert!(err.to_string().contains("x2.safetensors"), "{err}");

    // And a run starts from the folded file: a few x3 steps with finite losses.
    let mut config = tiny_config(&dir, "x3");
    config.model = x3;
    config.init_weights = Some(folded_path);
    config.steps = 3;
    let mut losses = vec![];
    Trainer::new(config)
        .unwrap()
        .run(false, None, |e| {
            if let TrainEvent::Step { loss, .. } = e {
                losses.push(loss)
            }
        })
        .unwrap();
    assert!(losses.len() == 3 && losses.iter().all(|l| l.is_finite()), "{losses:?}");
}

#[test]
fn the_command_writes_progress_lines_when_stderr_is_a_log_file() {
    let dir = common::scratch("train-log-lines");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    make_images(&dir.join("data"), 2);
    let data = dir.join("data");
    let out = dir.join("run");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rt4ksr"))
        .args(["train", "--data", data.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .args(["-s", "2", "--feature-channels", "6", "--num-blocks", "1"])
        .args([
            "--batch-size",
            "2",
            "--lr-patch",
            "8",
            "--steps",
            "6",
            "--log-every",
            "2",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("step ")).collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    for (line, step) in lines.iter().zip([2, 4, 6]) {
        assert!(line.starts_with(&format!("step {step}/6: loss ")), "{line}");
        assert!(line.contains(" steps/s, eta "), "{line}");
    }
    assert!(lines[2].ends_with("eta 0m"), "{}", lines[2]);
}

#[test]
fn the_native_backward_pass_trains_as_burn_autodiff_does() {
    use rt4ksr::train::config::Backward;
    let dir = common::scratch("train-native");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    make_images(&dir.join("data"), 2);
    let run = |backward, out: &str| {
        let mut losses = vec![];
        let summary = Trainer::new(TrainConfig {
            backward,
            ..tiny_config(&dir, out)
        })
        .unwrap()
        .run(false, None, |e| {
            if let TrainEvent::Step { loss, .. } = e {
                losses.push(loss)
            }
        })
        .unwrap();
        (losses, summary)
    };
    let (burn_losses, burn) = run(Backward::Burn, "burn");
    let (native_losses, native) = run(Backward::Native, "native");
    for (a, b) in burn_losses.iter().zip(&native_losses) {
        assert!((a - b).abs() < 1e-4 * a, "losses {burn_losses:?} vs {native_losses:?}");
    }
    // Adam's steps are at most the learning rate (2e-3) per step, so rounding differences
    // in the gradients move a weight by far less than one step.
    for (name, want) in &burn.weights.tensors {
        let got = &native.weights.tensors[name];
        let worst = got
            .data
            .iter()
            .zip(&want.data)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst < 2e-4, "{name}: {worst:e}");
    }
    assert_ne!(
        burn.weights.tensors, native.weights.tensors,
        "two different computations"
    );
}

#[test]
fn the_native_backward_pass_refuses_what_it_does_not_cover() {
    let dir = common::scratch("train-native-refuse");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    make_images(&dir.join("data"), 1);
    let mut config = tiny_config(&dir, "run");
    config.model.merge_hf = true;
    config.backward = rt4ksr::train::config::Backward::Native;
    let err = Trainer::new(config).unwrap().run(false, None, |_| {}).unwrap_err();
    assert!(
        matches!(err, rt4ksr::train::run::TrainError::NativeUnavailable(_)),
        "{err}"
    );
}

/// `rt4ksr train` of a tiny model for two steps on `dir/data` into `dir/out`, with `extra`
/// arguments.
fn train_tiny(dir: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_rt4ksr"))
        .args(["train", "--data", dir.join("data").to_str().unwrap()])
        .args(["-o", dir.join(out).to_str().unwrap()])
        .args(["--feature-channels", "6", "--num-blocks", "1", "--batch-size", "2"])
        .args(["--lr-patch", "8", "--steps", "2", "--log-every", "1"])
        .args(extra)
        .output()
        .unwrap()
}

/// A scratch folder named `name` with one training image in `data/`.
fn tiny_data(name: &str) -> PathBuf {
    let dir = common::scratch(name);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    make_images(&dir.join("data"), 1);
    dir
}

/// [`train_tiny`] that must succeed; returns the config the run saved.
fn saved_config(dir: &Path, out: &str, extra: &[&str]) -> String {
    let output = train_tiny(dir, out, extra);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::read_to_string(dir.join(out).join("config.toml")).unwrap()
}

#[test]
fn the_command_takes_the_backward_pass_as_a_flag() {
    let dir = tiny_data("train-backward-flag");
    let saved = saved_config(&dir, "burn", &["--backward", "burn"]);
    assert!(saved.contains("backward = \"burn\""), "{saved}");
    let output = train_tiny(&dir, "bad", &["--backward", "sideways"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("native"), "{stderr}");
}

#[test]
fn the_command_trains_on_8_bit_lr_patches_when_asked() {
    let dir = tiny_data("train-lr-8bit");
    let saved = saved_config(&dir, "quantized", &["--lr-8bit"]);
    assert!(saved.contains("lr_8bit = true"), "{saved}");
    let saved = saved_config(&dir, "plain", &[]);
    assert!(!saved.contains("lr_8bit"), "{saved}");
    // Same seed and crops, other LR: the first step's loss differs.
    let first_loss = |out: &str| {
        let log = std::fs::read_to_string(dir.join(out).join("log.csv")).unwrap();
        log.lines().nth(1).unwrap().split(',').nth(1).unwrap().to_string()
    };
    assert_ne!(first_loss("quantized"), first_loss("plain"));
}

#[test]
fn the_command_turns_a_share_of_the_crops_negative_when_asked() {
    let dir = tiny_data("train-invert");
    let saved = saved_config(&dir, "negative", &["--invert-fraction", "0.5"]);
    assert!(saved.contains("invert_fraction = 0.5"), "{saved}");
    let output = train_tiny(&dir, "bad", &["--invert-fraction", "2"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success()
            && stderr.contains("invert_fraction must be between 0 and 1")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
