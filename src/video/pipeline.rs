//! Streams of frames through the network: a reader thread, the upscaler, and a writer thread,
//! joined by bounded queues so decoding, inference and encoding overlap and memory stays
//! bounded. Frames keep their order. Every frame written before an error is complete.

use super::color::{ColorSpec, Matrix, frame_to_rgb, rgb_to_frame};
use super::y4m::{self, Frame, Header};
use crate::upscale::{Engine, upscale_rgb};
use std::io::{self, BufRead, Write};
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

const QUEUE: usize = 3;

/// Upscales a YUV4MPEG2 stream. `on_frame(n)` is called after frame n is handed to the writer.
pub fn upscale_y4m(
    engine: &(dyn Engine + Sync),
    mut input: impl BufRead + Send,
    output: impl Write + Send,
    options: VideoOptions,
    mut on_frame: impl FnMut(u64),
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
    let spec_in = ColorSpec {
        matrix: options.matrix.unwrap_or(Matrix::default_for(header.height)),
        full_range: options.full_range.unwrap_or(header.full_range),
        depth: header.depth,
    };
    // The output keeps the input's matrix and range, so that the stream's tags stay true.
    let spec_out = spec_in;
    std::thread::scope(|scope| {
        let (frames_tx, frames_rx): (SyncSender<io::Result<Frame>>, Receiver<io::Result<Frame>>) = sync_channel(QUEUE);
        let (out_tx, out_rx) = sync_channel::<Frame>(QUEUE);
        let reader_header = header.clone();
        scope.spawn(move || {
            let mut index = 0;
            loop {
                match y4m::read_frame(&mut input, &reader_header, index) {
                    Ok(Some(frame)) => {
                        if frames_tx.send(Ok(frame)).is_err() {
                            return;
                        }
                        index += 1;
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = frames_tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        let writer_header = out_header.clone();
        let writer = scope.spawn(move || -> io::Result<()> {
            let mut output = output;
            writer_header.write(&mut output)?;
            for frame in out_rx {
                y4m::write_frame(&mut output, &writer_header, &frame)?;
            }
            output.flush()
        });
        let mut frames = 0u64;
        let mut error = None;
        for item in frames_rx {
            let frame = match item {
                Ok(f) => f,
                Err(e) => {
                    error = Some(format!("input: {e}"));
                    break;
                }
            };
            let rgb = frame_to_rgb(&frame, &header, spec_in);
            let result = match upscale_rgb(engine, &rgb, options.max_memory.max(1 << 20), |_, _| {}) {
                Ok(r) => r,
                Err(e) => {
                    error = Some(format!("frame {frames}: {e}"));
                    break;
                }
            };
            if out_tx.send(rgb_to_frame(&result, &out_header, spec_out)).is_err() {
                break; // the writer stopped: its error is reported below
            }
            frames += 1;
            on_frame(frames);
        }
        drop(out_tx);
        match writer.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                error.get_or_insert(format!("output closed after {frames} frames"));
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
