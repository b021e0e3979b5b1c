//! Streams of frames through the network: a reader thread, the upscaler, and a writer thread,
//! joined by bounded queues so decoding, inference and encoding overlap and memory stays
//! bounded. Frames keep their order. Every frame written before an error is complete.

use super::color::{ColorSpec, FrameEncoder, Matrix, YuvCoefficients, YuvToRgb, frame_to_rgb_into};
use super::raw::{self, PixFmt};
use super::y4m::{self, Chroma, Frame, Header};
use crate::imaging::Image;
use crate::upscale::{Engine, FrameThreads, Pending, start_upscale, tiles_for};
use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{SyncSender, sync_channel};

/// Colour interpretation choices; `None` means "from the stream / by frame size".
#[derive(Clone, Copy, Debug, Default)]
pub struct VideoOptions {
    pub matrix: Option<Matrix>,
    pub full_range: Option<bool>,
    /// Working-memory bound for the network, as for images.
    pub max_memory: usize,
}

/// What a finished (or failed) stream did.
#[derive(Debug)]
pub struct StreamReport {
    pub frames: u64,
    pub error: Option<StreamError>,
}

/// Why a stream stopped early.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// Reading or parsing the input failed (the message of the I/O or format error).
    #[error("input: {0}")]
    Input(String),
    #[error("input: frame {index} changes the frame size mid-stream")]
    FrameSizeChanged { index: u64 },
    /// The network refused or failed a frame.
    #[error("frame {index}: {error}")]
    Frame {
        index: u64,
        error: crate::upscale::UpscaleError,
    },
    #[error("output closed after {frames} frames")]
    OutputClosed { frames: u64 },
    #[error("output: {0}")]
    Output(String),
    #[error("the writer thread failed")]
    WriterFailed,
}

impl StreamError {
    /// Whether the frames written before the error are whole and worth keeping: the input
    /// ended badly, while the network and the output still worked.
    pub fn keeps_written_frames(&self) -> bool {
        matches!(self, StreamError::Input(_) | StreamError::FrameSizeChanged { .. })
    }
}

/// Decoded frames waiting for the network (small: LR frames).
const QUEUE: usize = 3;
/// Upscaled frames waiting for the writer: one, as each is large (100 MB for a float 4K frame,
/// 12 MB in 8-bit 4:2:0) and writing is faster than inference.
const OUT_QUEUE: usize = 1;

/// Upscales a stream of RGB frames: `read(n)` runs on a reader thread and yields frame n (or
/// `None` at the end), `write` runs on a writer thread, and inference runs between them: here,
/// or a frame per core on threads of their own while frames wait, where the engine computes
/// frames together ([`Engine::frames_at_once`]).
pub fn upscale_frames(
    engine: &(dyn Engine + Sync),
    mut read: impl FnMut(u64) -> io::Result<Option<Image<f32>>> + Send,
    write: impl FnMut(&Image<f32>) -> io::Result<()> + Send,
    max_memory: usize,
    on_frame: impl FnMut(u64),
) -> StreamReport {
    upscale_recycled_frames(engine, move |index, _| read(index), write, max_memory, on_frame)
}

/// As [`upscale_frames`], `read` also given an input frame to reuse once its frame is done.
fn upscale_recycled_frames(
    engine: &(dyn Engine + Sync),
    read: impl FnMut(u64, Option<Image<f32>>) -> io::Result<Option<Image<f32>>> + Send,
    write: impl FnMut(&Image<f32>) -> io::Result<()> + Send,
    max_memory: usize,
    on_frame: impl FnMut(u64),
) -> StreamReport {
    let size = |rgb: &Image<f32>| (rgb.width, rgb.height);
    let in_flight = |size| in_flight_limit(engine, size, max_memory);
    // Decided once, from the first frame: the stream's frames all have its size.
    let at_once = std::cell::OnceCell::new();
    std::thread::scope(|scope| {
        let start = |rgb: Image<f32>, buffer: Option<Image<f32>>, waiting: bool| -> Result<Pending<'_, _>, _> {
            let mut out = buffer.unwrap_or_else(|| Image::zeros(0, 0, 0));
            let at_once = *at_once.get_or_init(|| frames_at_once(engine, size(&rgb), max_memory));
            if waiting && at_once > 1 {
                let threads = FrameThreads::CallingThread;
                let frame = scope.spawn(move || engine.run_into(&rgb, &mut out, threads).map(|()| (out, rgb)));
                return Ok(joined(frame));
            }
            let pending = start_upscale(engine, &rgb, max_memory.max(1 << 20), |_, _| {}, out)?;
            Ok(Box::new(move || Ok((pending()?, rgb))))
        };
        stream_frames(in_flight, read, size, start, write, on_frame)
    })
}

/// How many frames of this size (width, height) a stream computes at once: the engine's
/// [`Engine::frames_at_once`] as far as they fit `max_memory` together, and one where a frame
/// is cut into tiles to fit it.
fn frames_at_once(engine: &(dyn Engine + Sync), (w, h): (usize, usize), max_memory: usize) -> usize {
    let max_memory = max_memory.max(1 << 20);
    if tiles_for(engine, h.next_multiple_of(2), w.next_multiple_of(2), max_memory).len() > 1 {
        return 1;
    }
    let frame_bytes = engine.bytes_per_lr_pixel() * w * h;
    engine
        .frames_at_once()
        .clamp(1, (max_memory / frame_bytes.max(1)).max(1))
}

/// How many frames a stream of frames of this size starts before it waits for the oldest: one
/// on an engine that computes asynchronously (a GPU's: the next frame is uploaded and queued
/// before the last is downloaded, so the device never waits for the host), else one on every
/// core but one when the engine computes frames together.
fn in_flight_limit(engine: &(dyn Engine + Sync), size: (usize, usize), max_memory: usize) -> usize {
    if engine.computes_asynchronously() {
        1
    } else {
        frames_at_once(engine, size, max_memory) - 1
    }
}

/// A frame computing on a thread of the stream's scope, as a [`Pending`] that joins it (a panic
/// there goes on here).
fn joined<'scope, T: 'scope>(
    frame: std::thread::ScopedJoinHandle<'scope, Result<T, crate::upscale::UpscaleError>>,
) -> Pending<'scope, T> {
    Box::new(move || frame.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
}

/// The stream machinery behind [`upscale_frames`], for any kind of input frame `I` (of
/// `size`: width, height) and output frame `T`: `start` begins a frame, given a written output
/// to reuse (once there is one) and whether more frames are already waiting behind it, and
/// what it started gives back the output and the input frame, which `read` is given to reuse.
/// Up to `in_flight_limit(size of the first frame)` more frames start before the oldest one is
/// waited for.
fn stream_frames<'e, I: Send, T: Send>(
    in_flight_limit: impl Fn((usize, usize)) -> usize,
    mut read: impl FnMut(u64, Option<I>) -> io::Result<Option<I>> + Send,
    size: impl Fn(&I) -> (usize, usize),
    mut start: impl FnMut(I, Option<T>, bool) -> Result<Pending<'e, (T, I)>, crate::upscale::UpscaleError>,
    mut write: impl FnMut(&T) -> io::Result<()> + Send,
    mut on_frame: impl FnMut(u64),
) -> StreamReport {
    std::thread::scope(|scope| {
        let (frames_tx, frames_rx) = sync_channel::<io::Result<I>>(QUEUE);
        let (out_tx, out_rx) = sync_channel::<T>(OUT_QUEUE);
        // Written frames go back to the inference loop, so 4K buffers are allocated once per
        // stream instead of once per frame (fresh pages cost ~10% of a frame).
        let (recycle_tx, recycle_rx) = sync_channel::<T>(OUT_QUEUE + 1);
        // Input frames too, once their frame is done.
        let (input_recycle_tx, input_recycle_rx) = sync_channel::<I>(QUEUE + 1);
        scope.spawn(move || {
            let mut index = 0;
            loop {
                let item = read(index, input_recycle_rx.try_recv().ok());
                let stop = !matches!(item, Ok(Some(_)));
                match item {
                    Ok(Some(frame)) => {
                        if frames_tx.send(Ok(frame)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = frames_tx.send(Err(e));
                    }
                }
                if stop {
                    return;
                }
                index += 1;
            }
        });
        let writer = scope.spawn(move || -> io::Result<()> {
            for frame in out_rx {
                write(&frame)?;
                let _ = recycle_tx.try_send(frame);
            }
            Ok(())
        });
        let mut frames = 0u64;
        let mut error = None;
        // The first frame's size, and how many frames of it may be in flight.
        let mut first = None;
        let mut limit = 0;
        let mut in_flight = std::collections::VecDeque::new();
        let out = (&out_tx, &input_recycle_tx);
        // The frame after the one being started, taken from the queue if the reader has it.
        let mut ahead = None;
        // Set when the input or a start fails: the frames started before it are still written whole.
        let mut write_started = false;
        loop {
            let next = ahead.take().or_else(|| frames_rx.recv().ok());
            let ended = next.is_none();
            if let Some(item) = next {
                let input = match item {
                    Ok(f) => f,
                    Err(e) => {
                        error = Some(StreamError::Input(e.to_string()));
                        write_started = true;
                        break;
                    }
                };
                let frame_size = size(&input);
                let (first_size, first_limit) = *first.get_or_insert_with(|| (frame_size, in_flight_limit(frame_size)));
                limit = first_limit;
                if first_size != frame_size {
                    let index = frames + in_flight.len() as u64;
                    error = Some(StreamError::FrameSizeChanged { index });
                    write_started = true;
                    break;
                }
                ahead = frames_rx.try_recv().ok();
                match start(input, recycle_rx.try_recv().ok(), ahead.is_some()) {
                    Ok(pending) => in_flight.push_back(pending),
                    Err(e) => {
                        error = Some(StreamError::Frame {
                            index: frames + in_flight.len() as u64,
                            error: e,
                        });
                        write_started = true;
                        break;
                    }
                }
            }
            if !finish_frames(
                &mut in_flight,
                if ended { 0 } else { limit },
                out,
                &mut frames,
                &mut error,
                &mut on_frame,
            ) || ended
            {
                break;
            }
        }
        if write_started {
            finish_frames(&mut in_flight, 0, out, &mut frames, &mut error, &mut on_frame);
        }
        drop(out_tx);
        match writer.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                error = Some(StreamError::OutputClosed { frames });
            }
            Ok(Err(e)) => {
                error.get_or_insert(StreamError::Output(e.to_string()));
            }
            Err(_) => {
                error.get_or_insert(StreamError::WriterFailed);
            }
        }
        StreamReport { frames, error }
    })
}

/// Waits for started frames until at most `limit` are in flight and hands them to the writer
/// (and their input frames back to the reader); false when a frame failed or the writer stopped.
fn finish_frames<T, I>(
    in_flight: &mut std::collections::VecDeque<Pending<'_, (T, I)>>,
    limit: usize,
    (out_tx, input_recycle_tx): (&SyncSender<T>, &SyncSender<I>),
    frames: &mut u64,
    error: &mut Option<StreamError>,
    on_frame: &mut impl FnMut(u64),
) -> bool {
    while in_flight.len() > limit {
        let pending = in_flight.pop_front().expect("a frame in flight");
        match pending() {
            Ok((result, input)) => {
                let _ = input_recycle_tx.try_send(input);
                if out_tx.send(result).is_err() {
                    return false; // the writer stopped: its error is reported by the caller
                }
            }
            Err(e) => {
                error.get_or_insert(StreamError::Frame {
                    index: *frames,
                    error: e,
                });
                return false;
            }
        }
        *frames += 1;
        on_frame(*frames);
    }
    true
}

/// Upscales a YUV4MPEG2 stream, keeping its chroma format, depth and tags. Where the engine can
/// (the fast engine, 4:2:0 frames with even sides) it converts both ways itself, in the bands
/// that share the cores, and the reader and writer threads only parse and write; elsewhere YUV
/// -> RGB runs on the reader thread and RGB -> YUV on the writer thread.
pub fn upscale_y4m(
    engine: &(dyn Engine + Sync),
    mut input: impl BufRead + Send,
    mut output: impl Write + Send,
    options: VideoOptions,
    on_frame: impl FnMut(u64),
) -> StreamReport {
    let header = match Header::read(&mut input) {
        Ok(h) => h,
        Err(e) => {
            return StreamReport {
                frames: 0,
                error: Some(StreamError::Input(e.to_string())),
            };
        }
    };
    let s = engine.config().scale;
    let out_header = header.resized(header.width * s, header.height * s);
    let spec = ColorSpec {
        matrix: options.matrix.unwrap_or(Matrix::default_for(header.height)),
        full_range: options.full_range.unwrap_or(header.full_range),
        depth: header.depth,
    };
    let (w, h) = (header.width, header.height);
    let mut header_written = false;
    let mut write_header = |output: &mut dyn Write| -> io::Result<()> {
        if !header_written {
            out_header.write(output)?;
            header_written = true;
        }
        Ok(())
    };
    // The reader keeps its buffers, and gets the input frames back once the engine has started
    // them.
    let mut raw = Vec::new();
    if fuses_yuv420(engine, header.chroma, (w, h), options) {
        let read = |index, frame: &mut Frame| y4m::read_frame_into(&mut input, &header, index, &mut raw, frame);
        let write = |samples: &[u8]| -> io::Result<()> {
            write_header(&mut output)?;
            y4m::write_frame_samples(&mut output, samples)?;
            output.flush()
        };
        return stream_yuv420(
            engine,
            YuvToRgb::new(w, h, header.chroma, spec),
            spec,
            options.max_memory,
            read,
            write,
            on_frame,
        );
    }
    let (mut yuv, mut bytes) = (Frame::default(), Vec::new());
    let read = |index, recycled: Option<Image<f32>>| -> io::Result<Option<Image<f32>>> {
        if !y4m::read_frame_into(&mut input, &header, index, &mut raw, &mut yuv)? {
            return Ok(None);
        }
        let mut rgb = recycled.unwrap_or_else(|| Image::zeros(0, 0, 0));
        frame_to_rgb_into(&yuv, &header, spec, &mut rgb);
        Ok(Some(rgb))
    };
    // The output keeps the input's matrix and range, so that the stream's tags stay true.
    let mut encoder = FrameEncoder::default();
    let write = |rgb: &Image<f32>| -> io::Result<()> {
        write_header(&mut output)?;
        y4m::write_frame_with(
            &mut output,
            &out_header,
            encoder.encode(rgb, &out_header, spec),
            &mut bytes,
        )?;
        output.flush()
    };
    upscale_recycled_frames(engine, read, write, options.max_memory, on_frame)
}

/// Whether a stream of frames of this layout and size goes through
/// [`Engine::run_yuv_to_yuv420`]: 4:2:0 with even sides, on an engine that fuses it, in one tile.
fn fuses_yuv420(engine: &(dyn Engine + Sync), chroma: Chroma, (w, h): (usize, usize), options: VideoOptions) -> bool {
    chroma == Chroma::C420
        && w % 2 == 0
        && h % 2 == 0
        && engine.fuses_yuv420()
        && tiles_for(engine, h, w, options.max_memory.max(1 << 20)).len() == 1
}

/// A stream whose engine reads the YUV frames and writes the output frames' samples itself
/// ([`Engine::run_yuv_to_yuv420`]), converting as it goes: `read` only parses (into a frame to
/// reuse; false at the end) and `write` only writes. While frames wait behind the one starting,
/// [`Engine::frames_at_once`] of them compute together, each on a thread of its own; a frame
/// with none behind it (the last, or a source slower than the engine) runs on all cores, the
/// quickest way through it.
fn stream_yuv420(
    engine: &(dyn Engine + Sync),
    conversion: YuvToRgb,
    spec: ColorSpec,
    max_memory: usize,
    mut read: impl FnMut(u64, &mut Frame) -> io::Result<bool> + Send,
    mut write: impl FnMut(&[u8]) -> io::Result<()> + Send,
    on_frame: impl FnMut(u64),
) -> StreamReport {
    let coefficients = YuvCoefficients::new(spec);
    let read = |index, recycled: Option<Frame>| -> io::Result<Option<Frame>> {
        let mut frame = recycled.unwrap_or_default();
        Ok(read(index, &mut frame)?.then_some(frame))
    };
    let (h, w) = conversion.size();
    let size = |_: &Frame| (w, h);
    let write = |samples: &Vec<u8>| write(samples);
    let at_once = frames_at_once(engine, (w, h), max_memory);
    let in_flight = |size| in_flight_limit(engine, size, max_memory);
    let conversion = &conversion;
    std::thread::scope(|scope| {
        let start = |frame: Frame,
                     buffer: Option<Vec<u8>>,
                     waiting: bool|
         -> Result<Pending<'_, (Vec<u8>, Frame)>, crate::upscale::UpscaleError> {
            let mut samples = buffer.unwrap_or_default();
            if waiting && at_once > 1 {
                let frame = scope.spawn(move || {
                    let threads = FrameThreads::CallingThread;
                    engine
                        .run_yuv_to_yuv420(&frame, conversion, coefficients, &mut samples, threads)
                        .map(|()| (samples, frame))
                });
                return Ok(joined(frame));
            }
            engine.run_yuv_to_yuv420(&frame, conversion, coefficients, &mut samples, FrameThreads::AllCores)?;
            Ok(Box::new(move || Ok((samples, frame))))
        };
        stream_frames(in_flight, read, size, start, write, on_frame)
    })
}

/// Upscales raw frames of a fixed size and pixel format.
pub fn upscale_raw(
    engine: &(dyn Engine + Sync),
    mut input: impl Read + Send,
    mut output: impl Write + Send,
    format: PixFmt,
    (width, height): (usize, usize),
    options: VideoOptions,
    on_frame: impl FnMut(u64),
) -> StreamReport {
    let spec = ColorSpec {
        matrix: options.matrix.unwrap_or(Matrix::default_for(height)),
        full_range: options.full_range.unwrap_or(false),
        depth: 8,
    };
    if format == PixFmt::Yuv420p && fuses_yuv420(engine, Chroma::C420, (width, height), options) {
        let mut buffer = Vec::new();
        let read =
            |index, frame: &mut Frame| raw::read_yuv420p_into(&mut input, (width, height), index, &mut buffer, frame);
        let write = |samples: &[u8]| -> io::Result<()> {
            output.write_all(samples)?;
            output.flush()
        };
        let conversion = YuvToRgb::new(width, height, Chroma::C420, spec);
        return stream_yuv420(engine, conversion, spec, options.max_memory, read, write, on_frame);
    }
    let read = |index| raw::read_frame(&mut input, format, width, height, spec, index);
    let mut writer = raw::FrameWriter::default();
    let write = |rgb: &Image<f32>| -> io::Result<()> {
        writer.write(&mut output, format, rgb, spec)?;
        output.flush()
    };
    upscale_frames(engine, read, write, options.max_memory, on_frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModelConfig;
    use std::sync::Mutex;

    /// Nearest-neighbour x2 that logs when each frame starts and finishes; `deferred` makes it
    /// behave like a GPU engine (the work happens when the frame is waited for).
    struct LoggingEngine {
        config: ModelConfig,
        deferred: bool,
        log: Mutex<Vec<String>>,
    }

    impl LoggingEngine {
        fn new(deferred: bool) -> Self {
            Self {
                config: ModelConfig::official(2),
                deferred,
                log: Mutex::new(vec![]),
            }
        }

        fn events(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }
    }

    impl Engine for LoggingEngine {
        fn config(&self) -> &ModelConfig {
            &self.config
        }

        fn run(&self, rgb: &Image<f32>) -> Result<Image<f32>, crate::upscale::UpscaleError> {
            let (h, w) = (rgb.height * 2, rgb.width * 2);
            let data = (0..3 * h * w)
                .map(|i| {
                    let (c, y, x) = (i / (h * w), i / w % h, i % w);
                    rgb.data[(c * rgb.height + y / 2) * rgb.width + x / 2]
                })
                .collect();
            Ok(Image::new(3, h, w, data))
        }

        fn start(&self, rgb: &Image<f32>, _out: Image<f32>) -> Result<Pending<'_>, crate::upscale::UpscaleError> {
            let id = rgb.data[0];
            self.log.lock().unwrap().push(format!("start {id}"));
            let rgb = rgb.clone();
            let finish = move || {
                self.log.lock().unwrap().push(format!("finish {id}"));
                self.run(&rgb)
            };
            if self.deferred {
                Ok(Box::new(finish))
            } else {
                let out = finish();
                Ok(Box::new(move || out))
            }
        }

        fn computes_asynchronously(&self) -> bool {
            self.deferred
        }

        fn bytes_per_lr_pixel(&self) -> usize {
            12
        }
    }

    /// Frame n is filled with the value n; frame `fail_at` (if any) is a read error.
    fn run_stream(engine: &LoggingEngine, count: u64, fail_at: Option<u64>) -> (Vec<f32>, StreamReport) {
        let written = Mutex::new(vec![]);
        let report = upscale_frames(
            engine,
            |n| match n {
                _ if Some(n) == fail_at => Err(io::Error::other("bad frame")),
                _ if n == count => Ok(None),
                _ => Ok(Some(Image::new(3, 4, 6, vec![n as f32; 72]))),
            },
            |frame| {
                assert_eq!((frame.height, frame.width), (8, 12));
                assert!(frame.data.iter().all(|&v| v == frame.data[0]));
                written.lock().unwrap().push(frame.data[0]);
                Ok(())
            },
            usize::MAX,
            |_| {},
        );
        (written.into_inner().unwrap(), report)
    }

    #[test]
    fn an_asynchronous_engine_gets_the_next_frame_before_the_last_is_waited_for() {
        let engine = LoggingEngine::new(true);
        let (written, report) = run_stream(&engine, 4, None);
        assert_eq!(written, [0.0, 1.0, 2.0, 3.0]);
        assert_eq!((report.frames, report.error), (4, None));
        let events = engine.events();
        let at = |e: &str| events.iter().position(|x| x == e).unwrap();
        assert!(at("start 1") < at("finish 0"), "{events:?}");
        assert!(at("start 3") < at("finish 2"), "{events:?}");
    }

    #[test]
    fn a_synchronous_engine_finishes_each_frame_before_the_next() {
        let engine = LoggingEngine::new(false);
        let (written, report) = run_stream(&engine, 3, None);
        assert_eq!(written, [0.0, 1.0, 2.0]);
        assert_eq!(report.frames, 3);
        assert_eq!(
            engine.events(),
            ["start 0", "finish 0", "start 1", "finish 1", "start 2", "finish 2"]
        );
    }

    /// An engine computing two frames at once, RGB (nearest-neighbour x2) or fused 4:2:0 (every
    /// output sample the frame's first luma sample), each after a pause; it logs how each frame
    /// ran and counts how many ran at once, and refuses frame `fail_at`.
    struct FramePerCoreEngine {
        config: ModelConfig,
        fail_at: Option<u16>,
        running: std::sync::atomic::AtomicUsize,
        most_at_once: std::sync::atomic::AtomicUsize,
        log: Mutex<Vec<(u16, FrameThreads)>>,
    }

    impl FramePerCoreEngine {
        fn new(fail_at: Option<u16>) -> Self {
            Self {
                config: ModelConfig::official(2),
                fail_at,
                running: Default::default(),
                most_at_once: Default::default(),
                log: Mutex::new(vec![]),
            }
        }

        /// Frame `id` on `threads`: counted, paused, logged, refused if it is `fail_at`.
        fn compute(&self, id: u16, threads: FrameThreads) -> Result<(), crate::upscale::UpscaleError> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.running.fetch_add(1, SeqCst) + 1;
            self.most_at_once.fetch_max(now, SeqCst);
            // Long beside reading a small frame from memory, so the reader keeps ahead.
            std::thread::sleep(std::time::Duration::from_millis(40));
            self.running.fetch_sub(1, SeqCst);
            self.log.lock().unwrap().push((id, threads));
            match Some(id) == self.fail_at {
                true => Err(crate::upscale::UpscaleError::Backend("frame refused".into())),
                false => Ok(()),
            }
        }

        /// Checks a stream of `count` frames that ran whole: two at once, never more; every
        /// frame with others waiting behind it (all but the first and last, as the reader
        /// keeps ahead) on a thread of its own, the last on all cores.
        fn check_log(&self, count: u16) {
            let log = self.log.lock().unwrap().clone();
            assert_eq!(log.len(), count as usize);
            assert!(
                log.contains(&(count - 1, FrameThreads::AllCores)),
                "nothing behind the last: {log:?}"
            );
            let alone = log.iter().filter(|(_, t)| *t == FrameThreads::CallingThread).count();
            assert!(
                alone >= count as usize - 3,
                "frames with others waiting, each on a thread: {log:?}"
            );
            let most = self.most_at_once.load(std::sync::atomic::Ordering::SeqCst);
            assert_eq!(most, 2, "two frames at once, never more");
        }
    }

    impl Engine for FramePerCoreEngine {
        fn config(&self) -> &ModelConfig {
            &self.config
        }

        fn run(&self, rgb: &Image<f32>) -> Result<Image<f32>, crate::upscale::UpscaleError> {
            let mut out = Image::zeros(0, 0, 0);
            self.run_into(rgb, &mut out, FrameThreads::AllCores)?;
            Ok(out)
        }

        fn run_into(
            &self,
            rgb: &Image<f32>,
            out: &mut Image<f32>,
            threads: FrameThreads,
        ) -> Result<(), crate::upscale::UpscaleError> {
            self.compute(rgb.data[0] as u16, threads)?;
            *out = LoggingEngine::new(false).run(rgb)?;
            Ok(())
        }

        fn fuses_yuv420(&self) -> bool {
            true
        }

        fn frames_at_once(&self) -> usize {
            2
        }

        fn run_yuv_to_yuv420(
            &self,
            frame: &Frame,
            conversion: &YuvToRgb,
            _: YuvCoefficients,
            out: &mut Vec<u8>,
            threads: FrameThreads,
        ) -> Result<(), crate::upscale::UpscaleError> {
            self.compute(frame.y[0], threads)?;
            let (h, w) = conversion.size();
            *out = vec![frame.y[0] as u8; 4 * h * w * 3 / 2];
            Ok(())
        }

        fn bytes_per_lr_pixel(&self) -> usize {
            12
        }
    }

    /// Frames of 6 x 4 pixels whose samples are the frame's number, through `engine`: the
    /// frames written (each by its first sample) and the report.
    fn run_y4m_stream(engine: &FramePerCoreEngine, count: u8) -> (Vec<u8>, StreamReport) {
        let header = Header::read(&mut &b"YUV4MPEG2 W6 H4 F25:1 C420\n"[..]).unwrap();
        let mut input = Vec::new();
        header.write(&mut input).unwrap();
        for n in 0..count {
            input.extend(b"FRAME\n");
            input.extend(vec![n; header.frame_bytes()]);
        }
        let mut output = Vec::new();
        let report = upscale_y4m(engine, &input[..], &mut output, VideoOptions::default(), |_| {});
        let frame_len = b"FRAME\n".len() + 12 * 8 * 3 / 2;
        let body = &output[output.iter().position(|&b| b == b'\n').unwrap() + 1..];
        assert_eq!(body.len() % frame_len, 0, "whole frames");
        let written = body.chunks(frame_len).map(|f| f[b"FRAME\n".len()]).collect();
        (written, report)
    }

    #[test]
    fn a_frame_per_core_engine_computes_frames_together_in_order_and_the_last_on_all_cores() {
        // 4:2:0 frames, converted by the engine.
        let engine = FramePerCoreEngine::new(None);
        let (written, report) = run_y4m_stream(&engine, 8);
        assert_eq!(written, (0..8).collect::<Vec<u8>>());
        assert_eq!((report.frames, report.error), (8, None));
        engine.check_log(8);

        // RGB frames (4:4:4 and raw streams, the Python package's).
        let engine = FramePerCoreEngine::new(None);
        let written = Mutex::new(vec![]);
        let report = upscale_frames(
            &engine,
            |n| Ok((n < 8).then(|| Image::new(3, 4, 6, vec![n as f32; 72]))),
            |frame| {
                assert!((frame.height, frame.width) == (8, 12) && frame.data.iter().all(|&v| v == frame.data[0]));
                written.lock().unwrap().push(frame.data[0]);
                Ok(())
            },
            usize::MAX,
            |_| {},
        );
        assert_eq!(
            written.into_inner().unwrap(),
            (0..8).map(|n| n as f32).collect::<Vec<_>>()
        );
        assert_eq!((report.frames, report.error), (8, None));
        engine.check_log(8);

        // A refused frame among frames computed together: every frame before it is written whole.
        let engine = FramePerCoreEngine::new(Some(4));
        let (written, report) = run_y4m_stream(&engine, 8);
        assert_eq!(written, [0, 1, 2, 3]);
        assert_eq!(report.frames, 4);
        let error = report.error.unwrap();
        assert!(
            matches!(error, StreamError::Frame { index: 4, .. }) && error.to_string().contains("frame refused"),
            "{error}"
        );
    }

    #[test]
    fn frames_in_flight_before_an_input_error_are_still_written() {
        for deferred in [true, false] {
            let engine = LoggingEngine::new(deferred);
            let (written, report) = run_stream(&engine, 10, Some(3));
            assert_eq!(written, [0.0, 1.0, 2.0], "deferred {deferred}");
            assert_eq!(report.frames, 3);
            let error = report.error.unwrap();
            assert!(
                error.keeps_written_frames() && error.to_string().contains("bad frame"),
                "{error}"
            );
        }
    }
}
