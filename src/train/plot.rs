//! The training curves as a PNG: loss (log scale) and validation Y-PSNR against the step, with
//! axis ranges written in a small built-in bitmap font (no font files needed on the machine).

use image::{Rgb, RgbImage};

const W: u32 = 960;
const H: u32 = 420;
const PANEL_W: u32 = 420;
const MARGIN: u32 = 40;

/// 3x5 glyphs, one row per u8 (3 low bits, left pixel highest).
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        'e' => [0, 7, 7, 4, 7],
        'l' => [6, 2, 2, 2, 7],
        'o' => [0, 7, 5, 5, 7],
        's' => [0, 7, 6, 3, 7],
        't' => [2, 7, 2, 2, 3],
        'p' => [0, 7, 5, 7, 4],
        'd' => [1, 7, 5, 5, 7],
        'B' => [6, 5, 6, 5, 6],
        'P' => [7, 5, 7, 4, 4],
        'S' => [7, 4, 7, 1, 7],
        'N' => [5, 7, 7, 7, 5],
        'R' => [7, 5, 6, 5, 5],
        'Y' => [5, 5, 2, 2, 2],
        'v' => [0, 5, 5, 5, 2],
        'a' => [0, 7, 1, 7, 7],
        ' ' => [0; 5],
        _ => [7, 7, 7, 7, 7],
    }
}

fn text(img: &mut RgbImage, x: u32, y: u32, s: &str, color: Rgb<u8>) {
    let scale = 2;
    for (i, c) in s.chars().enumerate() {
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..3 {
                if bits & (4 >> col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let px = x + (i as u32 * 4 + col) * scale + dx;
                            let py = y + row as u32 * scale + dy;
                            if px < W && py < H {
                                img.put_pixel(px, py, color);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn line(img: &mut RgbImage, (x0, y0): (f64, f64), (x1, y1): (f64, f64), color: Rgb<u8>) {
    let steps = ((x1 - x0).abs().max((y1 - y0).abs()) as usize).max(1);
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
        if x >= 0.0 && y >= 0.0 && (x as u32) < W && (y as u32) < H {
            img.put_pixel(x as u32, y as u32, color);
        }
    }
}

fn short(v: f64) -> String {
    if v != 0.0 && (v.abs() < 0.01 || v.abs() >= 1e5) {
        format!("{v:.1e}")
    } else {
        format!("{v:.3}")
    }
}

/// One panel: the series as a polyline in its own box, x = step, optionally log y.
fn panel(img: &mut RgbImage, left: u32, title: &str, points: &[(f64, f64)], log_y: bool, color: Rgb<u8>) {
    let (top, bottom, right) = (MARGIN, H - MARGIN, left + PANEL_W);
    let grey = Rgb([160, 160, 160]);
    line(img, (left as f64, top as f64), (left as f64, bottom as f64), grey);
    line(img, (left as f64, bottom as f64), (right as f64, bottom as f64), grey);
    text(img, left, 10, title, Rgb([0, 0, 0]));
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(_, y)| y.is_finite() && (!log_y || *y > 0.0))
        .collect();
    if pts.is_empty() {
        return;
    }
    let ty = |y: f64| if log_y { y.ln() } else { y };
    let (x_min, x_max) = (
        pts[0].0,
        pts.iter().map(|p| p.0).fold(f64::MIN, f64::max).max(pts[0].0 + 1.0),
    );
    let (y_min, y_max) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(ty(p.1)), b.max(ty(p.1))));
    let y_span = (y_max - y_min).max(1e-9);
    let map = |(x, y): (f64, f64)| {
        (
            left as f64 + (x - x_min) / (x_max - x_min) * PANEL_W as f64,
            bottom as f64 - (ty(y) - y_min) / y_span * (bottom - top) as f64,
        )
    };
    for pair in pts.windows(2) {
        line(img, map(pair[0]), map(pair[1]), color);
    }
    // A small mark on each point, so that sparse series (validation) show too.
    for &p in &pts {
        let (x, y) = map(p);
        for d in -1..=1 {
            line(img, (x + d as f64, y - 1.0), (x + d as f64, y + 1.0), color);
        }
    }
    let (lo, hi) = if log_y {
        (y_min.exp(), y_max.exp())
    } else {
        (y_min, y_max)
    };
    text(img, left + 4, top - 14, &short(hi), grey);
    text(img, left + 4, bottom - 14, &short(lo), grey);
    text(img, left, bottom + 6, &format!("{}", x_min as u64), grey);
    let end = format!("step {}", x_max as u64);
    text(img, right - end.len() as u32 * 8, bottom + 6, &end, grey);
}

/// Renders loss and validation curves (`(step, value)` pairs) as PNG bytes.
pub fn render(loss: &[(f64, f64)], validation: &[(f64, f64)]) -> Vec<u8> {
    let mut img = RgbImage::from_pixel(W, H, Rgb([255, 255, 255]));
    panel(&mut img, MARGIN, "loss", loss, true, Rgb([200, 40, 40]));
    panel(
        &mut img,
        W - MARGIN - PANEL_W,
        "val Y-PSNR dB",
        validation,
        false,
        Rgb([30, 90, 200]),
    );
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png)
        .expect("PNG encodes in memory");
    bytes.into_inner()
}

/// Points (step, value) of a curve.
pub type Series = Vec<(f64, f64)>;

/// Reads `log.csv` (step,loss,l1,hf,lr,steps_per_sec,val_psnr_y) into the loss and validation
/// series.
pub fn series_from_csv(text: &str) -> (Series, Series) {
    let (mut loss, mut val) = (Vec::new(), Vec::new());
    for row in text.lines().skip(1) {
        let cols: Vec<&str> = row.split(',').collect();
        let Some(step) = cols.first().and_then(|s| s.parse::<f64>().ok()) else {
            continue;
        };
        if let Some(l) = cols.get(1).and_then(|s| s.parse::<f64>().ok()) {
            loss.push((step, l));
        }
        if let Some(v) = cols.get(6).and_then(|s| s.parse::<f64>().ok()) {
            val.push((step, v));
        }
    }
    (loss, val)
}

/// The curves of a chain of runs, each started where the one before ended (a schedule that
/// continues another's weights counts its steps from 0 again): each log's steps are offset by
/// the last step of the logs before it.
pub fn chain_series(logs: &[&str]) -> (Series, Series) {
    let (mut loss, mut val) = (Series::new(), Series::new());
    let mut offset = 0.0;
    for text in logs {
        let (l, v) = series_from_csv(text);
        let last = l.iter().chain(&v).map(|p| p.0).fold(0.0, f64::max);
        loss.extend(l.into_iter().map(|(s, y)| (s + offset, y)));
        val.extend(v.into_iter().map(|(s, y)| (s + offset, y)));
        offset += last;
    }
    (loss, val)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_continues_each_log_where_the_last_ended() {
        let a = "step,loss,l1,hf,lr,steps_per_sec,val_psnr_y\n100,0.3,,,,,\n200,,,,,,30.0\n";
        let b = "step,loss,l1,hf,lr,steps_per_sec,val_psnr_y\n50,0.2,,,,,\n100,,,,,,31.0\n";
        let (loss, val) = chain_series(&[a, b]);
        assert_eq!(loss, vec![(100.0, 0.3), (250.0, 0.2)]);
        assert_eq!(val, vec![(200.0, 30.0), (300.0, 31.0)]);
    }

    #[test]
    fn renders_a_png_of_the_curves() {
        let csv = "step,loss,l1,hf,lr,steps_per_sec,val_psnr_y\n100,0.3,0.2,0.1,5e-4,1.0,\n200,0.1,0.07,0.03,5e-4,1.0,\n200,,,,5e-4,,28.5\n300,0.08,0.05,0.03,5e-4,1.0,\n";
        let (loss, val) = series_from_csv(csv);
        assert_eq!(loss, vec![(100.0, 0.3), (200.0, 0.1), (300.0, 0.08)]);
        assert_eq!(val, vec![(200.0, 28.5)]);
        let png = render(&loss, &val);
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (W, H));
        // The loss curve is drawn in red somewhere.
        assert!(img.pixels().any(|p| *p == Rgb([200, 40, 40])));
    }
}
