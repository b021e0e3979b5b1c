//! Why the AVX2 path has no integer products (docs/speed.md, 2026-12-07): the convolution's
//! inner loop (one weight panel of 6 output channels against 16 tiles, 12 accumulators) in fp32
//! FMAs and in int16 `vpmaddwd` pairs (16 multiply-accumulates an instruction instead of 8),
//! each over K = 24 input channels, on one core.
//!
//!     rustc --edition 2024 -O -C target-cpu=native tools/int16_microbench.rs \
//!         -o /tmp/int16_microbench
//!     /tmp/int16_microbench
//!
//! Prints each loop's G multiply-accumulates per second, three times. Needs AVX2 and FMA.

use std::arch::x86_64::*;
use std::hint::black_box;
use std::time::Instant;

const K: usize = 24;
const REPS: usize = 1 << 20;

/// The engine's loop shape: per input channel two vectors of 8 tiles and 6 broadcast weights.
#[target_feature(enable = "avx2,fma")]
unsafe fn fp32_loop(input: &[f32], panel: &[f32]) -> f32 {
    let mut total = _mm256_setzero_ps();
    for _ in 0..REPS {
        let (mut lo, mut hi) = ([_mm256_setzero_ps(); 6], [_mm256_setzero_ps(); 6]);
        for i in 0..K {
            // SAFETY: values i * 16 .. i * 16 + 16, inside the input's K * 16 (asserted).
            let (v0, v1) = unsafe {
                (
                    _mm256_loadu_ps(input.as_ptr().add(i * 16)),
                    _mm256_loadu_ps(input.as_ptr().add(i * 16 + 8)),
                )
            };
            for c in 0..6 {
                // SAFETY: i * 6 + c < K * 6, the panel's length (asserted).
                let w = unsafe { _mm256_broadcast_ss(panel.get_unchecked(i * 6 + c)) };
                lo[c] = _mm256_fmadd_ps(w, v0, lo[c]);
                hi[c] = _mm256_fmadd_ps(w, v1, hi[c]);
            }
        }
        for c in 0..6 {
            total = _mm256_add_ps(total, _mm256_add_ps(lo[c], hi[c]));
        }
    }
    _mm256_cvtss_f32(total)
}

/// The same in int16: channels in pairs (each 32-bit lane two channels of one tile), a weight
/// pair broadcast, `vpmaddwd` and a 32-bit add per accumulator.
#[target_feature(enable = "avx2,fma")]
unsafe fn int16_loop(input: &[i16], panel: &[i32]) -> i32 {
    let mut total = _mm256_setzero_si256();
    for _ in 0..REPS {
        let (mut lo, mut hi) = ([_mm256_setzero_si256(); 6], [_mm256_setzero_si256(); 6]);
        for i in 0..K / 2 {
            // SAFETY: values i * 32 .. i * 32 + 32, inside the input's K * 16 (asserted).
            let (v0, v1) = unsafe {
                (
                    _mm256_loadu_si256(input.as_ptr().add(i * 32).cast()),
                    _mm256_loadu_si256(input.as_ptr().add(i * 32 + 16).cast()),
                )
            };
            for c in 0..6 {
                // SAFETY: i * 6 + c < K / 2 * 6, the panel's length (asserted).
                let w = _mm256_set1_epi32(unsafe { *panel.get_unchecked(i * 6 + c) });
                lo[c] = _mm256_add_epi32(lo[c], _mm256_madd_epi16(w, v0));
                hi[c] = _mm256_add_epi32(hi[c], _mm256_madd_epi16(w, v1));
            }
        }
        for c in 0..6 {
            total = _mm256_add_epi32(total, _mm256_add_epi32(lo[c], hi[c]));
        }
    }
    _mm256_cvtsi256_si32(total)
}

fn main() {
    assert!(
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
        "needs AVX2 and FMA"
    );
    let macs = (REPS * K * 6 * 16) as f64;
    let (input, panel) = (vec![1f32; K * 16], vec![1f32; K * 6]);
    let (input16, panel16) = (vec![1i16; K * 16], vec![1i32; K / 2 * 6]);
    assert!(input.len() >= K * 16 && panel.len() >= K * 6 && panel16.len() >= K / 2 * 6);
    for _ in 0..3 {
        let start = Instant::now();
        // SAFETY: AVX2 and FMA detected above.
        black_box(unsafe { fp32_loop(black_box(&input), black_box(&panel)) });
        let fp32 = macs / start.elapsed().as_secs_f64() / 1e9;
        let start = Instant::now();
        // SAFETY: as above.
        black_box(unsafe { int16_loop(black_box(&input16), black_box(&panel16)) });
        let int16 = macs / start.elapsed().as_secs_f64() / 1e9;
        println!(
            "fp32 FMA {fp32:.1} GMAC/s, int16 vpmaddwd {int16:.1} GMAC/s ({:.2}x)",
            int16 / fp32
        );
    }
}
