//! Video through pipes without external tools: YUV4MPEG2 streams made here go through
//! `rt4ksr upscale - -o -`; frame count, size, order, tags and depth survive, every output
//! frame equals the library's result on the same frame, and faults end cleanly.

mod common;

use rt4ksr::default_models;
use rt4ksr::inference::{Precision, cpu_engine};
use rt4ksr::upscale::upscale_rgb;
use rt4ksr::video::color::{ColorSpec, Matrix, frame_to_rgb, rgb_to_frame};
use rt4ksr::video::y4m::{Frame, Header, read_frame, write_frame};
use std::io::Write;
use std::process::{Command, Stdio};

fn stream(colorspace: &str, frames: usize, w: usize, h: usize) -> (Header, Vec<Frame>, Vec<u8>) {
    let header = Header::read(&mut format!("YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C{colorspace}\n").as_bytes()).unwrap();
    let (cw, ch) = header.chroma.plane_size(w, h);
    let max = (1u32 << header.depth) - 1;
    let mut bytes = Vec::new();
    header.write(&mut bytes).unwrap();
    let mut all = Vec::new();
    for k in 0..frames {
        // A moving gradient with an edge, different in every frame so order is visible.
        let frame = Frame {
            y: (0..w * h)
                .map(|i| {
                    let (x, y) = (i % w, i / w);
                    let v = (x * 7 + y * 3 + k * 11) % 200 + if x > w / 2 { 30 } else { 0 };
                    ((v as u32 * max) / 255) as u16
                })
                .collect(),
            u: (0..cw * ch)
                .map(|i| (((i * 5 + k * 3) % 100 + 80) as u32 * max / 255) as u16)
                .collect(),
            v: (0..cw * ch)
                .map(|i| (((i * 3 + k) % 90 + 90) as u32 * max / 255) as u16)
                .collect(),
        };
        write_frame(&mut bytes, &header, &frame).unwrap();
        all.push(frame);
    }
    (header, all, bytes)
}

fn run_pipe(input: &[u8], args: &[&str]) -> std::process::Output {
    let mut all = vec!["upscale", "-", "-o", "-"];
    all.extend_from_slice(args);
    common::pipe_through(env!("CARGO_BIN_EXE_rt4ksr"), &all, input)
}

#[test]
fn y4m_streams_keep_count_size_tags_and_match_the_image_path() {
    for (colorspace, scale) in [("420jpeg", "2"), ("420p10", "3"), ("444", "2"), ("mono", "2")] {
        let (header, frames, bytes) = stream(colorspace, 4, 24, 14);
        let out = run_pipe(&bytes, &["-s", scale]);
        assert!(
            out.status.success(),
            "{colorspace}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut reader = &out.stdout[..];
        let out_header = Header::read(&mut reader).unwrap();
        let s: usize = scale.parse().unwrap();
        assert_eq!(out_header, header.resized(24 * s, 14 * s), "{colorspace}");
        // The engine `upscale` takes by default (AMX where the CPU has it), around which the
        // stream's conversions are checked.
        let engine = cpu_engine(&default_models::load(s).unwrap(), Precision::Auto).unwrap();
        let spec = ColorSpec {
            matrix: Matrix::Bt601,
            full_range: false,
            depth: header.depth,
        };
        for (i, frame) in frames.iter().enumerate() {
            let got = read_frame(&mut reader, &out_header, i as u64)
                .unwrap()
                .expect("a frame per input frame");
            let rgb = upscale_rgb(
                engine.as_ref(),
                &frame_to_rgb(frame, &header, spec),
                usize::MAX,
                |_, _| {},
            )
            .unwrap();
            let want = rgb_to_frame(&rgb, &out_header, spec);
            let diff = |a: &[u16], b: &[u16]| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (*x as i32 - *y as i32).abs())
                    .max()
                    .unwrap_or(0)
            };
            assert!(
                diff(&got.y, &want.y) <= 1 && diff(&got.u, &want.u) <= 1 && diff(&got.v, &want.v) <= 1,
                "{colorspace} frame {i}"
            );
        }
        assert_eq!(
            read_frame(&mut reader, &out_header, 4).unwrap(),
            None,
            "{colorspace}: extra frames"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("4 frames"), "{stderr}");
    }
}

#[test]
fn a_truncated_stream_keeps_the_whole_frames_and_says_so() {
    let (header, _, bytes) = stream("420jpeg", 3, 16, 10);
    let cut = bytes.len() - header.frame_bytes() / 2;
    let out = run_pipe(&bytes[..cut], &["-s", "2"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("frame 2 is truncated"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let mut reader = &out.stdout[..];
    let h = Header::read(&mut reader).unwrap();
    for i in 0..2 {
        assert!(read_frame(&mut reader, &h, i).unwrap().is_some());
    }
    assert_eq!(read_frame(&mut reader, &h, 2).unwrap(), None);
}

#[test]
fn a_stream_that_breaks_in_its_first_frame_leaves_no_file() {
    let dir = common::scratch("first-frame-cut");
    let (header, _, bytes) = stream("420jpeg", 1, 16, 10);
    let cut = bytes.len() - header.frame_bytes() / 2;
    let (whole, broken) = (dir.join("whole.y4m"), dir.join("broken.y4m"));
    let bin = env!("CARGO_BIN_EXE_rt4ksr");
    let out = common::pipe_through(
        bin,
        &["upscale", "-", "-o", broken.to_str().unwrap(), "-s", "2"],
        &bytes[..cut],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("frame 0 is truncated"), "{stderr}");
    assert!(!broken.exists(), "an output without a frame is not kept");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no temporary file left either"
    );
    // The same stream whole: the file is written.
    let out = common::pipe_through(bin, &["upscale", "-", "-o", whole.to_str().unwrap(), "-s", "2"], &bytes);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(whole.exists());
}

#[test]
fn a_closed_output_pipe_ends_cleanly() {
    let (_, _, bytes) = stream("420jpeg", 40, 64, 36);
    let mut child = Command::new(env!("CARGO_BIN_EXE_rt4ksr"))
        .args(["upscale", "-", "-o", "-", "-s", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
    // Read a little of the output, then close it.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("output closed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn raw_frames_go_through_in_their_own_format() {
    for (fmt, bytes_per_frame_in, bytes_per_frame_out) in [
        ("rgb24", 3 * 20 * 12, 3 * 40 * 24),
        ("rgb48le", 6 * 20 * 12, 6 * 40 * 24),
        ("yuv420p", 20 * 12 * 3 / 2, 40 * 24 * 3 / 2),
    ] {
        let input: Vec<u8> = (0..3 * bytes_per_frame_in).map(|i| (i * 31 % 251) as u8).collect();
        let out = run_pipe(&input, &["--raw", "20x12", "--pix-fmt", fmt, "-s", "2"]);
        assert!(out.status.success(), "{fmt}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout.len(), 3 * bytes_per_frame_out, "{fmt}");
        // A partial last frame is an error, the whole frames before it are kept.
        let out = run_pipe(
            &input[..2 * bytes_per_frame_in + 5],
            &["--raw", "20x12", "--pix-fmt", fmt, "-s", "2"],
        );
        assert!(!out.status.success());
        assert_eq!(out.stdout.len(), 2 * bytes_per_frame_out, "{fmt}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("frame 2 is truncated"));
    }
}
