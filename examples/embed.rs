//! rt4ksr as a library: upscale one image with the embedded x2 model, then a few video frames as
//! a stream. Run with `cargo run --release --example embed -- IN.png OUT.png`.

use rt4ksr::imaging::Image;
use rt4ksr::imaging::io::{load_rgb8, save_rgb8};
use rt4ksr::inference::{best_engine, upscale_u8};
use rt4ksr::video::pipeline::upscale_frames;
use std::path::Path;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output] = args.as_slice() else {
        anyhow::bail!("usage: embed IN.png OUT.png");
    };
    // The fastest engine for these weights: the fast CPU engine for the official configuration.
    let engine = best_engine(&rt4ksr::default_models::load(2)?)?;
    let image = load_rgb8(Path::new(input))?;
    save_rgb8(
        Path::new(output),
        &upscale_u8(engine.as_ref(), &image).map_err(anyhow::Error::msg)?,
    )?;

    // Frames in, frames out: decoding, inference and writing overlap on three threads.
    let frame = image.map(|v| v as f32 / 255.0);
    let report = upscale_frames(
        engine.as_ref(),
        |n| Ok((n < 3).then(|| frame.clone())),
        |upscaled: &Image<f32>| {
            println!("{}x{} frame", upscaled.width, upscaled.height);
            Ok(())
        },
        1 << 30,
        |_| {},
    );
    println!("{} frames, error: {:?}", report.frames, report.error);
    Ok(())
}
