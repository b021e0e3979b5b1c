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
