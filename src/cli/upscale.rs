//! `rt4ksr upscale`: files, folders and y4m streams through the library.

use super::args::{ModelArgs, parse_bytes};
use super::progress;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use image::ImageFormat;
use indicatif::ProgressBar;
use rt4ksr::fsutil;
use rt4ksr::imaging::picture::{self, DecodeLimits, EncodeOptions, Picture};
use rt4ksr::upscale::file::{self, FileOptions};
use rt4ksr::upscale::{self, Engine};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct UpscaleArgs {
    /// Image files or folders (searched recursively), or `-` for standard input.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output file (one input), or folder (several inputs or a folder), or `-` for standard output.
    #[arg(long, short)]
    output: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    device: super::device::DeviceArgs,
    /// Output format (png, jpg, webp, bmp, tiff); default: the output's extension, else the input's.
    #[arg(long)]
    format: Option<String>,
    /// JPEG and WebP quality (1-100); WebP at 100 is lossless.
    #[arg(long, default_value_t = 92, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Replace existing output files.
    #[arg(long)]
    overwrite: bool,
    /// Leave existing output files alone and go on with the rest.
    #[arg(long, conflicts_with = "overwrite")]
    skip_existing: bool,
    /// Working-memory bound for the network (e.g. 512M, 2G); large images are tiled to fit.
    #[arg(long, default_value = "1G", value_parser = parse_bytes)]
    max_memory: u64,
    /// Largest input accepted, in megapixels (protects against decompression bombs).
    #[arg(long, default_value_t = 50.0)]
    max_megapixels: f64,
    /// Also write OUTPUT_compare.png: bicubic | model, side by side.
    #[arg(long)]
    compare: bool,
    /// Video: YUV matrix of the stream (default: BT.709 above 576 lines, BT.601 below).
    #[arg(long, value_parser = ["601", "709"])]
    matrix: Option<String>,
    /// Video: sample range (default: the stream's XCOLORRANGE tag, else limited).
    #[arg(long, value_parser = ["limited", "full"])]
    range: Option<String>,
    /// Raw video frames of this size (e.g. 1280x720), back to back, instead of images or y4m.
    #[arg(long, value_name = "WxH")]
    raw: Option<String>,
    /// Pixel format of raw frames: rgb24, rgb48le or yuv420p (kept at the output).
    #[arg(long, default_value = "rgb24", requires = "raw")]
    pix_fmt: String,
}

/// Whether this run is a video stream: a `.y4m` file, or standard input starting with the
/// YUV4MPEG2 signature.
fn is_y4m_input(args: &UpscaleArgs, stdin: &mut std::io::BufReader<std::io::Stdin>) -> bool {
    if args.inputs.len() != 1 {
        return false;
    }
    let input = &args.inputs[0];
    if input == Path::new("-") {
        use std::io::BufRead;
        return stdin.fill_buf().map(|b| b.starts_with(b"YUV4MPEG2")).unwrap_or(false);
    }
    input.extension().is_some_and(|e| e.eq_ignore_ascii_case("y4m"))
}

fn run_video(args: &UpscaleArgs, stdin: std::io::BufReader<std::io::Stdin>) -> Result<ExitCode> {
    use rt4ksr::video::color::Matrix;
    use rt4ksr::video::pipeline::{VideoOptions, upscale_raw, upscale_y4m};
    use rt4ksr::video::raw::{PixFmt, parse_size};
    if args.inputs.len() != 1 {
        bail!("a video stream is one input");
    }
    let raw = match &args.raw {
        Some(size) => Some((parse_size(size)?, PixFmt::parse(&args.pix_fmt)?)),
        None => None,
    };
    let engine = args.model.engine(&args.device)?;
    let options = VideoOptions {
        matrix: args
            .matrix
            .as_deref()
            .map(|m| if m == "601" { Matrix::Bt601 } else { Matrix::Bt709 }),
        full_range: args.range.as_deref().map(|r| r == "full"),
        max_memory: args.max_memory as usize,
    };
    let input: Box<dyn std::io::BufRead + Send> = if args.inputs[0] == Path::new("-") {
        Box::new(stdin)
    } else {
        let file = std::fs::File::open(&args.inputs[0])
            .with_context(|| format!("{}: cannot open", args.inputs[0].display()))?;
        Box::new(std::io::BufReader::with_capacity(1 << 20, file))
    };
    let to_stdout = args.output == Path::new("-");
    if !to_stdout {
        super::refuse_existing(&args.output, args.overwrite)?;
    }
    let temp = fsutil::temp_path_for(&args.output);
    let output: Box<dyn Write + Send> = if to_stdout {
        Box::new(std::io::BufWriter::with_capacity(1 << 20, raw_stdout()?))
    } else {
        let file = std::fs::File::create(&temp).with_context(|| format!("{}: cannot create", temp.display()))?;
        Box::new(std::io::BufWriter::with_capacity(1 << 20, file))
    };
    // Progress goes to stderr only: stdout may carry the video.
    let bar = super::progress::frames();
    let started = std::time::Instant::now();
    let report = match raw {
        Some((size, format)) => upscale_raw(engine.as_ref(), input, output, format, size, options, |n| {
            bar.set_position(n)
        }),
        None => upscale_y4m(engine.as_ref(), input, output, options, |n| bar.set_position(n)),
    };
    bar.finish_and_clear();
    if !to_stdout {
        // Frames written before an input error are whole, so the file is kept when it holds
        // any; a failed write, or an input that broke before its first frame, leaves nothing.
        let keep = match &report.error {
            None => true,
            Some(e) => e.keeps_written_frames() && report.frames > 0,
        };
        if keep {
            std::fs::rename(&temp, &args.output).with_context(|| format!("{}: cannot write", args.output.display()))?;
        } else {
            let _ = std::fs::remove_file(&temp);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{} frames in {secs:.1} s ({:.2} frames/s)",
        report.frames,
        report.frames as f64 / secs.max(1e-9)
    );
    match report.error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => Err(anyhow!("{e}")),
    }
}

/// Standard output for a video stream. Rust's `Stdout` is line-buffered: every write of a 4K
/// frame (12 MB) was scanned for its last newline and copied once more (2 % of a stream's time
/// by `perf`); a `File` on a duplicate of the descriptor writes the bytes as they are.
#[cfg(unix)]
fn raw_stdout() -> Result<std::fs::File> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot duplicate standard output")?;
    Ok(std::fs::File::from(fd))
}

#[cfg(not(unix))]
fn raw_stdout() -> Result<std::io::Stdout> {
    Ok(std::io::stdout())
}

/// One unit of work: where to read, where to write.
struct Job {
    input: PathBuf,
    output: PathBuf,
}

fn collect_dir(root: &Path, out_root: &Path, jobs: &mut Vec<Job>) -> Result<()> {
    let pairs =
        file::mirror_folder(root, out_root).with_context(|| format!("{}: cannot list the folder", root.display()))?;
    jobs.extend(pairs.into_iter().map(|(input, output)| Job { input, output }));
    Ok(())
}

fn plan_jobs(args: &UpscaleArgs) -> Result<Vec<Job>> {
    let single_file = args.inputs.len() == 1 && !args.inputs[0].is_dir();
    if single_file && !args.output.is_dir() {
        return Ok(vec![Job {
            input: args.inputs[0].clone(),
            output: args.output.clone(),
        }]);
    }
    if args.output == Path::new("-") {
        bail!("`-o -` takes a single input");
    }
    let mut jobs = Vec::new();
    for input in &args.inputs {
        if input == Path::new("-") {
            bail!("`-` (standard input) goes with a single output file or `-o -`");
        } else if input.is_dir() {
            collect_dir(input, &args.output, &mut jobs)?;
        } else {
            let name = input
                .file_name()
                .ok_or_else(|| anyhow!("{}: not a file name", input.display()))?;
            jobs.push(Job {
                input: input.clone(),
                output: args.output.join(name),
            });
        }
    }
    Ok(jobs)
}

struct Outcome {
    done: usize,
    skipped: usize,
    failed: Vec<String>,
}

pub fn run(args: UpscaleArgs) -> Result<ExitCode> {
    if args.output.as_os_str().is_empty() {
        bail!("-o needs a path");
    }
    let mut stdin = std::io::BufReader::with_capacity(1 << 20, std::io::stdin());
    if args.raw.is_some() || is_y4m_input(&args, &mut stdin) {
        return run_video(&args, stdin);
    }
    // An image on standard input: read it whole (from the reader that peeked at it).
    let stdin_bytes = if args.inputs.iter().any(|i| i == Path::new("-")) {
        let mut buf = Vec::new();
        stdin.read_to_end(&mut buf).context("reading standard input")?;
        Some(buf)
    } else {
        None
    };
    let jobs = plan_jobs(&args)?;
    if jobs.is_empty() {
        bail!("no image files (png, jpg, webp, bmp, tif) among the inputs");
    }
    let engine = args.model.engine(&args.device)?;
    let limits = DecodeLimits {
        max_pixels: (args.max_megapixels * 1e6) as u64,
    };
    let mut outcome = Outcome {
        done: 0,
        skipped: 0,
        failed: Vec::new(),
    };
    let bar = if jobs.len() > 1 {
        progress::bar(jobs.len() as u64, "files")
    } else {
        ProgressBar::hidden()
    };
    for job in &jobs {
        bar.set_message(job.input.display().to_string());
        match process(&args, engine.as_ref(), limits, job, stdin_bytes.as_deref(), &bar) {
            Ok(true) => outcome.done += 1,
            Ok(false) => outcome.skipped += 1,
            Err(e) => {
                // The library's file errors start with the path themselves.
                let (message, input) = (super::one_line(&e), job.input.display().to_string());
                let line = if message.starts_with(&input) {
                    message
                } else {
                    format!("{input}: {message}")
                };
                bar.suspend(|| eprintln!("rt4ksr: {line}"));
                outcome.failed.push(line);
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if jobs.len() > 1 || !outcome.failed.is_empty() {
        eprintln!(
            "{} upscaled, {} skipped (already there), {} failed",
            outcome.done,
            outcome.skipped,
            outcome.failed.len()
        );
    }
    Ok(if outcome.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Upscales one file; `Ok(false)` when it was skipped because the output exists.
fn process(
    args: &UpscaleArgs,
    engine: &dyn Engine,
    limits: DecodeLimits,
    job: &Job,
    stdin_bytes: Option<&[u8]>,
    bar: &ProgressBar,
) -> Result<bool> {
    let to_stdout = job.output == Path::new("-");
    if !to_stdout && job.output.exists() {
        if args.skip_existing {
            return Ok(false);
        }
        if !args.overwrite {
            bail!(
                "{} exists (use --overwrite to replace it, --skip-existing to keep it)",
                job.output.display()
            );
        }
    }
    let format = match &args.format {
        Some(name) => Some(
            file::format_from_name(name)
                .ok_or_else(|| anyhow!("unsupported output format `{name}` (png, jpg, webp, bmp, tiff)"))?,
        ),
        None => None,
    };
    let options = FileOptions {
        format,
        quality: args.quality,
        max_memory: args.max_memory as usize,
        limits,
        overwrite: args.overwrite,
    };
    let tile_bar = progress::bar(0, "tiles");
    tile_bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    let on_tile = |done, total| {
        if total > 1 && done == 1 {
            tile_bar.set_length(total as u64);
            if !bar.is_hidden() || std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                tile_bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
        }
        tile_bar.set_position(done as u64);
    };
    let result = if job.input == Path::new("-") || to_stdout {
        let bytes = if job.input == Path::new("-") {
            stdin_bytes.unwrap_or_default().to_vec()
        } else {
            std::fs::read(&job.input).context("cannot read the file")?
        };
        let format = format.unwrap_or_else(|| file::default_format(&job.input, &job.output));
        file::upscale_encoded(engine, &bytes, &job.input, format, &options, on_tile)
    } else {
        file::upscale_file(engine, &job.input, &job.output, &options, on_tile)
    };
    tile_bar.finish_and_clear();
    let upscaled = result?;
    if to_stdout {
        let mut out = std::io::stdout().lock();
        out.write_all(&upscaled.encoded)
            .and_then(|_| out.flush())
            .context("writing standard output")?;
    } else if job.input == Path::new("-") {
        file::write_output(&job.output, &upscaled.encoded)?;
    }
    if args.compare && !to_stdout {
        write_compare(&upscaled.input, &upscaled.output, engine.config().scale, &job.output)?;
    }
    Ok(true)
}

fn write_compare(input: &Picture, result: &Picture, scale: usize, output: &Path) -> Result<()> {
    let bicubic = upscale::bicubic(&input.color, scale);
    let side = upscale::side_by_side(&bicubic, &result.color);
    let pic = Picture {
        color: side,
        alpha: None,
        depth: picture::BitDepth::Eight,
        icc: result.icc.clone(),
        exif: None,
    };
    let bytes = picture::encode(
        &pic,
        EncodeOptions {
            format: ImageFormat::Png,
            quality: 92,
        },
    )
    .map_err(|e| anyhow!(e))?;
    let stem = output.file_stem().unwrap_or_default().to_string_lossy();
    let path = output.with_file_name(format!("{stem}_compare.png"));
    fsutil::write_atomic(&path, &bytes).with_context(|| format!("{}: cannot write", path.display()))
}
