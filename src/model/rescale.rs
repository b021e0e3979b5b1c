//! Moving a trained model to another scale. Only the last conv depends on the scale: it makes
//! `(2s)^2` sub-pixel outputs per colour for PixelShuffle(2s), one filter each. Instead of
//! starting that conv afresh (as EDSR starts x3 from x2), each new sub-pixel's filter is the
//! bilinear blend of the trained sub-pixel filters nearest to its place in the block, so the
//! moved model starts as the trained one followed by a bilinear resampling of each block
//! rather than as noise, and training does not first spend its steps (and the body's weights)
//! on a random output layer.

use crate::host_tensor::HostTensor;

/// The upsample conv (`weight` [3*(2*from)^2, F, k, k], `bias` [3*(2*from)^2]) of a model at
/// scale `from`, resampled for scale `to`.
pub fn resample_upsample_conv(
    weight: &HostTensor,
    bias: &HostTensor,
    from: usize,
    to: usize,
) -> (HostTensor, HostTensor) {
    let (r_from, r_to) = (2 * from, 2 * to);
    let colours = bias.numel() / (r_from * r_from);
    assert_eq!(
        colours * r_from * r_from,
        bias.numel(),
        "upsample bias for scale {from}"
    );
    assert_eq!(weight.shape[0], bias.numel(), "upsample weight and bias");
    let filter_len = weight.numel() / weight.shape[0];
    let taps = sub_pixel_taps(r_from, r_to);

    let mut new_weight = vec![0.0; colours * r_to * r_to * filter_len];
    let mut new_bias = vec![0.0; colours * r_to * r_to];
    for c in 0..colours {
        for (i, row_taps) in taps.iter().enumerate() {
            for (j, col_taps) in taps.iter().enumerate() {
                let out = (c * r_to + i) * r_to + j;
                for &(si, wi) in row_taps {
                    for &(sj, wj) in col_taps {
                        let src = (c * r_from + si) * r_from + sj;
                        let w = wi * wj;
                        new_bias[out] += w * bias.data[src];
                        let source_filter = &weight.data[src * filter_len..(src + 1) * filter_len];
                        let new_filter = &mut new_weight[out * filter_len..(out + 1) * filter_len];
                        for (d, s) in new_filter.iter_mut().zip(source_filter) {
                            *d += w * s;
                        }
                    }
                }
            }
        }
    }
    let mut shape = weight.shape.clone();
    shape[0] = new_bias.len();
    (
        HostTensor::new(shape, new_weight),
        HostTensor::new(vec![new_bias.len()], new_bias),
    )
}

/// For each of the `r_to` sub-pixel rows (or columns) of a block, the source sub-pixels of an
/// `r_from` block and their bilinear weights: the centre of row `i` sits at `(i + 0.5) / r_to`
/// of the block, clamped to the outermost source centres at the block's edges.
fn sub_pixel_taps(r_from: usize, r_to: usize) -> Vec<Vec<(usize, f32)>> {
    (0..r_to)
        .map(|i| {
            let x = ((i as f64 + 0.5) * r_from as f64 / r_to as f64 - 0.5).clamp(0.0, (r_from - 1) as f64);
            let lo = x.floor() as usize;
            let t = (x - lo as f64) as f32;
            if lo + 1 < r_from && t > 0.0 {
                vec![(lo, 1.0 - t), (lo + 1, t)]
            } else {
                vec![(lo, 1.0)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upsample conv whose sub-pixel filter (c, i, j) holds `c*100 + i*10 + j` everywhere.
    fn ramp(scale: usize, filter_len: usize) -> (HostTensor, HostTensor) {
        let r = 2 * scale;
        let value = |o: usize| ((o / (r * r)) * 100 + (o / r % r) * 10 + o % r) as f32;
        let bias: Vec<f32> = (0..3 * r * r).map(value).collect();
        let weight = bias.iter().flat_map(|&b| std::iter::repeat_n(b, filter_len)).collect();
        (
            HostTensor::new(vec![3 * r * r, filter_len, 1, 1], weight),
            HostTensor::new(vec![3 * r * r], bias),
        )
    }

    #[test]
    fn same_scale_keeps_the_conv() {
        let (w, b) = ramp(2, 5);
        assert_eq!(resample_upsample_conv(&w, &b, 2, 2), (w, b));
    }

    #[test]
    fn x2_to_x3_interpolates_each_sub_pixel_at_its_place_in_the_block() {
        let (w, b) = ramp(2, 4);
        let (nw, nb) = resample_upsample_conv(&w, &b, 2, 3);
        assert_eq!(nw.shape, vec![108, 4, 1, 1]);
        // A 6-row block's row centres fall on 4-row source rows at (i + 0.5) * 4/6 - 0.5:
        // -1/6 (clamped to 0), 1/2, 7/6, 11/6, 5/2, 19/6 (clamped to 3).
        let place = [0.0, 0.5, 7.0 / 6.0, 11.0 / 6.0, 2.5, 3.0];
        for c in 0..3 {
            for i in 0..6 {
                for j in 0..6 {
                    let o = (c * 6 + i) * 6 + j;
                    let want = c as f32 * 100.0 + place[i] * 10.0 + place[j];
                    assert!(
                        (nb.data[o] - want).abs() < 1e-4,
                        "bias ({c},{i},{j}): {} vs {want}",
                        nb.data[o]
                    );
                    for v in &nw.data[o * 4..(o + 1) * 4] {
                        assert!((v - want).abs() < 1e-4, "weight ({c},{i},{j}): {v} vs {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn x3_to_x2_and_x4_keep_the_ramp_inside_the_block() {
        for to in [2, 4] {
            let (w, b) = ramp(3, 1);
            let (_, nb) = resample_upsample_conv(&w, &b, 3, to);
            let r = 2 * to;
            assert_eq!(nb.numel(), 3 * r * r);
            for (o, v) in nb.data.iter().enumerate() {
                let (i, j) = (o / r % r, o % r);
                let place = |k: usize| ((k as f32 + 0.5) * 6.0 / r as f32 - 0.5).clamp(0.0, 5.0);
                let want = (o / (r * r)) as f32 * 100.0 + place(i) * 10.0 + place(j);
                assert!((v - want).abs() < 1e-4, "x3 -> x{to} ({o}): {v} vs {want}");
            }
        }
    }
}
