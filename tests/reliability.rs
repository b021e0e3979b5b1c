//! Bad input and faults, against the library and the real binary: the fuzz corpora and every
//! crash the fuzzers found replayed as regression tests, size claims refused before any
//! allocation, a malicious pickle refused (never run), kill -9 in the middle of a folder upscale
//! and of a training run, full and unwritable output locations, and closed pipes.

mod common;

use rt4ksr::imaging::Image;
use rt4ksr::imaging::io::save_rgb8;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_rt4ksr");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn rt4ksr(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A failure as users should see it: non-zero exit, one message, no panic or backtrace.
fn assert_clean_failure(out: &Output, expect: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "expected a failure: {err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
    assert!(err.contains(expect), "expected `{expect}` in: {err}");
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn fuzz_corpora_and_found_crashes_replay_without_panics() {
    let mut total = 0;
    for target in ["pickle", "weights", "y4m", "image"] {
        let dirs = [
            Path::new(ROOT).join("fuzz/corpus").join(target),
            Path::new(ROOT).join("tests/fixtures/fuzz-regressions").join(target),
        ];
        let files: Vec<PathBuf> = dirs.iter().flat_map(|d| files_in(d)).collect();
        assert!(!files.is_empty(), "no corpus for {target}");
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let run = rt4ksr::fuzz_entry::target(target).expect("a fuzz target");
            let result = std::panic::catch_unwind(|| run(&data));
            assert!(result.is_ok(), "{target}: {} panics", file.display());
            total += 1;
        }
    }
    eprintln!("replayed {total} inputs");
}

#[test]
fn size_claims_are_refused_before_any_allocation() {
    // Each would need hundreds of GB if it were believed; the process would abort, not fail.
    let fixtures = Path::new(ROOT).join("tests/fixtures");
    let out = rt4ksr(&["info", s(&fixtures.join("huge_claim.pth"))]);
    assert_clean_failure(&out, "huge_claim.pth");
    let out = rt4ksr(&["info", s(&fixtures.join("huge_claim.safetensors"))]);
    assert_clean_failure(&out, "huge_claim.safetensors");

    let header = b"YUV4MPEG2 W200000 H100000 F25:1 C420\nFRAME\n".to_vec();
    let out = common::pipe_through(BIN, &["upscale", "-", "-o", "-"], &header);
    assert_clean_failure(&out, "200000");

    // A PNG whose header claims 100000 x 100000 pixels (valid CRC, no pixel data).
    let dir = common::scratch("claims");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc32fast::hash(&ihdr).to_be_bytes());
    std::fs::write(dir.join("bomb.png"), &png).unwrap();
    let out = rt4ksr(&["upscale", s(&dir.join("bomb.png")), "-o", s(&dir.join("out.png"))]);
    assert_clean_failure(&out, "bomb.png");
    assert!(!dir.join("out.png").exists());
}

#[test]
fn an_unusable_training_config_is_refused_naming_its_file() {
    let dir = common::scratch("bad-train-config");
    let config = dir.join("bad.toml");
    let run = dir.join("run");
    let text = format!(
        "steps = 5\nluma_loss_weight = -1.0\ndata = [\"data\"]\nout_dir = {:?}\n",
        s(&run)
    );
    std::fs::write(&config, text).unwrap();
    let out = rt4ksr(&["train", "--config", s(&config)]);
    assert_clean_failure(
        &out,
        &format!("{}: hf_loss_weight and luma_loss_weight", config.display()),
    );
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    assert!(!run.exists(), "nothing written for a refused config");
}

#[test]
fn a_malicious_pickle_is_refused_and_never_run() {
    // tests/fixtures/code_exec.pth would run `touch /tmp/rt4ksr-pickle-executed` in Python.
    let marker = Path::new("/tmp/rt4ksr-pickle-executed");
    let _ = std::fs::remove_file(marker);
    let file = Path::new(ROOT).join("tests/fixtures/code_exec.pth");
    let out = rt4ksr(&["info", s(&file)]);
    assert_clean_failure(&out, "system");
    let dir = common::scratch("pickle");
    save_rgb8(&dir.join("in.png"), &Image::new(3, 8, 8, vec![100u8; 192])).unwrap();
    let out = rt4ksr(&[
        "upscale",
        s(&dir.join("in.png")),
        "-o",
        s(&dir.join("out.png")),
        "--weights",
        s(&file),
    ]);
    assert_clean_failure(&out, "code_exec.pth");
    assert!(!marker.exists(), "the pickle ran");
    assert!(!dir.join("out.png").exists());
}

fn pattern(k: usize, h: usize, w: usize) -> Image<u8> {
    let data = (0..3 * h * w)
        .map(|i| ((i * (7 + k) + i / w * 3) % 251) as u8)
        .collect();
    Image::new(3, h, w, data)
}

fn wait_for(mut condition: impl FnMut() -> bool, what: &str) {
    for _ in 0..6000 {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn kill_during_a_folder_upscale_leaves_only_whole_files_and_skip_existing_finishes() {
    let dir = common::scratch("kill-folder");
    let (input, output) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input).unwrap();
    let count = 24;
    for k in 0..count {
        save_rgb8(&input.join(format!("img{k:02}.png")), &pattern(k, 240, 320)).unwrap();
    }
    let mut child = Command::new(BIN)
        .args(["upscale", s(&input), "-o", s(&output), "-s", "3"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let done = |out: &Path| {
        files_in(out)
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .count()
    };
    wait_for(|| done(&output) >= 2, "the first outputs");
    child.kill().unwrap(); // SIGKILL: no handler runs
    child.wait().unwrap();
    let finished = done(&output);
    assert!(finished < count, "the run ended before the kill");
    eprintln!("killed after {finished} of {count} files");
    // Every visible output decodes completely; a temp file may remain, hidden.
    for file in files_in(&output) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".png") {
            image::open(&file).unwrap_or_else(|e| panic!("{name} is not whole: {e}"));
        } else {
            assert!(name.starts_with('.') && name.ends_with(".rt4ksr.tmp"), "stray {name}");
        }
    }
    let out = rt4ksr(&["upscale", s(&input), "-o", s(&output), "-s", "3", "--skip-existing"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let names: Vec<String> = files_in(&output)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), count, "{names:?}");
    for file in files_in(&output) {
        let img = image::open(&file).unwrap();
        assert_eq!((img.width(), img.height()), (960, 720));
    }
}

#[test]
fn kill_during_training_then_resume_gives_the_uninterrupted_weights() {
    let dir = common::scratch("kill-train");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    for k in 0..3 {
        save_rgb8(&dir.join(format!("data/img{k}.png")), &pattern(k, 40, 48)).unwrap();
    }
    let train = |out: &str, extra: &[&str]| {
        let mut c = Command::new(BIN);
        c.args([
            "train",
            "--data",
            s(&dir.join("data")),
            "-o",
            s(&dir.join(out)),
            "-s",
            "2",
        ]);
        c.args([
            "--feature-channels",
            "6",
            "--num-blocks",
            "1",
            "--batch-size",
            "2",
            "--lr-patch",
            "8",
        ]);
        c.args([
            "--steps",
            "400",
            "--checkpoint-every",
            "5",
            "--val-every",
            "1000",
            "--seed",
            "5",
        ]);
        c.args(extra).stderr(Stdio::null()).stdout(Stdio::null());
        c
    };
    assert!(train("straight", &[]).status().unwrap().success());

    let mut child = train("killed", &[]).spawn().unwrap();
    let ckpt = dir.join("killed/checkpoint.safetensors");
    // Killed as soon as the first checkpoint lands: a fixed sleep here once let a fast machine
    // finish the whole run before the kill.
    wait_for(|| ckpt.exists(), "the first checkpoint");
    child.kill().unwrap();
    child.wait().unwrap();
    let step = rt4ksr::train::checkpoint::Checkpoint::load(&ckpt).unwrap().step;
    assert!(step < 400, "the run ended before the kill");
    eprintln!("killed after step {step}");
    let resumed = train("killed", &["--resume"]).status().unwrap();
    assert!(resumed.success());

    let tensors = |run: &str| {
        rt4ksr::train::checkpoint::Checkpoint::load(&dir.join(run).join("checkpoint.safetensors"))
            .unwrap()
            .model_weights()
            .unwrap()
            .tensors
    };
    let (a, b) = (tensors("straight"), tensors("killed"));
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        assert_eq!(t.data, b[name].data, "{name} differs after kill + resume");
    }
}

#[test]
fn a_full_or_unwritable_output_location_fails_cleanly_with_nothing_half_written() {
    let dir = common::scratch("unwritable");
    let input = dir.join("in.png");
    save_rgb8(&input, &pattern(1, 120, 160)).unwrap();

    // A file where a folder should be: the output cannot be created.
    std::fs::write(dir.join("blocker"), b"x").unwrap();
    let target = dir.join("blocker/out.png");
    let out = rt4ksr(&["upscale", s(&input), "-o", s(&target)]);
    assert_clean_failure(&out, "blocker");

    // A full device on standard output.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = Command::new(BIN)
        .args(["upscale", s(&input), "-o", "-", "--format", "png"])
        .stdout(full)
        .output()
        .unwrap();
    eprintln!("/dev/full: {}", stderr(&out));
    assert_clean_failure(&out, "No space left");

    // A tiny tmpfs that fills up mid-write (needs the right to mount, as in CI's root shell).
    let mount = dir.join("tiny");
    std::fs::create_dir_all(&mount).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs", s(&mount)])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|st| st.success());
    if !mounted {
        eprintln!("SKIP full tmpfs case: cannot mount a tmpfs here (needs root)");
        return;
    }
    let out = rt4ksr(&["upscale", s(&input), "-o", s(&mount.join("out.png"))]);
    eprintln!("full tmpfs: {}", stderr(&out));
    let leftovers = files_in(&mount);
    let _ = Command::new("umount").arg(s(&mount)).status();
    assert_clean_failure(&out, "out.png");
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn a_closed_output_pipe_ends_an_image_upscale_cleanly() {
    let dir = common::scratch("closed-pipe");
    let input = dir.join("in.png");
    save_rgb8(&input, &pattern(2, 240, 320)).unwrap();
    let mut child = Command::new(BIN)
        .args(["upscale", s(&input), "-o", "-", "--format", "bmp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before the output is written
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_reader_that_goes_away_ends_report_commands_quietly() {
    // `rt4ksr info F | head -1`: the reader is gone before the report is written.
    let model = Path::new(ROOT).join("models/rt4ksr_x2.safetensors");
    let mut child = Command::new(BIN)
        .args(["info", s(&model)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");
}
