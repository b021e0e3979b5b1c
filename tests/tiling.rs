//! Tiles with a halo as wide as the receptive field give the untiled result.

use burn::tensor::Device;
use rt4ksr::imaging::Image;
use rt4ksr::inference::{BurnUpscaler, best_engine};
use rt4ksr::model::init::perturbed_weights;
use rt4ksr::model::{Form, HfExtraction, ModelConfig};
use rt4ksr::upscale::{Engine, plan_tiles, receptive_radius, upscale_rgb};

fn picture(h: usize, w: usize) -> Image<f32> {
    let data = (0..3 * h * w)
        .map(|i| ((i * 7919) % 1000) as f32 / 999.0 * 0.8 + 0.1 * ((i % 13) as f32 / 12.0))
        .collect();
    Image::new(3, h, w, data)
}

#[test]
fn tiled_output_equals_untiled_output() {
    let official = ModelConfig::official(3);
    let merged = ModelConfig {
        merge_hf: true,
        num_blocks: 2,
        scale: 2,
        ..ModelConfig::official(2)
    };
    let avg = ModelConfig {
        merge_hf: true,
        hf_extraction: HfExtraction::AvgPool,
        residual: true,
        ..ModelConfig::official(2)
    };
    for config in [official, merged, avg] {
        let mut weights = perturbed_weights(&config, Form::Training, 3);
        weights.tensors.get_mut("gamma").unwrap().data[0] = 0.5;
        let burn: Box<dyn Engine> = Box::new(BurnUpscaler::new(&weights, Device::flex()).unwrap());
        // The fast engine where it supports the configuration (merge off), burn otherwise.
        let fast: Box<dyn Engine> = best_engine(&weights).unwrap();
        for (engine, (h, w)) in [
            (burn.as_ref(), (96, 130)),
            (fast.as_ref(), (85, 101)),
            (fast.as_ref(), (96, 130)),
        ] {
            let img = picture(h, w);
            let whole = upscale_rgb(engine, &img, usize::MAX, |_, _| {}).unwrap();
            // A budget that forces a grid of tiles with 40-pixel cores.
            let per_px = engine.bytes_per_lr_pixel();
            let halo = receptive_radius(&config);
            let budget = (40 + 2 * halo) * (40 + 2 * halo) * per_px;
            let tiles = plan_tiles(h + h % 2, w + w % 2, halo, budget / per_px);
            assert!(tiles.len() >= 6, "{} tiles", tiles.len());
            let mut seen = 0;
            let tiled = upscale_rgb(engine, &img, budget, |done, _| seen = done).unwrap();
            assert_eq!(seen, tiles.len());
            // Not bit-exact for the fast engine: its Winograd tiles round a pixel's sum
            // differently at each of the 4 positions in a tile (4 x 4 on the AVX2 path, F(4,3)
            // both ways: up to 1.4e-5 apart here, each within 1e-5 of burn's), and a tile edge
            // moves that position. A missing halo pixel would be off by far more.
            let diff = whole.max_abs_diff(&tiled);
            assert!(diff <= 3e-5, "{}: {h}x{w} tiled differs by {diff:e}", config.summary());
            assert_eq!((tiled.height, tiled.width), (h * config.scale, w * config.scale));
        }
    }
}
