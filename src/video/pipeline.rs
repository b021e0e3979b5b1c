//! Streams of frames through the network: a reader thread, the upscaler, and a writer thread,
//! joined by bounded queues so decoding, inference and encoding overlap and memory stays
//! bounded. Frames keep their order. Every frame written before an error is complete.

use super::color::{ColorSpec, FrameEncoder, Matrix, frame_to_rgb};
use super::raw::{self, PixFmt};
use super::y4m::{self, Header};
use crate::imaging::Image;
use crate::upscale::{Engine, upscale_rgb_into};
use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

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
    pub error: Option<String>,
}

/// Decoded frames waiting for the network (small: LR frames).
const QUEUE: usize = 3;
/// Upscaled frames waiting for the writer: one, as each is large (100 MB for f32 4K) and
/// writing is faster than inference.
const OUT_QUEUE: usize = 1;

/// Upscales a stream of RGB frames: `read(n)` runs on a reader thread and yields frame n (or
/// `None` at the end), `write` runs on a writer thread, and inference runs here between them.
pub fn upscale_frames(
    engine: &(dyn Engine + Sync),
    mut read: impl FnMut(u64) -> io::Result<Option<Image<f32>>> + Send,
    mut write: impl FnMut(&Image<f32>) -> io::Result<()> + Send,
    max_memory: usize,
    mut on_frame: impl FnMut(u64),
) -> StreamReport {
    std::thread::scope(|scope| {
        let (frames_tx, frames_rx): (SyncSender<io::Result<Image<f32>>>, Receiver<io::Result<Image<f32>>>) =
            sync_channel(QUEUE);
        let (out_tx, out_rx) = sync_channel::<Image<f32>>(OUT_QUEUE);
        // Written frames go back to the inference loop, so 4K buffers are allocated once per
        // stream instead of once per frame (fresh pages cost ~10% of a frame).
        let (recycle_tx, recycle_rx) = sync_channel::<Image<f32>>(OUT_QUEUE + 1);
        scope.spawn(move || {
            let mut index = 0;
            loop {
                let item = read(index);
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
        let mut size = None;
        for item in frames_rx {
            let rgb = match item {
                Ok(f) => f,
                Err(e) => {
                    error = Some(format!("input: {e}"));
                    break;
                }
            };
            if *size.get_or_insert((rgb.width, rgb.height)) != (rgb.width, rgb.height) {
                error = Some(format!("input: frame {frames} changes the frame size mid-stream"));
                break;
            }
            let mut result = recycle_rx.try_recv().unwrap_or_else(|_| Image::zeros(0, 0, 0));
            match upscale_rgb_into(engine, &rgb, max_memory.max(1 << 20), |_, _| {}, &mut result) {
                Ok(()) => {
                    if out_tx.send(result).is_err() {
                        break; // the writer stopped: its error is reported below
                    }
                }
                Err(e) => {
                    error = Some(format!("frame {frames}: {e}"));
                    break;
                }
            }
            frames += 1;
            on_frame(frames);
        }
        drop(out_tx);
        match writer.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                error = Some(format!("output closed after {frames} frames"));
            }
            Ok(Err(e)) => {
                error.get_or_insert(format!("output: {e}"));
            }
            Err(_) => {
                error.get_or_insert("the writer thread failed".into());
            }
        }
        StreamReport { frames, error }
    })
}

/// Upscales a YUV4MPEG2 stream, keeping its chroma format, depth and tags; colour conversion
/// runs on the reader and writer threads.
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
                error: Some(format!("input: {e}")),
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
    let read = |index| -> io::Result<Option<Image<f32>>> {
        Ok(y4m::read_frame(&mut input, &header, index)?.map(|f| frame_to_rgb(&f, &header, spec)))
    };
    let mut header_written = false;
    let mut encoder = FrameEncoder::default();
    let mut bytes = Vec::new();
    let write = |rgb: &Image<f32>| -> io::Result<()> {
        if !header_written {
            out_header.write(&mut output)?;
            header_written = true;
        }
        // The output keeps the input's matrix and range, so that the stream's tags stay true.
        let frame = encoder.encode(rgb, &out_header, spec);
        y4m::write_frame_with(&mut output, &out_header, frame, &mut bytes)?;
        output.flush()
    };
    upscale_frames(engine, read, write, options.max_memory, on_frame)
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
    let read = |index| raw::read_frame(&mut input, format, width, height, spec, index);
    let mut writer = raw::FrameWriter::default();
    let write = |rgb: &Image<f32>| -> io::Result<()> {
        writer.write(&mut output, format, rgb, spec)?;
        output.flush()
    };
    upscale_frames(engine, read, write, options.max_memory, on_frame)
}
