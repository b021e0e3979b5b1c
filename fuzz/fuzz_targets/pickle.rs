//! See `rt4ksr::fuzz_entry::pickle`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rt4ksr::fuzz_entry::pickle(data));
