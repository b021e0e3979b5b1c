//! The restricted unpickler alone: any byte string is an error or a value, never a crash, a
//! hang or an unbounded allocation.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = rt4ksr::weights::pickle::unpickle(data);
});
