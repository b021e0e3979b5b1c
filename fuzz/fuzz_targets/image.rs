//! The image-loading path of `rt4ksr upscale`: format sniffing, decoding, 16-bit, grey, alpha,
//! ICC/EXIF, with the decompression-bomb limit.
#![no_main]
use rt4ksr::imaging::picture::{DecodeLimits, decode};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = decode(data, DecodeLimits { max_pixels: 4_000_000 });
});
