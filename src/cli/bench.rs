use anyhow::Result;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use clap::Args;
use rt4ksr::imaging::{Image, resize};
use rt4ksr::model::init::random_weights;
use rt4ksr::model::{Form, ModelConfig, Rt4ksr};
use serde::Serialize;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Timed runs per case (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Case {
    name: String,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    gmac: f64,
    gmac_per_s: f64,
}

fn time(runs: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    f();
    let mut ms: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[0], ms[ms.len() - 1])
}

fn case(name: &str, gmac: f64, (median_ms, min_ms, max_ms): (f64, f64, f64)) -> Case {
    Case { name: name.into(), median_ms, min_ms, max_ms, gmac, gmac_per_s: gmac / (median_ms / 1e3) }
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let device = Device::flex();
    let mut cases = Vec::new();

    // One 3x3 conv 24 -> 24 at the feature resolution of a 1080p LR frame.
    let x = Tensor::<4>::random([1, 24, 540, 960], Distribution::Uniform(0.0, 1.0), &device);
    let w = Tensor::<4>::random([24, 24, 3, 3], Distribution::Uniform(-0.1, 0.1), &device);
    let b = Tensor::<1>::zeros([24], &device);
    let conv_gmac = 540.0 * 960.0 * 24.0 * 24.0 * 9.0 / 1e9;
    let t = time(args.runs, || {
        let y = conv2d(x.clone(), w.clone(), Some(b.clone()), ConvOptions::new([1, 1], [1, 1], [1, 1], 1));
        let _ = y.into_data();
    });
    cases.push(case("burn conv3x3 24->24 [1,24,540,960]", conv_gmac, t));

    for (scale, width, height) in [(3, 1280, 720), (2, 1920, 1080)] {
        let config = ModelConfig::official(scale);
        let weights = random_weights(&config, Form::Training, 1).folded(false)?;
        let net = Rt4ksr::from_weights(&weights, &device);
        let input = Tensor::<4>::random([1, 3, height, width], Distribution::Uniform(0.0, 1.0), &device);
        let gmac = config.folded_macs(width, height, false) as f64 / 1e9;
        let t = time(args.runs, || {
            let _ = net.forward(input.clone()).into_data();
        });
        cases.push(case(&format!("burn network x{scale} {width}x{height} -> {}x{}", width * scale, height * scale), gmac, t));

        let fast = rt4ksr::engine::FastEngine::new(&weights)?.expect("official config is supported");
        let rgb = Image::new(3, height, width, (0..3 * height * width).map(|i| (i % 255) as f32 / 255.0).collect());
        let mut ws = rt4ksr::engine::Workspace::default();
        let t = time(args.runs, || {
            let _ = fast.upscale(&rgb, &mut ws).unwrap();
        });
        cases.push(case(&format!("fast engine x{scale} {width}x{height} ({:?})", fast.isa), gmac, t));

        let lr = Image::new(3, height, width, vec![0.5f64; 3 * height * width]);
        let t = time(args.runs.min(3), || {
            let _ = resize::upscale(&lr, scale);
        });
        cases.push(case(&format!("bicubic x{scale} {width}x{height} (f64, 1 thread)"), 0.0, t));
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&cases)?);
    } else {
        println!("{:<48} {:>10} {:>10} {:>10} {:>8} {:>8}", "case", "median ms", "min ms", "max ms", "GMAC", "GMAC/s");
        for c in &cases {
            println!(
                "{:<48} {:>10.1} {:>10.1} {:>10.1} {:>8.2} {:>8.1}",
                c.name, c.median_ms, c.min_ms, c.max_ms, c.gmac, c.gmac_per_s
            );
        }
        println!("threads: {} (rayon); runs: {} after one warm-up", rayon::current_num_threads(), args.runs);
    }
    Ok(ExitCode::SUCCESS)
}
