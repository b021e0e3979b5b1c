//! Video with the real ffmpeg: a generated test pattern through `rt4ksr upscale - -o -` and
//! back into ffmpeg, checked with ffprobe and against the library's result frame by frame, and
//! `rt4ksr video` on a file with audio. Skipped, saying so, where ffmpeg is not installed
//! (CI installs it).

mod common;

use rt4ksr::default_models;
use rt4ksr::inference::{Precision, cpu_engine};
use rt4ksr::upscale::upscale_rgb;
use rt4ksr::video::color::{ColorSpec, Matrix, frame_to_rgb, rgb_to_frame};
use rt4ksr::video::y4m::{Header, read_frame};
use std::path::Path;
use std::process::Command;

fn have_ffmpeg(test: &str) -> bool {
    let ok = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
        && Command::new("ffprobe")
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP {test}: ffmpeg/ffprobe not on PATH (install ffmpeg to run it)");
    }
    ok
}

fn pipe(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let out = common::pipe_through(program, args, input);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn probe(path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,width,height,pix_fmt,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn testsrc2_through_the_pipe_matches_the_image_path() {
    if !have_ffmpeg("testsrc2_through_the_pipe_matches_the_image_path") {
        return;
    }
    let dir = common::scratch("ffmpeg-pipe");
    for (pix_fmt, scale) in [("yuv420p", 2usize), ("yuv420p10le", 3)] {
        let source = pipe(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x180:rate=25",
                "-frames:v",
                "20",
                "-pix_fmt",
                pix_fmt,
                "-strict",
                "-1",
                "-f",
                "yuv4mpegpipe",
                "-",
            ],
            &[],
        );
        let upscaled = pipe(
            env!("CARGO_BIN_EXE_rt4ksr"),
            &["upscale", "-", "-o", "-", "-s", &scale.to_string()],
            &source,
        );
        let file = dir.join(format!("{pix_fmt}.mkv"));
        pipe(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-f",
                "yuv4mpegpipe",
                "-i",
                "-",
                "-c:v",
                "ffv1",
                "-y",
                file.to_str().unwrap(),
            ],
            &upscaled,
        );
        let (w, h) = (320 * scale, 180 * scale);
        assert_eq!(probe(&file).trim(), format!("video,{w},{h},{pix_fmt},20"), "{pix_fmt}");

        // Every frame equals the library on the same frame, within one level of rounding.
        // The engine `upscale` takes by default (AMX where the CPU has it).
        let engine = cpu_engine(&default_models::load(scale).unwrap(), Precision::Auto).unwrap();
        let (mut src, mut out) = (&source[..], &upscaled[..]);
        let (hin, hout) = (Header::read(&mut src).unwrap(), Header::read(&mut out).unwrap());
        let spec = ColorSpec {
            matrix: Matrix::Bt601,
            full_range: false,
            depth: hin.depth,
        };
        for i in 0..20 {
            let frame = read_frame(&mut src, &hin, i).unwrap().unwrap();
            let got = read_frame(&mut out, &hout, i).unwrap().unwrap();
            let rgb = upscale_rgb(
                engine.as_ref(),
                &frame_to_rgb(&frame, &hin, spec),
                usize::MAX,
                |_, _| {},
            )
            .unwrap();
            let want = rgb_to_frame(&rgb, &hout, spec);
            let worst = got
                .y
                .iter()
                .zip(&want.y)
                .map(|(a, b)| (*a as i32 - *b as i32).abs())
                .max()
                .unwrap();
            assert!(worst <= 1, "{pix_fmt} frame {i}: luma differs by {worst}");
        }
    }
}

#[test]
fn video_command_keeps_audio_and_frames() {
    if !have_ffmpeg("video_command_keeps_audio_and_frames") {
        return;
    }
    let dir = common::scratch("ffmpeg-video");
    let input = dir.join("in.mkv");
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            "0.8",
            "-c:v",
            "ffv1",
            "-c:a",
            "flac",
            "-shortest",
        ])
        .arg(&input)
        .status()
        .unwrap();
    assert!(status.success());
    let output = dir.join("out.mkv");
    let out = Command::new(env!("CARGO_BIN_EXE_rt4ksr"))
        .args([
            "video",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
            "-s",
            "2",
            "--",
            "-c:v",
            "ffv1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let streams = probe(&output);
    assert!(streams.contains("video,640,360,yuv420p,20"), "{streams}");
    assert!(streams.contains("audio"), "{streams}");
}

#[test]
fn a_missing_ffmpeg_is_a_clear_message() {
    let dir = common::scratch("ffmpeg-missing");
    let input = dir.join("in.mp4");
    std::fs::write(&input, b"whatever").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rt4ksr"))
        .args([
            "video",
            input.to_str().unwrap(),
            "-o",
            dir.join("o.mp4").to_str().unwrap(),
        ])
        .env("PATH", "")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ffmpeg was not found"), "{stderr}");
}
