//! `rt4ksr bench`: per 4K frame, a row per kernel path this CPU has (ms, frames/s, ratio to AVX2, peak), burn, and a GPU device.

use anyhow::Result;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use clap::Args;
use rt4ksr::imaging::{Image, resize};
use rt4ksr::inference::{BurnUpscaler, Precision};
use rt4ksr::model::init::random_weights;
use rt4ksr::model::{Form, ModelConfig, Rt4ksr};
use rt4ksr::upscale::Engine;
use rt4ksr::yuv::{Chroma, ColorSpec, Matrix, YuvCoefficients, YuvToRgb};
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
    /// Only the fast engine (for profiling).
    #[arg(long)]
    fast_only: bool,
    /// The fast engine's kernel paths to time (portable, avx2, avx512, amx; comma-separated):
    /// by default every path this CPU has but the portable one, which takes seconds a frame.
    #[arg(long, value_delimiter = ',')]
    path: Vec<rt4ksr::engine::Path>,
    /// Measure training throughput instead (official x2 configuration, batch 16, 64x64 LR
    /// patches, forward + backward + Adam step), in patches per second: burn's autodiff
    /// and the native backward pass, and their ratio.
    #[arg(long)]
    training: bool,
    /// Also time the network on this GPU device (vulkan, wgpu, cuda:N), in fp32 and fp16:
    /// upload, inference and download of each frame, as `upscale` does. The GPU's % of peak is left blank (the peak
    /// measured is the CPU's).
    #[arg(long)]
    device: Option<rt4ksr::device::DeviceChoice>,
}

fn training_throughput(runs: usize) -> Result<()> {
    use burn::optim::{AdamConfig, GradientsParams};
    use rt4ksr::train::loss::losses;
    use rt4ksr::train::{native, run::gradients_params};
    super::allocator::keep_freed_memory_for_reuse();
    let device = Device::flex().autodiff();
    let config = ModelConfig::official(2);
    let (batch, patch) = (16, 64);
    let start = random_weights(&config, Form::Training, 1);
    let lr = Tensor::<4>::random([batch, 3, patch, patch], Distribution::Uniform(0.0, 1.0), &device);
    let hr = Tensor::<4>::random(
        [batch, 3, 2 * patch, 2 * patch],
        Distribution::Uniform(0.0, 1.0),
        &device,
    );
    let host = |t: &Tensor<4>| t.to_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
    let weights = rt4ksr::train::TrainConfig::default().loss_weights();
    let host_batch = rt4ksr::train::data::Batch {
        lr: host(&lr),
        hr: host(&hr),
        size: batch,
        lr_patch: patch,
    };

    // burn's autodiff, as `rt4ksr train --backward burn` steps.
    let mut model = Rt4ksr::from_weights(&start, &device);
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let mut burn_step = || {
        let m = model.clone();
        let sr = m.forward(lr.clone());
        let loss = losses(sr, hr.clone(), weights).total;
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        model = optim.step(5e-4, m, grads);
    };
    let burn = time(runs, &mut burn_step);

    // The hand-written pass, with the same optimizer and the host copy of the weights a
    // native training step keeps.
    let mut model = Rt4ksr::from_weights(&start, &device);
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let mut live = start.tensors.clone();
    let inner = Device::flex();
    let mut native_step = || {
        let out = native::loss_and_gradients(&config, &live, &host_batch, weights);
        model = optim.step(5e-4, model.clone(), gradients_params(&out.grads, &inner));
        live = model.to_weights("").expect("weights").tensors;
    };
    let native = time(runs, &mut native_step);
    for (name, (median, min, max)) in [("burn autodiff", burn), ("native", native)] {
        outln!(
            "training step ({name}), official x2, batch {batch}, {patch}x{patch} LR patches, {} threads: median {median:.0} ms (min {min:.0}, max {max:.0}), {:.1} patches/s",
            rayon::current_num_threads(),
            batch as f64 / (median / 1e3)
        );
    }
    outln!(
        "native / burn autodiff: {:.2}x the patches per second",
        burn.0 / native.0
    );
    Ok(())
}

#[derive(Serialize)]
struct Case {
    name: String,
    /// The fast engine's kernel path, for its rows.
    path: Option<String>,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    /// Multiply-accumulates per frame as a direct convolution counts them (the useful work).
    gmac: f64,
    gmac_per_s: f64,
}

fn time(runs: usize, f: impl FnMut()) -> (f64, f64, f64) {
    let [ms] = time_in_turn(runs, [&mut { f }]);
    spread(ms)
}

/// As [`time`] for several cases at once, each run's ms of each: after a warm-up of each,
/// every run times each case in turn, so that a machine whose speed drifts slows them alike.
fn time_in_turn<const N: usize>(runs: usize, mut cases: [&mut dyn FnMut(); N]) -> [Vec<f64>; N] {
    for f in cases.iter_mut() {
        f();
    }
    let mut ms = [(); N].map(|_| Vec::new());
    for _ in 0..runs.max(1) {
        for (f, ms) in cases.iter_mut().zip(&mut ms) {
            let t = Instant::now();
            f();
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    ms
}

/// (median, min, max) of some values.
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 2], values[0], values[values.len() - 1])
}

/// Frames of the y4m stream rows (8: the reader's and writer's start and end are a small part).
const STREAM_FRAMES: u64 = 8;

fn case(name: &str, gmac: f64, (median_ms, min_ms, max_ms): (f64, f64, f64)) -> Case {
    Case {
        name: name.into(),
        path: None,
        median_ms,
        min_ms,
        max_ms,
        gmac,
        gmac_per_s: gmac / (median_ms / 1e3),
    }
}

#[derive(Serialize)]
struct Report {
    machine: String,
    /// The GPU device the `--device` rows ran on, as its runtime names it.
    gpu: Option<String>,
    threads: usize,
    /// The fp32 FMA peak of the best fp32 path (AVX-512 or AVX2), measured in this run.
    peak_gmac_per_s: f64,
    paths: Vec<PathReport>,
    cases: Vec<Case>,
    /// Per fast-engine row, its y4m stream's frames/s over the engine's.
    streams: Vec<StreamRatio>,
}

/// A fast-engine row's y4m stream against the engine alone: the runs' ratios of frames/s
/// (the two timed in turn within each run).
#[derive(Serialize)]
struct StreamRatio {
    case: String,
    median: f64,
    min: f64,
    max: f64,
}

/// A kernel path of the fast engine: whether it runs here and its peak measured in this run.
#[derive(Serialize)]
struct PathReport {
    path: String,
    available: bool,
    /// Why not, when it does not run here.
    why_not: Option<String>,
    /// The path's multiply-accumulate peak over all threads (FMA, or AMX tile products).
    peak_gmac_per_s: Option<f64>,
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    if args.training {
        training_throughput(args.runs)?;
        return Ok(ExitCode::SUCCESS);
    }
    let device = Device::flex();
    let gpu = match args.device {
        Some(choice) if choice != rt4ksr::device::DeviceChoice::Cpu => Some(rt4ksr::device::open(choice)?),
        _ => None,
    };
    let mut cases = Vec::new();
    // Per fast-engine row: its y4m stream's frames/s over its own, run by run.
    let mut stream_ratios = Vec::new();
    use rt4ksr::engine::{FastEngine, Isa, measure_peak_gmacs};
    let survey = Isa::survey();
    for &path in &args.path {
        Isa::new(path).map_err(|why| anyhow::anyhow!("--path {path}: {why}"))?;
    }
    let paths: Vec<PathReport> = survey
        .iter()
        .map(|(path, answer)| PathReport {
            path: path.to_string(),
            available: answer.is_ok(),
            why_not: answer.as_ref().err().map(|e| e.to_string()),
            peak_gmac_per_s: answer.as_ref().ok().map(|&isa| measure_peak_gmacs(isa, 300)),
        })
        .collect();
    let peak_of = |path: rt4ksr::engine::Path| {
        paths
            .iter()
            .find(|p| p.path == path.to_string())
            .and_then(|p| p.peak_gmac_per_s)
    };
    let peak = peak_of(Isa::best_fp32().path()).expect("the best fp32 path runs here");
    let isas: Vec<Isa> = survey.iter().filter_map(|(_, a)| a.as_ref().ok().copied()).collect();

    // One 3x3 conv 24 -> 24 at the feature resolution of a 1080p LR frame.
    let x = Tensor::<4>::random([1, 24, 540, 960], Distribution::Uniform(0.0, 1.0), &device);
    let w = Tensor::<4>::random([24, 24, 3, 3], Distribution::Uniform(-0.1, 0.1), &device);
    let b = Tensor::<1>::zeros([24], &device);
    let conv_gmac = 540.0 * 960.0 * 24.0 * 24.0 * 9.0 / 1e9;
    let t = if args.fast_only {
        (0.0, 0.0, 0.0)
    } else {
        time(args.runs, || {
            let y = conv2d(
                x.clone(),
                w.clone(),
                Some(b.clone()),
                ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
            );
            let _ = y.into_data();
        })
    };
    cases.push(case("burn conv3x3 24->24 [1,24,540,960]", conv_gmac, t));

    for (scale, width, height) in [(3, 1280, 720), (2, 1920, 1080)] {
        let config = ModelConfig::official(scale);
        let weights = random_weights(&config, Form::Training, 1).folded(false)?;
        let net = Rt4ksr::from_weights(&weights, &device);
        let input = Tensor::<4>::random([1, 3, height, width], Distribution::Uniform(0.0, 1.0), &device);
        let gmac = config.folded_macs(width, height, false) as f64 / 1e9;
        let t = if args.fast_only {
            (0.0, 0.0, 0.0)
        } else {
            time(args.runs, || {
                let _ = net.forward(input.clone()).into_data();
            })
        };
        cases.push(case(
            &format!(
                "burn network x{scale} {width}x{height} -> {}x{}",
                width * scale,
                height * scale
            ),
            gmac,
            t,
        ));

        if let Some(gpu) = &gpu {
            let frame = Image::new(
                3,
                height,
                width,
                (0..3 * height * width).map(|i| (i % 255) as f32 / 255.0).collect(),
            );
            for precision in [Precision::Fp32, Precision::Fp16] {
                let upscaler = BurnUpscaler::with_precision(&weights, gpu.device.clone(), precision)?;
                let t = time(args.runs, || {
                    upscaler.upscale(&frame).expect("a valid frame");
                });
                cases.push(case(
                    &format!("{} x{scale} {width}x{height} ({precision:?})", gpu.choice),
                    gmac,
                    t,
                ));
                // As a video stream runs it: the next frame is uploaded and queued before the
                // previous one is downloaded.
                let mut in_flight: Option<rt4ksr::upscale::Pending> = None;
                let t = time(args.runs, || {
                    let next = Engine::start(&upscaler, &frame, Image::zeros(0, 0, 0)).expect("a valid frame");
                    if let Some(previous) = in_flight.replace(next) {
                        previous().expect("a valid frame");
                    }
                });
                // The last frame is waited for, so that it does not run into the next case.
                if let Some(last) = in_flight {
                    last().expect("a valid frame");
                }
                cases.push(case(
                    &format!("{} x{scale} {width}x{height} ({precision:?}, stream)", gpu.choice),
                    gmac,
                    t,
                ));
            }
        }

        let rgb = Image::new(
            3,
            height,
            width,
            (0..3 * height * width).map(|i| (i % 255) as f32 / 255.0).collect(),
        );
        // The same frame as the 4:2:0 a stream reads.
        let header = rt4ksr::video::y4m::Header::read(&mut format!("YUV4MPEG2 W{width} H{height} C420\n").as_bytes())?;
        let spec = ColorSpec {
            matrix: Matrix::default_for(height),
            full_range: false,
            depth: 8,
        };
        let yuv_frame = rt4ksr::video::color::rgb_to_frame(&rgb, &header, spec);
        let mut y4m_stream = Vec::new();
        header.write(&mut y4m_stream)?;
        for _ in 0..STREAM_FRAMES {
            rt4ksr::video::y4m::write_frame(&mut y4m_stream, &header, &yuv_frame)?;
        }
        let chosen = |path: rt4ksr::engine::Path| {
            if args.path.is_empty() {
                path != rt4ksr::engine::Path::Portable
            } else {
                args.path.contains(&path)
            }
        };
        for &isa in isas.iter().filter(|isa| chosen(isa.path())) {
            let fast = match FastEngine::with_isa(&weights, isa)? {
                Ok(engine) => engine,
                Err(why) => {
                    outln!("note: {isa} skipped: {why}");
                    continue;
                }
            };
            let mut ws = rt4ksr::engine::Workspace::default();
            let mut out = Image::zeros(0, 0, 0);
            let mut float_out = || {
                fast.upscale_into(&rgb, &mut ws, &mut out).expect("a valid frame");
            };
            // As a y4m stream's engine runs it: an 8-bit 4:2:0 frame in, converted as the
            // bands read its rows, and 8-bit 4:2:0 samples out of the last layer's stores.
            let coefficients = YuvCoefficients::new(spec);
            let conversion = YuvToRgb::new(width, height, Chroma::C420, spec);
            let mut yuv_ws = rt4ksr::engine::Workspace::default();
            let mut samples = Vec::new();
            let mut yuv_out = || {
                fast.upscale_yuv_to_yuv420(&yuv_frame, &conversion, &mut yuv_ws, coefficients, &mut samples)
                    .expect("a valid frame");
            };
            // A whole stream, as `upscale - -o -` runs it (reader and writer threads, queues, a
            // frame per core while others wait), from frames held in memory to a sink: per frame.
            let upscaler = rt4ksr::inference::FastUpscaler::new(fast.clone());
            let options = rt4ksr::video::pipeline::VideoOptions {
                max_memory: usize::MAX,
                ..Default::default()
            };
            let mut stream = || {
                let report =
                    rt4ksr::video::pipeline::upscale_y4m(&upscaler, &y4m_stream[..], std::io::sink(), options, |_| {});
                assert_eq!(
                    (report.frames, report.error),
                    (STREAM_FRAMES, None),
                    "the stream runs whole"
                );
            };
            // Run by run in turn, so that the ratios between them see the same machine.
            let [float_ms, yuv_ms, stream_ms] = time_in_turn(args.runs, [&mut float_out, &mut yuv_out, &mut stream]);
            let stream_ms: Vec<f64> = stream_ms.iter().map(|ms| ms / STREAM_FRAMES as f64).collect();
            let name = |what: &str| format!("fast engine x{scale} {width}x{height} ({isa}{what})");
            let (median, min, max) = spread(float_ms.iter().zip(&stream_ms).map(|(e, s)| e / s).collect());
            stream_ratios.push(StreamRatio {
                case: name(""),
                median,
                min,
                max,
            });
            for (what, ms) in [
                ("", float_ms),
                (", 4:2:0 in and out", yuv_ms),
                (", y4m stream", stream_ms),
            ] {
                let mut c = case(&name(what), gmac, spread(ms));
                c.path = Some(isa.to_string());
                cases.push(c);
            }
        }

        let lr = Image::new(3, height, width, vec![0.5f64; 3 * height * width]);
        let t = if args.fast_only {
            (0.0, 0.0, 0.0)
        } else {
            time(args.runs.min(3), || {
                let _ = resize::upscale(&lr, scale);
            })
        };
        cases.push(case(
            &format!("bicubic x{scale} {width}x{height} (f64, 1 thread)"),
            0.0,
            t,
        ));
    }

    let report = Report {
        machine: cpu_name(),
        gpu: gpu.as_ref().map(|g| g.name.clone()),
        threads: rayon::current_num_threads(),
        peak_gmac_per_s: peak,
        paths,
        cases,
        streams: stream_ratios,
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        outln!(
            "{} ({} threads); {} runs after one warm-up",
            report.machine,
            report.threads,
            args.runs
        );
        outln!("kernel paths of the fast engine, with the peak each measured in this run:");
        for p in &report.paths {
            match (&p.why_not, p.peak_gmac_per_s) {
                (None, Some(peak)) => outln!("  {:<16} {peak:>8.1} GMAC/s", p.path),
                (why, _) => outln!("  {:<16} not here: {}", p.path, why.as_deref().unwrap_or("")),
            }
        }
        if let Some(gpu) = &report.gpu {
            outln!("GPU: {gpu} (rows named after the --device; upload, inference and download per frame)");
        }
        outln!(
            "{:<52} {:>9} {:>8} {:>8} {:>7} {:>7} {:>9} {:>8} {:>10}",
            "case",
            "median ms",
            "min ms",
            "max ms",
            "frame/s",
            "GMAC/s",
            "% of peak",
            "vs AVX2",
            "vs bicubic"
        );
        let scale_of = |c: &Case| {
            c.name
                .split_whitespace()
                .find(|w| w.starts_with('x') && w.len() == 2)
                .unwrap_or("")
                .to_owned()
        };
        let baseline = |prefix: &str, scale: &str| {
            report
                .cases
                .iter()
                .find(|c| c.name.starts_with(prefix) && scale_of(c) == scale && c.median_ms > 0.0)
                .map(|c| c.median_ms)
        };
        let avx2 = rt4ksr::engine::Path::Avx2.to_string();
        for c in report.cases.iter().filter(|c| c.median_ms > 0.0) {
            let scale = scale_of(c);
            let ratio = match baseline("bicubic", &scale) {
                Some(b) if c.gmac > 0.0 && !c.name.contains("conv3x3") => format!("{:.2}x", b / c.median_ms),
                _ => "-".into(),
            };
            let vs_avx2 = match (&c.path, baseline(&format!("fast engine {scale}"), &scale)) {
                (Some(_), Some(_)) => report
                    .cases
                    .iter()
                    .find(|a| a.path.as_deref() == Some(avx2.as_str()) && scale_of(a) == scale)
                    .map(|a| format!("{:.2}x", a.median_ms / c.median_ms))
                    .unwrap_or_else(|| "-".into()),
                _ => "-".into(),
            };
            // The fast engine's rows against their own path's peak; burn's against the fp32 one.
            let path_peak = match &c.path {
                Some(path) => report
                    .paths
                    .iter()
                    .find(|p| &p.path == path)
                    .and_then(|p| p.peak_gmac_per_s),
                None if c.name.starts_with("burn") => Some(report.peak_gmac_per_s),
                None => None,
            };
            let pct = match path_peak {
                Some(peak) if c.gmac > 0.0 => format!("{:.0}%", 100.0 * c.gmac_per_s / peak),
                _ => "-".into(),
            };
            outln!(
                "{:<52} {:>9.1} {:>8.1} {:>8.1} {:>7.2} {:>7.1} {:>9} {:>8} {:>10}",
                c.name,
                c.median_ms,
                c.min_ms,
                c.max_ms,
                1e3 / c.median_ms,
                c.gmac_per_s,
                pct,
                vs_avx2,
                ratio
            );
        }
        outln!("(vs AVX2: the fast engine's AVX2 fp32 path of the same frame in this run over the row's)");
        outln!(
            "(4:2:0 in and out: the engine reading a YUV frame and writing y4m samples, one frame on all cores; y4m \
             stream: `upscale - -o -` of {STREAM_FRAMES} frames held in memory to a sink, per frame, a frame per core \
             while others wait behind it; the three rows of a path timed run by run in turn)"
        );
        for StreamRatio { case, median, min, max } in &report.streams {
            outln!(
                "{case}: its y4m stream at {median:.2}x the engine's frames/s (median of the runs' ratios; {min:.2}-{max:.2})"
            );
        }
        outln!("(vs bicubic: how many times faster than MATLAB-style bicubic of the same frame, f64, 1 thread)");
        outln!(
            "(GMAC/s: the network's multiply-accumulates as a direct convolution counts them, per second; the fast \
             engine's Winograd convolutions execute a quarter (AVX2), a third (AVX-512) or half (portable, AMX) of them, so its % \
             of its path's peak can pass 100%)"
        );
    }
    Ok(ExitCode::SUCCESS)
}
