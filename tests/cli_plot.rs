//! `rt4ksr plot` end to end: training logs to a PNG, never over an existing file unasked.

mod common;

use std::process::Command;

#[test]
fn plot_draws_a_chain_of_logs_and_keeps_existing_files() {
    let dir = common::scratch("cli-plot");
    let header = "step,loss,l1,hf,lr,steps_per_sec,val_psnr_y\n";
    std::fs::write(dir.join("a.csv"), format!("{header}100,0.3,,,,,\n200,,,,,,30.0\n")).unwrap();
    std::fs::write(dir.join("b.csv"), format!("{header}100,0.2,,,,,\n200,,,,,,31.0\n")).unwrap();
    let out = dir.join("curves.png");
    let plot = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rt4ksr"))
            .arg("plot")
            .arg(dir.join("a.csv"))
            .arg(dir.join("b.csv"))
            .arg("-o")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let first = plot(&[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let png = image::open(&out).unwrap();
    assert!(png.width() > 100 && png.height() > 100);
    let again = plot(&[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && stderr.contains("--overwrite"), "{stderr}");
    assert!(plot(&["--overwrite"]).status.success());

    std::fs::write(dir.join("a.csv"), "not a log\n").unwrap();
    std::fs::write(dir.join("b.csv"), "").unwrap();
    let bad = plot(&["--overwrite"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && stderr.contains("no training log rows") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
