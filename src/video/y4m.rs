//! YUV4MPEG2 streams: a text header (`YUV4MPEG2 W.. H.. F.. I.. A.. C.. X..`), then frames,
//! each a `FRAME` line and the Y, U, V planes (8-bit samples, or 16-bit little-endian for high
//! bit depths). Sizes are checked before any allocation; a short or malformed frame is an
//! error naming the frame, never garbage.

use std::io::{self, BufRead, Write};

pub use crate::yuv::Chroma;

/// A stream header. Tags this program does not interpret are kept and written back.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub width: usize,
    pub height: usize,
    pub chroma: Chroma,
    /// Bits per sample, 8 to 16.
    pub depth: u32,
    /// The `C` tag as read (e.g. `420jpeg`, `420p10`); `None` when absent (4:2:0, 8 bit).
    pub colorspace_tag: Option<String>,
    /// Every other tag (`F`, `I`, `A`, `X...`) in order, without the size.
    pub other_tags: Vec<String>,
    /// Full-range samples (`XCOLORRANGE=FULL`); limited (studio) range otherwise.
    pub full_range: bool,
}

/// Largest frame accepted, in luma pixels (8K and a margin).
pub const MAX_PIXELS: usize = 64_000_000;

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn parse_colorspace(tag: &str) -> Option<(Chroma, u32)> {
    let (base, depth) = match tag.split_once('p') {
        Some((base, d)) if !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()) => (base, d.parse().ok()?),
        _ => (tag, 8),
    };
    let chroma = match base {
        "420" | "420jpeg" | "420paldv" | "420mpeg2" => Chroma::C420,
        "422" => Chroma::C422,
        "444" => Chroma::C444,
        "mono" => Chroma::Mono,
        "mono16" => return Some((Chroma::Mono, 16)),
        _ => return None,
    };
    (8..=16).contains(&depth).then_some((chroma, depth))
}

impl Header {
    /// Reads the header line.
    pub fn read(input: &mut impl BufRead) -> io::Result<Self> {
        let mut line = Vec::new();
        io::Read::take(&mut *input, 4096).read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err(bad("empty input: no YUV4MPEG2 header"));
        }
        if !line.ends_with(b"\n") {
            return Err(bad("the YUV4MPEG2 header is not terminated (truncated, or not y4m)"));
        }
        let text = std::str::from_utf8(&line[..line.len() - 1]).map_err(|_| bad("the y4m header is not text"))?;
        let mut words = text.split(' ').filter(|w| !w.is_empty());
        if words.next() != Some("YUV4MPEG2") {
            return Err(bad("not a YUV4MPEG2 stream (no `YUV4MPEG2` signature)"));
        }
        let (mut width, mut height) = (None, None);
        let mut colorspace_tag = None;
        let mut other_tags = Vec::new();
        let mut full_range = false;
        for word in words {
            // The tag is the first character, which need not be one byte (found by fuzzing:
            // splitting at byte 1 panicked on a non-ASCII tag).
            let mut chars = word.chars();
            let tag = chars.next();
            let value = chars.as_str();
            match tag {
                Some('W') => width = value.parse::<usize>().ok(),
                Some('H') => height = value.parse::<usize>().ok(),
                Some('C') => colorspace_tag = Some(value.to_owned()),
                _ => {
                    if word.eq_ignore_ascii_case("XCOLORRANGE=FULL") {
                        full_range = true;
                    }
                    other_tags.push(word.to_owned());
                }
            }
        }
        let (width, height) = match (width, height) {
            (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
            _ => return Err(bad("the y4m header lacks a valid W or H")),
        };
        if width.saturating_mul(height) > MAX_PIXELS {
            return Err(bad(format!(
                "{width}x{height} frames are larger than this program accepts"
            )));
        }
        let (chroma, depth) = match &colorspace_tag {
            None => (Chroma::C420, 8),
            Some(tag) => {
                parse_colorspace(tag).ok_or_else(|| bad(format!("y4m colourspace `C{tag}` is not supported")))?
            }
        };
        Ok(Self {
            width,
            height,
            chroma,
            depth,
            colorspace_tag,
            other_tags,
            full_range,
        })
    }

    /// The same stream at another frame size.
    pub fn resized(&self, width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            ..self.clone()
        }
    }

    pub fn write(&self, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
        write!(out, "YUV4MPEG2 W{} H{}", self.width, self.height)?;
        for tag in &self.other_tags {
            write!(out, " {tag}")?;
        }
        if let Some(c) = &self.colorspace_tag {
            write!(out, " C{c}")?;
        }
        writeln!(out)
    }

    fn bytes_per_sample(&self) -> usize {
        if self.depth > 8 { 2 } else { 1 }
    }

    /// Bytes of one frame's planes.
    pub fn frame_bytes(&self) -> usize {
        let (cw, ch) = self.chroma.plane_size(self.width, self.height);
        (self.width * self.height + 2 * cw * ch) * self.bytes_per_sample()
    }
}

pub use crate::yuv::Frame;

/// Reads the next frame; `Ok(None)` at a clean end of stream. `index` names the frame in errors.
pub fn read_frame(input: &mut impl BufRead, header: &Header, index: u64) -> io::Result<Option<Frame>> {
    let mut frame = Frame::default();
    Ok(read_frame_into(input, header, index, &mut Vec::new(), &mut frame)?.then_some(frame))
}

/// As [`read_frame`], into `frame` through `raw`, buffers kept from frame to frame (a stream's
/// reader: fresh ones cost their pages and a copy each frame); false at a clean end of stream.
pub fn read_frame_into(
    input: &mut impl BufRead,
    header: &Header,
    index: u64,
    raw: &mut Vec<u8>,
    frame: &mut Frame,
) -> io::Result<bool> {
    let mut line = Vec::new();
    io::Read::take(&mut *input, 1024).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(false);
    }
    if !line.starts_with(b"FRAME") || !line.ends_with(b"\n") {
        return Err(bad(format!(
            "frame {index}: expected a FRAME marker (the stream is corrupt, or its frame size changed)"
        )));
    }
    raw.resize(header.frame_bytes(), 0);
    let mut filled = 0;
    while filled < raw.len() {
        match input.read(&mut raw[filled..]) {
            Ok(0) => {
                return Err(bad(format!(
                    "frame {index} is truncated ({filled} of {} bytes): the stream ended mid-frame",
                    raw.len()
                )));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let (cw, ch) = header.chroma.plane_size(header.width, header.height);
    let (bytes, mut rest) = (header.bytes_per_sample(), &raw[..]);
    for (plane, len) in [
        (&mut frame.y, header.width * header.height),
        (&mut frame.u, cw * ch),
        (&mut frame.v, cw * ch),
    ] {
        let (samples, after) = rest.split_at(len * bytes);
        plane.clear();
        if bytes == 2 {
            plane.extend(samples.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])));
        } else {
            plane.extend(samples.iter().map(|&b| b as u16));
        }
        rest = after;
    }
    Ok(true)
}

pub fn write_frame(out: &mut impl Write, header: &Header, frame: &Frame) -> io::Result<()> {
    write_frame_with(out, header, frame, &mut Vec::new())
}

/// As [`write_frame`], serialising through `raw`, a buffer kept from frame to frame.
pub fn write_frame_with(out: &mut impl Write, header: &Header, frame: &Frame, raw: &mut Vec<u8>) -> io::Result<()> {
    raw.clear();
    raw.reserve(header.frame_bytes());
    for plane in [&frame.y, &frame.u, &frame.v] {
        if header.bytes_per_sample() == 2 {
            raw.extend(plane.iter().flat_map(|v| v.to_le_bytes()));
        } else {
            raw.extend(plane.iter().map(|&v| v as u8));
        }
    }
    write_frame_samples(out, raw)
}

/// Writes a frame whose samples are already as the stream stores them (the planes one after
/// the other, 8-bit or 16-bit little-endian).
pub fn write_frame_samples(out: &mut impl Write, samples: &[u8]) -> io::Result<()> {
    out.write_all(b"FRAME\n")?;
    out.write_all(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_keep_their_tags() {
        let text = b"YUV4MPEG2 W320 H180 F25:1 Ip A1:1 C420p10 XYSCSS=420P10 XCOLORRANGE=FULL\n";
        let h = Header::read(&mut &text[..]).unwrap();
        assert_eq!(
            (h.width, h.height, h.chroma, h.depth, h.full_range),
            (320, 180, Chroma::C420, 10, true)
        );
        let mut out = Vec::new();
        h.resized(960, 540).write(&mut out).unwrap();
        assert_eq!(
            out,
            b"YUV4MPEG2 W960 H540 F25:1 Ip A1:1 XYSCSS=420P10 XCOLORRANGE=FULL C420p10\n"
        );
    }

    #[test]
    fn frames_round_trip_at_every_depth_and_chroma() {
        for c in ["420jpeg", "422", "444", "mono", "420p10", "444p12", "mono16"] {
            let text = format!("YUV4MPEG2 W5 H3 F30:1 C{c}\n");
            let h = Header::read(&mut text.as_bytes()).unwrap();
            let (cw, ch) = h.chroma.plane_size(5, 3);
            let max = (1u32 << h.depth) - 1;
            let frame = Frame {
                y: (0..15).map(|i| (i * 37 % (max + 1)) as u16).collect(),
                u: (0..cw * ch).map(|i| (max - i as u32) as u16).collect(),
                v: (0..cw * ch).map(|i| (i as u32 * 3 % (max + 1)) as u16).collect(),
            };
            let mut bytes = Vec::new();
            h.write(&mut bytes).unwrap();
            write_frame(&mut bytes, &h, &frame).unwrap();
            let mut input = &bytes[..];
            let back = Header::read(&mut input).unwrap();
            assert_eq!(read_frame(&mut input, &back, 0).unwrap(), Some(frame), "{c}");
            assert_eq!(read_frame(&mut input, &back, 1).unwrap(), None);
        }
    }

    #[test]
    fn non_ascii_tags_are_kept_not_a_panic() {
        let header = Header::read(&mut "YUV4MPEG2 W4 H2 \u{232}PEW2 \u{e9}t\u{e9}\n".as_bytes()).unwrap();
        assert_eq!(
            header.other_tags,
            vec!["\u{232}PEW2".to_string(), "\u{e9}t\u{e9}".to_string()]
        );
    }

    #[test]
    fn truncation_and_garbage_are_named_errors() {
        let h = Header::read(&mut &b"YUV4MPEG2 W4 H2 C444\n"[..]).unwrap();
        let mut bytes = b"FRAME\n".to_vec();
        bytes.extend([0u8; 10]);
        let err = read_frame(&mut &bytes[..], &h, 7).unwrap_err().to_string();
        assert!(err.contains("frame 7 is truncated"), "{err}");
        let err = read_frame(&mut &b"GARBAGE\n"[..], &h, 3).unwrap_err().to_string();
        assert!(err.contains("frame 3"), "{err}");
        assert!(Header::read(&mut &b"YUV4MPEG2 W100000 H100000\n"[..]).is_err());
        assert!(Header::read(&mut &b"P6 1 1 255\n"[..]).is_err());
        assert!(
            Header::read(&mut &b"YUV4MPEG2 W4 H2 Cfancy\n"[..])
                .unwrap_err()
                .to_string()
                .contains("Cfancy")
        );
    }
}
