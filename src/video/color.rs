//! YUV <-> RGB for video frames: BT.601 or BT.709 matrix, limited (studio) or full range, any
//! bit depth; chroma upsampled bilinearly (centred siting) and downsampled by averaging.

use super::y4m::{Chroma, Frame, Header};
use crate::imaging::Image;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matrix {
    Bt601,
    Bt709,
}

impl Matrix {
    /// BT.709 for HD frames, BT.601 for SD (576 lines or fewer), as players assume.
    pub fn default_for(height: usize) -> Self {
        if height > 576 { Matrix::Bt709 } else { Matrix::Bt601 }
    }

    fn kr_kb(self) -> (f32, f32) {
        match self {
            Matrix::Bt601 => (0.299, 0.114),
            Matrix::Bt709 => (0.2126, 0.0722),
        }
    }
}

/// How a stream's samples map to colours.
#[derive(Clone, Copy, Debug)]
pub struct ColorSpec {
    pub matrix: Matrix,
    pub full_range: bool,
    pub depth: u32,
}

impl ColorSpec {
    /// (offset, scale) of luma and the scale of chroma, in sample units.
    fn ranges(&self) -> (f32, f32, f32, f32) {
        let s = (1u32 << (self.depth - 8)) as f32;
        let max = ((1u32 << self.depth) - 1) as f32;
        let mid = (1u32 << (self.depth - 1)) as f32;
        if self.full_range {
            (0.0, max, mid, max)
        } else {
            (16.0 * s, 219.0 * s, mid, 224.0 * s)
        }
    }
}

fn chroma_at(plane: &[u16], cw: usize, ch: usize, fx: f32, fy: f32) -> f32 {
    let x0 = fx.floor().clamp(0.0, (cw - 1) as f32);
    let y0 = fy.floor().clamp(0.0, (ch - 1) as f32);
    let (ax, ay) = ((fx - x0).clamp(0.0, 1.0), (fy - y0).clamp(0.0, 1.0));
    let (x0, y0) = (x0 as usize, y0 as usize);
    let (x1, y1) = ((x0 + 1).min(cw - 1), (y0 + 1).min(ch - 1));
    let p = |x: usize, y: usize| plane[y * cw + x] as f32;
    (p(x0, y0) * (1.0 - ax) + p(x1, y0) * ax) * (1.0 - ay) + (p(x0, y1) * (1.0 - ax) + p(x1, y1) * ax) * ay
}

/// A frame as planar RGB in 0..1 (not clamped: out-of-gamut YUV stays visible to the model).
pub fn frame_to_rgb(frame: &Frame, header: &Header, spec: ColorSpec) -> Image<f32> {
    let (w, h) = (header.width, header.height);
    let (y_off, y_scale, c_mid, c_scale) = spec.ranges();
    let (kr, kb) = spec.matrix.kr_kb();
    let kg = 1.0 - kr - kb;
    let (cw, ch) = header.chroma.plane_size(w, h);
    let (sx, sy) = match header.chroma {
        Chroma::C420 => (2.0, 2.0),
        Chroma::C422 => (2.0, 1.0),
        _ => (1.0, 1.0),
    };
    let mut out = Image::zeros(3, h, w);
    let n = w * h;
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let luma = (frame.y[i] as f32 - y_off) / y_scale;
            let (cb, cr) = if header.chroma == Chroma::Mono {
                (0.0, 0.0)
            } else {
                // Centred siting: luma x sits at chroma coordinate (x + 0.5) / s - 0.5.
                let fx = (x as f32 + 0.5) / sx - 0.5;
                let fy = (y as f32 + 0.5) / sy - 0.5;
                (
                    (chroma_at(&frame.u, cw, ch, fx, fy) - c_mid) / c_scale,
                    (chroma_at(&frame.v, cw, ch, fx, fy) - c_mid) / c_scale,
                )
            };
            let r = luma + 2.0 * (1.0 - kr) * cr;
            let b = luma + 2.0 * (1.0 - kb) * cb;
            let g = (luma - kr * r - kb * b) / kg;
            out.data[i] = r;
            out.data[n + i] = g;
            out.data[2 * n + i] = b;
        }
    }
    out
}

/// Planar RGB in 0..1 back to a frame of the stream's format (clamped to the legal range).
pub fn rgb_to_frame(rgb: &Image<f32>, header: &Header, spec: ColorSpec) -> Frame {
    let (w, h) = (header.width, header.height);
    assert_eq!((rgb.width, rgb.height), (w, h));
    let (y_off, y_scale, c_mid, c_scale) = spec.ranges();
    let (kr, kb) = spec.matrix.kr_kb();
    let kg = 1.0 - kr - kb;
    let max = ((1u32 << spec.depth) - 1) as f32;
    let n = w * h;
    let mut luma = vec![0u16; n];
    let mut cb_full = vec![0f32; n];
    let mut cr_full = vec![0f32; n];
    let (rs, rest) = rgb.data.split_at(n);
    let (gs, bs) = rest.split_at(n);
    // Zipped slices: no bounds checks, so the loop vectorises.
    for (((l, cb), cr), ((&r, &g), &b)) in luma
        .iter_mut()
        .zip(cb_full.iter_mut())
        .zip(cr_full.iter_mut())
        .zip(rs.iter().zip(gs).zip(bs))
    {
        let (r, g, b) = (r.clamp(0.0, 1.0), g.clamp(0.0, 1.0), b.clamp(0.0, 1.0));
        let yv = kr * r + kg * g + kb * b;
        // Non-negative here, so +0.5 and truncation round half up without a libm call.
        *l = ((yv * y_scale + y_off).clamp(0.0, max) + 0.5) as u16;
        *cb = (b - yv) / (2.0 * (1.0 - kb));
        *cr = (r - yv) / (2.0 * (1.0 - kr));
    }
    let (cw, ch) = header.chroma.plane_size(w, h);
    let (sx, sy) = match header.chroma {
        Chroma::C420 => (2, 2),
        Chroma::C422 => (2, 1),
        _ => (1, 1),
    };
    let down = |full: &[f32]| -> Vec<u16> {
        let mut plane = vec![0u16; cw * ch];
        for cy in 0..ch {
            for cx in 0..cw {
                let (mut sum, mut count) = (0f32, 0f32);
                for dy in 0..sy {
                    for dx in 0..sx {
                        let (x, y) = (cx * sx + dx, cy * sy + dy);
                        if x < w && y < h {
                            sum += full[y * w + x];
                            count += 1.0;
                        }
                    }
                }
                plane[cy * cw + cx] = ((sum / count * c_scale + c_mid).clamp(0.0, max) + 0.5) as u16;
            }
        }
        plane
    };
    Frame {
        y: luma,
        u: down(&cb_full),
        v: down(&cr_full),
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
}
