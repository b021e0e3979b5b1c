//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The `shared/` folder beside the checkout (or `$RT4KSR_SHARED`), if present. Tests that need
/// it call this and return early, saying so, when it is absent (a user's fresh clone).
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("RT4KSR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    if dir.join("reference").is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIP {test}: {} not found (set RT4KSR_SHARED to run it)", dir.display());
        None
    }
}

/// A scratch folder unique to one test, emptied first.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rt4ksr-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `program args`, feeding `input` on standard input from another thread (so a large
/// input cannot deadlock against a full output pipe), and returns its output.
pub fn pipe_through(program: &str, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}
