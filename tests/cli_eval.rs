//! `rt4ksr eval` end to end: the official checkpoints land on the figures the official PyTorch
//! code gives under the same convention (within 0.02 dB), and bad arguments are clear errors.

mod common;

use std::process::Command;

fn rt4ksr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rt4ksr"))
}

#[test]
fn official_weights_reproduce_the_published_psnr() {
    let Some(dir) = common::shared_dir("official_weights_reproduce_the_published_psnr") else {
        return;
    };
    // Y-PSNR of the official PyTorch model under this convention (evaluation issue).
    for (scale, set, expected) in [
        (2, "set5", 36.149),
        (2, "set14", 32.090),
        (3, "set5", 32.204),
        (3, "set14", 28.977),
    ] {
        let out = rt4ksr()
            .args(["eval", "--json", "--scale", &scale.to_string(), "--data"])
            .arg(dir.join("data").join(set))
            .arg("--weights")
            .arg(dir.join(format!("models/official/rt4ksr_x{scale}.pth")))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let psnr = report["mean_model"]["psnr_y"].as_f64().unwrap();
        assert!((psnr - expected).abs() <= 0.02, "x{scale} {set}: {psnr} vs {expected}");
        let bicubic = report["mean_bicubic"]["psnr_y"].as_f64().unwrap();
        assert!(
            psnr > bicubic + 1.0,
            "x{scale} {set}: model {psnr} vs bicubic {bicubic}"
        );
    }
}

#[test]
fn eval_errors_name_the_problem() {
    let dir = common::scratch("eval-errors");
    let out = rt4ksr()
        .args(["eval", "--scale", "2", "--bicubic", "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no image files"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    std::fs::write(dir.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let out = rt4ksr()
        .args(["eval", "--scale", "2", "--bicubic", "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("broken.png"), "{stderr}");

    let weights = dir.join("weights.pth");
    std::fs::write(&weights, b"PK\x03\x04 truncated").unwrap();
    let out = rt4ksr()
        .args(["eval", "--scale", "2", "--data"])
        .arg(&dir)
        .arg("--weights")
        .arg(&weights)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("weights.pth"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The mean Y-PSNR and SSIM that `rt4ksr eval --json` reports.
fn eval_means(args: &[&std::ffi::OsStr]) -> Result<(f64, f64), String> {
    let out = rt4ksr().arg("eval").arg("--json").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(stderr);
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mean = &report["mean_model"];
    Ok((mean["psnr_y"].as_f64().unwrap(), mean["ssim_y"].as_f64().unwrap()))
}

#[test]
fn bf16_precision_keeps_fp32_quality_or_is_a_clear_error() {
    let Some(dir) = common::shared_dir("bf16_precision_keeps_fp32_quality_or_is_a_clear_error") else {
        return;
    };
    let amx = rt4ksr::engine::Isa::new(rt4ksr::engine::Path::AmxBf16);
    for scale in ["2", "3"] {
        let weights = dir.join(format!("models/official/rt4ksr_x{scale}.pth"));
        for set in ["set5", "set14"] {
            let data = dir.join("data").join(set);
            let args = |precision: &'static str| {
                [
                    "--scale".as_ref(),
                    scale.as_ref(),
                    "--data".as_ref(),
                    data.as_os_str(),
                    "--weights".as_ref(),
                    weights.as_os_str(),
                    "--precision".as_ref(),
                    precision.as_ref(),
                ]
            };
            let fp32 = eval_means(&args("fp32")).unwrap();
            match (&amx, eval_means(&args("bf16"))) {
                (Ok(_), Ok(bf16)) => {
                    // The quality bound of the real-time issue: 0.02 dB and 0.0005 SSIM.
                    assert!((bf16.0 - fp32.0).abs() <= 0.02, "x{scale} {set}: {bf16:?} vs {fp32:?}");
                    assert!(
                        (bf16.1 - fp32.1).abs() <= 0.0005,
                        "x{scale} {set}: {bf16:?} vs {fp32:?}"
                    );
                }
                (Err(why), Err(stderr)) => {
                    println!("SKIP bf16 quality on x{scale} {set}: {why}");
                    assert!(
                        stderr.contains("--precision bf16") && !stderr.contains("panicked"),
                        "{stderr}"
                    );
                    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
                }
                (_, other) => panic!("AMX detection {amx:?} but eval gave {other:?}"),
            }
        }
    }
}

#[test]
fn fp16_on_the_cpu_is_a_one_line_error() {
    let dir = common::scratch("eval-fp16-cpu");
    image::RgbImage::from_pixel(16, 16, image::Rgb([90, 120, 200]))
        .save(dir.join("a.png"))
        .unwrap();
    let err = eval_means(&[
        "--scale".as_ref(),
        "2".as_ref(),
        "--device".as_ref(),
        "cpu".as_ref(),
        "--precision".as_ref(),
        "fp16".as_ref(),
        "--data".as_ref(),
        dir.as_os_str(),
    ])
    .unwrap_err();
    assert!(err.contains("fp16") && !err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
