//! Raw frames for pipelines that do not speak y4m: a fixed frame size and pixel format, frames
//! back to back with no headers.

use super::color::{ColorSpec, FrameEncoder, frame_to_rgb};
use super::y4m::{Chroma, Frame, Header};
use crate::imaging::Image;
use std::io::{self, Read, Write};

/// A raw stream's settings that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RawFormatError {
    #[error("raw pixel format `{0}` is not supported (rgb24, rgb48le, yuv420p)")]
    PixFmt(String),
    #[error("`{0}` is not a size like 1280x720")]
    NotASize(String),
    #[error("`{0}` is not a usable frame size")]
    UnusableSize(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixFmt {
    Rgb24,
    Rgb48le,
    Yuv420p,
}

impl PixFmt {
    pub fn parse(name: &str) -> Result<Self, RawFormatError> {
        match name {
            "rgb24" => Ok(PixFmt::Rgb24),
            "rgb48le" => Ok(PixFmt::Rgb48le),
            "yuv420p" => Ok(PixFmt::Yuv420p),
            other => Err(RawFormatError::PixFmt(other.into())),
        }
    }

    pub fn frame_bytes(self, w: usize, h: usize) -> usize {
        match self {
            PixFmt::Rgb24 => 3 * w * h,
            PixFmt::Rgb48le => 6 * w * h,
            PixFmt::Yuv420p => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
        }
    }
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(text: &str) -> Result<(usize, usize), RawFormatError> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| RawFormatError::NotASize(text.into()))?;
    match (w.parse::<usize>(), h.parse::<usize>()) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 && w.saturating_mul(h) <= super::y4m::MAX_PIXELS => Ok((w, h)),
        _ => Err(RawFormatError::UnusableSize(text.into())),
    }
}

fn yuv_header(w: usize, h: usize) -> Header {
    Header {
        width: w,
        height: h,
        chroma: Chroma::C420,
        depth: 8,
        colorspace_tag: None,
        other_tags: vec![],
        full_range: false,
    }
}

/// Reads one frame as planar RGB; `Ok(None)` at a clean end, an error when the stream stops
/// mid-frame.
pub fn read_frame(
    input: &mut impl Read,
    fmt: PixFmt,
    w: usize,
    h: usize,
    spec: ColorSpec,
    index: u64,
) -> io::Result<Option<Image<f32>>> {
    let mut raw = vec![0u8; fmt.frame_bytes(w, h)];
    if !read_whole_frame(input, &mut raw, index)? {
        return Ok(None);
    }
    let n = w * h;
    Ok(Some(match fmt {
        PixFmt::Rgb24 | PixFmt::Rgb48le => {
            let mut img = Image::zeros(3, h, w);
            for i in 0..n {
                for c in 0..3 {
                    img.data[c * n + i] = if fmt == PixFmt::Rgb24 {
                        raw[3 * i + c] as f32 / 255.0
                    } else {
                        u16::from_le_bytes([raw[6 * i + 2 * c], raw[6 * i + 2 * c + 1]]) as f32 / 65535.0
                    };
                }
            }
            img
        }
        PixFmt::Yuv420p => {
            let mut frame = Frame::default();
            yuv420p_planes(&raw, w, h, &mut frame);
            frame_to_rgb(&frame, &yuv_header(w, h), spec)
        }
    }))
}

/// Reads one yuv420p frame into `frame`'s planes (`raw` a buffer kept between frames);
/// `Ok(false)` at a clean end, an error when the stream stops mid-frame.
pub fn read_yuv420p_into(
    input: &mut impl Read,
    (w, h): (usize, usize),
    index: u64,
    raw: &mut Vec<u8>,
    frame: &mut Frame,
) -> io::Result<bool> {
    raw.resize(PixFmt::Yuv420p.frame_bytes(w, h), 0);
    if !read_whole_frame(input, raw, index)? {
        return Ok(false);
    }
    yuv420p_planes(raw, w, h, frame);
    Ok(true)
}

/// The Y, U and V planes of a yuv420p frame's bytes.
fn yuv420p_planes(raw: &[u8], w: usize, h: usize, frame: &mut Frame) {
    let (n, c) = (w * h, w.div_ceil(2) * h.div_ceil(2));
    for (plane, samples) in [
        (&mut frame.y, &raw[..n]),
        (&mut frame.u, &raw[n..n + c]),
        (&mut frame.v, &raw[n + c..]),
    ] {
        plane.clear();
        plane.extend(samples.iter().map(|&v| v as u16));
    }
}

/// Fills `raw` from `input`; `Ok(false)` when the input ends before its first byte, an error
/// naming frame `index` when it ends later.
fn read_whole_frame(input: &mut impl Read, raw: &mut [u8], index: u64) -> io::Result<bool> {
    let mut filled = 0;
    while filled < raw.len() {
        match input.read(&mut raw[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "frame {index} is truncated ({filled} of {} bytes): the stream ended mid-frame",
                        raw.len()
                    ),
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

pub fn write_frame(out: &mut impl Write, fmt: PixFmt, rgb: &Image<f32>, spec: ColorSpec) -> io::Result<()> {
    FrameWriter::default().write(out, fmt, rgb, spec)
}

/// Writes raw frames, keeping its conversion buffers from frame to frame.
#[derive(Default)]
pub struct FrameWriter {
    encoder: FrameEncoder,
    raw: Vec<u8>,
}

impl FrameWriter {
    pub fn write(&mut self, out: &mut impl Write, fmt: PixFmt, rgb: &Image<f32>, spec: ColorSpec) -> io::Result<()> {
        let (w, h) = (rgb.width, rgb.height);
        let n = w * h;
        let raw = &mut self.raw;
        raw.clear();
        raw.reserve(fmt.frame_bytes(w, h));
        match fmt {
            PixFmt::Rgb24 => {
                for i in 0..n {
                    for c in 0..3 {
                        raw.push((rgb.data[c * n + i].clamp(0.0, 1.0) * 255.0).round() as u8);
                    }
                }
            }
            PixFmt::Rgb48le => {
                for i in 0..n {
                    for c in 0..3 {
                        raw.extend(((rgb.data[c * n + i].clamp(0.0, 1.0) * 65535.0).round() as u16).to_le_bytes());
                    }
                }
            }
            PixFmt::Yuv420p => {
                let frame = self.encoder.encode(rgb, &yuv_header(w, h), spec);
                for plane in [&frame.y, &frame.u, &frame.v] {
                    raw.extend(plane.iter().map(|&v| v as u8));
                }
            }
        }
        out.write_all(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::color::Matrix;

    #[test]
    fn rgb_frames_round_trip_exactly() {
        let spec = ColorSpec {
            matrix: Matrix::Bt709,
            full_range: false,
            depth: 8,
        };
        for fmt in [PixFmt::Rgb24, PixFmt::Rgb48le] {
            let max = if fmt == PixFmt::Rgb24 { 255.0 } else { 65535.0 };
            let img = Image::new(3, 2, 3, (0..18).map(|i| (i * 13 % 17) as f32 * 15.0 / max).collect());
            let mut bytes = Vec::new();
            write_frame(&mut bytes, fmt, &img, spec).unwrap();
            write_frame(&mut bytes, fmt, &img, spec).unwrap();
            let mut input = &bytes[..];
            for i in 0..2 {
                let back = read_frame(&mut input, fmt, 3, 2, spec, i).unwrap().unwrap();
                assert!(back.data.iter().zip(&img.data).all(|(a, b)| (a - b).abs() < 1e-6));
            }
            assert!(read_frame(&mut input, fmt, 3, 2, spec, 2).unwrap().is_none());
            let err = read_frame(&mut &bytes[..5], fmt, 3, 2, spec, 0).unwrap_err();
            assert!(err.to_string().contains("truncated"));
        }
        assert_eq!(parse_size("1280x720").unwrap(), (1280, 720));
        assert_eq!(parse_size("12x"), Err(RawFormatError::UnusableSize("12x".into())));
        assert_eq!(parse_size("12"), Err(RawFormatError::NotASize("12".into())));
        assert_eq!(
            parse_size("99999999x99999999"),
            Err(RawFormatError::UnusableSize("99999999x99999999".into()))
        );
        assert_eq!(PixFmt::parse("nv12"), Err(RawFormatError::PixFmt("nv12".into())));
    }
}
