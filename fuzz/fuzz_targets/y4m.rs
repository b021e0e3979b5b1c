//! The YUV4MPEG2 reader and the colour conversion of what it reads (odd sizes, all chroma
//! formats and depths).
#![no_main]
use rt4ksr::video::color::{ColorSpec, Matrix, frame_to_rgb};
use rt4ksr::video::y4m::{Header, read_frame};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let Ok(header) = Header::read(&mut input) else { return };
    let spec = ColorSpec {
        matrix: Matrix::default_for(header.height),
        full_range: header.full_range,
        depth: header.depth,
    };
    for index in 0..4 {
        match read_frame(&mut input, &header, index) {
            Ok(Some(frame)) => {
                let _ = frame_to_rgb(&frame, &header, spec);
            }
            _ => break,
        }
    }
});
