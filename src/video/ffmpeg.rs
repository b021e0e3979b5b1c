//! Whole video files through ffmpeg: ffmpeg decodes to a YUV4MPEG2 pipe, the pipeline
//! upscales, and a second ffmpeg encodes with the user's codec options while copying the audio
//! and subtitle streams of the original.

use super::pipeline::{StreamError, StreamReport, VideoOptions, upscale_y4m};
use crate::upscale::Engine;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// Why a video could not be transcoded.
#[derive(Debug, thiserror::Error)]
pub enum FfmpegError {
    #[error(
        "ffmpeg was not found on PATH; `rt4ksr video` needs it (e.g. `apt-get install ffmpeg`). \
         Without ffmpeg, pipe YUV4MPEG2 frames through `rt4ksr upscale - -o -`"
    )]
    NotFound,
    #[error("cannot start ffmpeg: {0}")]
    Start(std::io::Error),
    #[error("ffmpeg did not finish: {0}")]
    Wait(std::io::Error),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("ffmpeg could not decode {} (exit {status})", .path.display())]
    Decode { path: PathBuf, status: ExitStatus },
    #[error("ffmpeg could not encode {} (exit {status})", .path.display())]
    Encode { path: PathBuf, status: ExitStatus },
}

/// Checks that `ffmpeg` runs; the error says how to get it.
pub fn check_ffmpeg() -> Result<(), FfmpegError> {
    match Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        _ => Err(FfmpegError::NotFound),
    }
}

/// Settings of one `rt4ksr video` run.
pub struct VideoJob<'a> {
    pub input: &'a Path,
    pub output: &'a Path,
    /// Pixel format of the decoded frames (a y4m one: yuv420p, yuv420p10le, yuv444p, gray...).
    pub pix_fmt: &'a str,
    /// Encoder options for the output, e.g. `-c:v libx264 -crf 16`.
    pub encoder_args: &'a [String],
    pub options: VideoOptions,
}

/// Runs decode -> upscale -> encode; returns the frame count or what went wrong.
pub fn transcode(
    engine: &(dyn Engine + Sync),
    job: &VideoJob<'_>,
    on_frame: impl FnMut(u64),
) -> Result<u64, FfmpegError> {
    check_ffmpeg()?;
    let mut decoder = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(job.input)
        .args([
            "-map",
            "0:v:0",
            "-pix_fmt",
            job.pix_fmt,
            "-strict",
            "-1",
            "-f",
            "yuv4mpegpipe",
            "-",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(FfmpegError::Start)?;
    let mut encoder = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "yuv4mpegpipe", "-i", "-", "-i"])
        .arg(job.input)
        .args([
            "-map", "0:v:0", "-map", "1:a?", "-map", "1:s?", "-c:a", "copy", "-c:s", "copy",
        ])
        .args(job.encoder_args)
        .arg(job.output)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(FfmpegError::Start)?;
    let frames_in = BufReader::with_capacity(1 << 20, decoder.stdout.take().expect("piped"));
    let frames_out = std::io::BufWriter::with_capacity(1 << 20, encoder.stdin.take().expect("piped"));
    let StreamReport { frames, error } = upscale_y4m(engine, frames_in, frames_out, job.options, on_frame);
    let decoded = decoder.wait().map_err(FfmpegError::Wait)?;
    let encoded = encoder.wait().map_err(FfmpegError::Wait)?;
    if let Some(e) = error {
        return Err(e.into());
    }
    if !decoded.success() {
        return Err(FfmpegError::Decode {
            path: job.input.to_path_buf(),
            status: decoded,
        });
    }
    if !encoded.success() {
        return Err(FfmpegError::Encode {
            path: job.output.to_path_buf(),
            status: encoded,
        });
    }
    Ok(frames)
}
