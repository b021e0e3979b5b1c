//! YUV <-> RGB for video frames: BT.601 or BT.709 matrix, limited (studio) or full range, any
//! bit depth; chroma upsampled bilinearly (centred siting) and downsampled by averaging.

use super::y4m::{Chroma, Frame, Header};
use crate::imaging::Image;
pub use crate::yuv::{ColorSpec, Matrix, YuvCoefficients, YuvToRgb};

/// A frame as planar RGB in 0..1 (not clamped: out-of-gamut YUV stays visible to the model).
pub fn frame_to_rgb(frame: &Frame, header: &Header, spec: ColorSpec) -> Image<f32> {
    let mut out = Image::zeros(0, 0, 0);
    frame_to_rgb_into(frame, header, spec, &mut out);
    out
}

/// As [`frame_to_rgb`], into `out`, reallocated only when the frame size changes (a stream's
/// reader keeps it: a fresh 720p frame is 11 MB of new pages).
pub fn frame_to_rgb_into(frame: &Frame, header: &Header, spec: ColorSpec, out: &mut Image<f32>) {
    let (w, h) = (header.width, header.height);
    let conversion = YuvToRgb::new(w, h, header.chroma, spec);
    if (out.channels, out.height, out.width) != (3, h, w) {
        *out = Image::zeros(3, h, w);
    }
    let n = w * h;
    let (rs, rest) = out.data.split_at_mut(n);
    let (gs, bs) = rest.split_at_mut(n);
    let mut chroma = vec![0f32; conversion.scratch_len()];
    for (y, ((r, g), b)) in rs
        .chunks_exact_mut(w)
        .zip(gs.chunks_exact_mut(w))
        .zip(bs.chunks_exact_mut(w))
        .enumerate()
    {
        conversion.row(frame, y, [r, g, b], &mut chroma);
    }
}

/// Planar RGB in 0..1 back to a frame of the stream's format (clamped to the legal range).
pub fn rgb_to_frame(rgb: &Image<f32>, header: &Header, spec: ColorSpec) -> Frame {
    let mut encoder = FrameEncoder::default();
    encoder.encode(rgb, header, spec);
    encoder.frame
}

/// Converts RGB frames to a stream's format, keeping its buffers from frame to frame: at 4K
/// fresh ones would be ~80 MB of new pages per frame.
#[derive(Default)]
pub struct FrameEncoder {
    cb_full: Vec<f32>,
    cr_full: Vec<f32>,
    frame: Frame,
}

impl FrameEncoder {
    /// As [`rgb_to_frame`], into the encoder's own frame.
    pub fn encode(&mut self, rgb: &Image<f32>, header: &Header, spec: ColorSpec) -> &Frame {
        let (w, h) = (header.width, header.height);
        assert_eq!((rgb.width, rgb.height), (w, h));
        let coefficients = YuvCoefficients::new(spec);
        let n = w * h;
        let Self {
            cb_full,
            cr_full,
            frame,
        } = self;
        for buffer in [&mut *cb_full, &mut *cr_full] {
            buffer.resize(n, 0.0);
        }
        frame.y.resize(n, 0);
        let (rs, rest) = rgb.data.split_at(n);
        let (gs, bs) = rest.split_at(n);
        // Zipped slices: no bounds checks, so the loop vectorises.
        for (((l, cb), cr), ((&r, &g), &b)) in frame
            .y
            .iter_mut()
            .zip(cb_full.iter_mut())
            .zip(cr_full.iter_mut())
            .zip(rs.iter().zip(gs).zip(bs))
        {
            (*l, *cb, *cr) = coefficients.pixel(r, g, b);
        }
        let (cw, ch) = header.chroma.plane_size(w, h);
        let (sx, sy) = match header.chroma {
            Chroma::C420 => (2, 2),
            Chroma::C422 => (2, 1),
            _ => (1, 1),
        };
        // Averages over each chroma sample's luma area (clipped at the frame's edge).
        let down = |full: &[f32], plane: &mut Vec<u16>| {
            plane.resize(cw * ch, 0);
            if (sx, sy) == (2, 2) && w % 2 == 0 && h % 2 == 0 {
                // 4:2:0 with whole 2x2 areas (every real frame): the same sums, without the
                // general loop's bookkeeping (it was 5% of a video run).
                for (out_row, rows) in plane.chunks_exact_mut(cw).zip(full.chunks_exact(2 * w)) {
                    let (top, bottom) = rows.split_at(w);
                    for ((out, t), b) in out_row.iter_mut().zip(top.chunks_exact(2)).zip(bottom.chunks_exact(2)) {
                        *out = coefficients.chroma((((t[0] + t[1]) + b[0]) + b[1]) / 4.0);
                    }
                }
                return;
            }
            for (cy, out_row) in plane.chunks_exact_mut(cw.max(1)).enumerate().take(ch) {
                let ys = cy * sy..(cy * sy + sy).min(h);
                for (cx, out) in out_row.iter_mut().enumerate() {
                    let xs = cx * sx..(cx * sx + sx).min(w);
                    let mut sum = 0f32;
                    for y in ys.clone() {
                        for &v in &full[y * w + xs.start..y * w + xs.end] {
                            sum += v;
                        }
                    }
                    *out = coefficients.chroma(sum / (ys.len() * xs.len()) as f32);
                }
            }
        };
        down(cb_full, &mut frame.u);
        down(cr_full, &mut frame.v);
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_and_primaries_map_as_the_standards_say() {
        let header = Header::read(&mut &b"YUV4MPEG2 W2 H2 C444\n"[..]).unwrap();
        let spec = ColorSpec {
            matrix: Matrix::Bt709,
            full_range: false,
            depth: 8,
        };
        // Limited range: black 16, white 235, neutral chroma 128.
        let rgb = Image::new(
            3,
            2,
            2,
            vec![0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        );
        let f = rgb_to_frame(&rgb, &header, spec);
        assert_eq!(f.y[0], 16);
        assert_eq!(f.y[1], 235);
        assert_eq!((f.u[0], f.v[0], f.u[1], f.v[1]), (128, 128, 128, 128));
        // Pure red in BT.709: Y = 16 + 219 * 0.2126 = 62.6 -> 63, Cr = 240.
        assert_eq!((f.y[2], f.v[2]), (63, 240));
    }

    #[test]
    fn conversion_round_trips_within_rounding() {
        for (c, depth) in [("444", 8), ("420p10", 10), ("422", 8)] {
            let header = Header::read(&mut format!("YUV4MPEG2 W8 H6 C{c}\n").as_bytes()).unwrap();
            for full_range in [false, true] {
                let spec = ColorSpec {
                    matrix: Matrix::Bt601,
                    full_range,
                    depth,
                };
                // Smooth colours, so that chroma subsampling loses little.
                let rgb = Image::new(
                    3,
                    6,
                    8,
                    (0..144).map(|i| 0.2 + 0.6 * ((i % 48) as f32 / 47.0)).collect(),
                );
                let back = frame_to_rgb(&rgb_to_frame(&rgb, &header, spec), &header, spec);
                let luma = |img: &Image<f32>, i: usize| {
                    0.299 * img.data[i] + 0.587 * img.data[48 + i] + 0.114 * img.data[96 + i]
                };
                for i in 0..48 {
                    assert!(
                        (luma(&rgb, i) - luma(&back, i)).abs() < 3.0 / 219.0,
                        "{c} {full_range} {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn whole_420_areas_average_the_same_on_both_paths() {
        // A 5x4 frame takes the general path (odd width), its 4x4 crop the 4:2:0 fast path; the
        // chroma of the whole 2x2 areas they share must agree.
        let header = Header::read(&mut "YUV4MPEG2 W5 H4 C420\n".as_bytes()).unwrap();
        let spec = ColorSpec {
            matrix: Matrix::Bt709,
            full_range: false,
            depth: 8,
        };
        let rgb = Image::new(3, 4, 5, (0..60).map(|i| ((i * 37) % 61) as f32 / 60.0).collect());
        let odd = rgb_to_frame(&rgb, &header, spec);
        let even = rgb_to_frame(&rgb.crop(0, 0, 4, 4), &header.resized(4, 4), spec);
        for cy in 0..2 {
            for cx in 0..2 {
                assert_eq!(odd.u[cy * 3 + cx], even.u[cy * 2 + cx]);
                assert_eq!(odd.v[cy * 3 + cx], even.v[cy * 2 + cx]);
            }
        }
        assert_ne!(odd.u[..2], odd.v[..2], "a frame with colour");
    }
}
