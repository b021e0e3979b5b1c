//! `rt4ksr bench` end to end: the rows and ratios it reports, not its speed (speed is measured
//! in benchmarks, never asserted in tests).

use std::process::Command;

#[test]
fn bench_times_each_path_as_a_stream_too() {
    // Without AVX2 only the portable path is left, which bench leaves out by default (seconds
    // a frame).
    #[cfg(target_arch = "x86_64")]
    if !std::arch::is_x86_feature_detected!("avx2") {
        println!("SKIP bench_times_each_path_as_a_stream_too: this CPU lacks AVX2");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_rt4ksr"))
        .args(["bench", "--fast-only", "--runs", "1", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cases = report["cases"].as_array().unwrap();
    let name = |c: &serde_json::Value| c["name"].as_str().unwrap().to_owned();
    let engines: Vec<String> = cases
        .iter()
        .map(name)
        .filter(|n| n.starts_with("fast engine") && !n.contains(", "))
        .collect();
    assert!(!engines.is_empty(), "no fast engine row: {cases:?}");
    let streams = report["streams"].as_array().unwrap();
    assert_eq!(streams.len(), engines.len(), "a stream ratio per engine row");
    for engine in &engines {
        // The engine as a stream runs it and the whole stream, beside each engine row.
        for what in [", 4:2:0 in and out)", ", y4m stream)"] {
            let row = engine.replace(')', what);
            let case = cases.iter().find(|c| name(c) == row);
            assert!(case.is_some_and(|c| c["median_ms"].as_f64().unwrap() > 0.0), "{row}");
        }
        let ratio = streams.iter().find(|s| s["case"] == engine.as_str()).unwrap();
        let (median, min, max) = (
            ratio["median"].as_f64().unwrap(),
            ratio["min"].as_f64().unwrap(),
            ratio["max"].as_f64().unwrap(),
        );
        assert!(0.0 < min && min <= median && median <= max, "{engine}: {ratio}");
    }
}
