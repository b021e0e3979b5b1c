//! The compiled part of the `rt4ksr` Python package: a thin layer over the library. 8-bit RGB
//! arrays in C order are read in place by the engine and written straight into the result
//! array (the caller's `out=`, or a new one); other arrays are copied into the library's
//! `Picture` (as a decoded file would be) and handed back as NumPy arrays that own the result.
//! The GIL is released while the network runs.

use numpy::{
    Element, PyArray1, PyArray3, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn,
    PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{
    PyException, PyFileExistsError, PyFileNotFoundError, PyOSError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyIterator;
use rt4ksr::WeightError;
use rt4ksr::eval::{EvalError, evaluate_folder};
use rt4ksr::imaging::Image;
use rt4ksr::imaging::picture::{Interleaved, Picture, SampleType, interleave_planes};
use rt4ksr::inference::{EngineError, Precision, engine_on};
use rt4ksr::upscale::file::{FileError, FileOptions, format_from_name, upscale_file};
use rt4ksr::upscale::{Engine, UpscaleError, upscale_picture_into, upscale_rgb8_into, upscale_rgb8_samples_into};
use rt4ksr::video::pipeline::{StreamError, upscale_frames};
use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

create_exception!(
    rt4ksr,
    WeightsError,
    PyException,
    "A weight file that cannot be read as an RT4KSR model, or a model that cannot run as asked."
);

type SharedEngine = Arc<dyn Engine + Send + Sync>;

fn weights_error(e: WeightError) -> PyErr {
    match &e {
        WeightError::Io { error, .. } if error.kind() == io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(e.to_string())
        }
        WeightError::ScaleMismatch { .. } | WeightError::NoEmbeddedModel(_) => PyValueError::new_err(e.to_string()),
        _ => WeightsError::new_err(e.to_string()),
    }
}

/// A bad weight file as `weights_error`; a precision the device lacks is a `ValueError`.
fn engine_error(e: EngineError) -> PyErr {
    match e {
        EngineError::Weights(e) => weights_error(e),
        _ => PyValueError::new_err(e.to_string()),
    }
}

fn upscale_error(e: UpscaleError) -> PyErr {
    match e {
        UpscaleError::Input(_) => PyValueError::new_err(e.to_string()),
        _ => PyRuntimeError::new_err(e.to_string()),
    }
}

fn file_error(e: FileError) -> PyErr {
    let text = e.to_string();
    match e {
        FileError::Exists(_) => PyFileExistsError::new_err(text),
        FileError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(text)
        }
        FileError::Read { .. } | FileError::Write { .. } => PyOSError::new_err(text),
        FileError::Decode { .. } | FileError::Encode(_) => PyValueError::new_err(text),
        FileError::Upscale(e) => upscale_error(e),
    }
}

/// Loads the model and opens it on `device` with `precision`.
fn open_engine(
    scale: Option<usize>,
    weights: Option<PathBuf>,
    precision: &str,
    device: &str,
) -> PyResult<SharedEngine> {
    let precision: Precision = precision
        .parse()
        .map_err(|e: rt4ksr::inference::UnknownPrecision| PyValueError::new_err(e.to_string()))?;
    let choice: rt4ksr::device::DeviceChoice = device
        .parse()
        .map_err(|e: rt4ksr::device::DeviceError| PyValueError::new_err(e.to_string()))?;
    let weights = rt4ksr::default_models::load_chosen(weights.as_deref(), scale).map_err(weights_error)?;
    let device = rt4ksr::device::open(choice).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    let engine = engine_on(&weights, &device, precision).map_err(engine_error)?;
    Ok(Arc::from(engine))
}

/// An array's samples and layout, copied out of NumPy.
struct ArrayIn {
    samples: Interleaved,
    height: usize,
    width: usize,
    channels: usize,
    /// H x W (grey) rather than H x W x C: the result is 2-D too.
    two_d: bool,
}

impl ArrayIn {
    fn picture(&self) -> PyResult<Picture> {
        Picture::from_interleaved(&self.samples, self.height, self.width, self.channels)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }
}

/// (height, width, channels, two_d) of an array shaped H x W or H x W x C, C = 1..4.
fn layout(shape: &[usize]) -> PyResult<(usize, usize, usize, bool)> {
    let (h, w, c, two_d) = match *shape {
        [h, w] => (h, w, 1, true),
        [h, w, c] if (1..=4).contains(&c) => (h, w, c, false),
        _ => {
            return Err(PyValueError::new_err(format!(
                "an image is H x W or H x W x C with C = 1, 2, 3 or 4, not shape {shape:?}"
            )));
        }
    };
    if h == 0 || w == 0 {
        return Err(PyValueError::new_err(format!("the image is empty (shape {shape:?})")));
    }
    Ok((h, w, c, two_d))
}

fn samples_of<T: numpy::Element + Copy>(array: &PyReadonlyArrayDyn<'_, T>) -> Vec<T> {
    // `as_slice` takes Fortran order as contiguous too: only C order is (row, column, channel).
    match array.as_slice() {
        Ok(contiguous) if array.is_c_contiguous() => contiguous.to_vec(),
        // Strided views (crops, flips, channel reorders) in logical (row, column, channel) order.
        _ => array.as_array().iter().copied().collect(),
    }
}

fn read_array(image: &Bound<'_, PyAny>) -> PyResult<ArrayIn> {
    let (samples, shape) = if let Ok(a) = image.extract::<PyReadonlyArrayDyn<'_, u8>>() {
        (Interleaved::U8(samples_of(&a)), a.shape().to_vec())
    } else if let Ok(a) = image.extract::<PyReadonlyArrayDyn<'_, u16>>() {
        (Interleaved::U16(samples_of(&a)), a.shape().to_vec())
    } else if let Ok(a) = image.extract::<PyReadonlyArrayDyn<'_, f32>>() {
        (Interleaved::F32(samples_of(&a)), a.shape().to_vec())
    } else if let Ok(dtype) = image.getattr("dtype") {
        return Err(PyValueError::new_err(format!(
            "dtype {dtype} is not supported: uint8, uint16 or float32 (0..1)"
        )));
    } else {
        return Err(PyTypeError::new_err(format!(
            "expected a NumPy array, not {}",
            image.get_type().name()?
        )));
    };
    let (height, width, channels, two_d) = layout(&shape)?;
    Ok(ArrayIn {
        samples,
        height,
        width,
        channels,
        two_d,
    })
}

/// A NumPy array that owns `samples`, shaped H x W (`two_d`) or H x W x C.
fn to_numpy(py: Python<'_>, samples: Interleaved, shape: [usize; 3], two_d: bool) -> PyResult<Py<PyAny>> {
    let dims: Vec<usize> = if two_d { shape[..2].to_vec() } else { shape.to_vec() };
    Ok(match samples {
        Interleaved::U8(v) => PyArray1::from_vec(py, v).reshape(dims)?.into_any().unbind(),
        Interleaved::U16(v) => PyArray1::from_vec(py, v).reshape(dims)?.into_any().unbind(),
        Interleaved::F32(v) => PyArray1::from_vec(py, v).reshape(dims)?.into_any().unbind(),
    })
}

/// The caller's `out` array for a result of `dims` samples of type T: that dtype and shape,
/// C-contiguous and writeable, else a ValueError that says what it must be.
fn output_array<'py, T: Element>(out: &Bound<'py, PyAny>, dims: &[usize]) -> PyResult<PyReadwriteArrayDyn<'py, T>> {
    let wrong = || {
        let dtype = T::get_dtype(out.py());
        let wanted = format!("out must be a C-contiguous, writeable {dtype} array of shape {dims:?}");
        PyValueError::new_err(format!("{wanted}, not {}", describe(out)))
    };
    let array = out.cast::<PyArrayDyn<T>>().map_err(|_| wrong())?;
    if array.shape() != dims || !array.is_c_contiguous() {
        return Err(wrong());
    }
    array
        .try_readwrite()
        .map_err(|e| PyValueError::new_err(format!("out: {e}")))
}

/// What an `out` argument is, for an error message: its dtype and shape, or its type.
fn describe(value: &Bound<'_, PyAny>) -> String {
    match value.cast::<numpy::PyUntypedArray>() {
        Ok(a) => {
            let order = if a.is_c_contiguous() { "" } else { " non-contiguous" };
            format!("a{order} {} array of shape {:?}", a.dtype(), a.shape())
        }
        Err(_) => value
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "an object".into()),
    }
}

/// Copies a result's samples into the caller's `out` array.
fn copy_into<T: Element + Copy>(out: &Bound<'_, PyAny>, dims: &[usize], samples: &[T]) -> PyResult<()> {
    let mut array = output_array::<T>(out, dims)?;
    array
        .as_slice_mut()
        .expect("checked contiguous")
        .copy_from_slice(samples);
    Ok(())
}

/// The 8-bit RGB result of an `height` x `width` input at `scale`, made by `upscale` (rounded in
/// the engine's last layer) straight into the NumPy array: the caller's `out`, or one made
/// first. The GIL is released while `upscale` runs. A fresh Rust vector a call cost 8 % of the
/// call (`perf`: the kernel zeroing its pages and malloc's memset).
fn rgb8_result(
    py: Python<'_>,
    scale: usize,
    (height, width): (usize, usize),
    out: Option<&Bound<'_, PyAny>>,
    upscale: impl FnOnce(&mut [u8]) -> Result<(), UpscaleError> + Send,
) -> PyResult<Py<PyAny>> {
    let shape = [height * scale, width * scale, 3];
    if let Some(out) = out {
        let mut array = output_array::<u8>(out, &shape)?;
        let slice = array.as_slice_mut().expect("checked contiguous");
        py.detach(|| upscale(slice)).map_err(upscale_error)?;
        return Ok(out.clone().unbind());
    }
    // SAFETY: a new array that nothing else holds; it is read only after `upscale` has written
    // every byte of it (on an error it is dropped unseen).
    let array = unsafe { PyArray3::<u8>::new(py, shape, false) };
    // SAFETY: as above: no other view of the array exists while the slice lives.
    let slice = unsafe { array.as_slice_mut() }.expect("a new array is contiguous");
    py.detach(|| upscale(slice)).map_err(upscale_error)?;
    Ok(array.into_any().unbind())
}

/// A super-resolution model loaded once, ready to upscale images and frames.
#[pyclass(module = "rt4ksr", frozen)]
struct Upscaler {
    engine: SharedEngine,
    /// The last result's colour planes, reused by the next call of the same size.
    buffer: Mutex<Option<Image<f32>>>,
    max_memory: usize,
    precision: String,
    device: String,
}

#[pymethods]
impl Upscaler {
    #[new]
    #[pyo3(signature = (scale=None, weights=None, precision="auto", device="cpu", max_memory=1 << 30))]
    fn new(
        py: Python<'_>,
        scale: Option<usize>,
        weights: Option<PathBuf>,
        precision: &str,
        device: &str,
        max_memory: usize,
    ) -> PyResult<Self> {
        let (precision, device) = (precision.to_owned(), device.to_owned());
        let engine = py.detach(|| open_engine(scale, weights, &precision, &device))?;
        Ok(Self {
            engine,
            buffer: Mutex::new(None),
            max_memory: max_memory.max(1 << 20),
            precision,
            device,
        })
    }

    /// The upscaling factor.
    #[getter]
    fn scale(&self) -> usize {
        self.engine.config().scale
    }

    #[getter]
    fn precision(&self) -> &str {
        &self.precision
    }

    #[getter]
    fn device(&self) -> &str {
        &self.device
    }

    fn __repr__(&self) -> String {
        format!(
            "rt4ksr.Upscaler(scale={}, precision={:?}, device={:?})",
            self.scale(),
            self.precision,
            self.device
        )
    }

    /// Upscales one image; see rt4ksr/__init__.pyi.
    #[pyo3(signature = (image, out=None))]
    fn __call__(
        &self,
        py: Python<'_>,
        image: &Bound<'_, PyAny>,
        out: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        // 8-bit RGB in C order, nearly every call: the engine reads the array's samples itself
        // (no copy of them, no float frame), with the GIL released like the rest of the call.
        let rgb8 = image
            .extract::<PyReadonlyArrayDyn<'_, u8>>()
            .ok()
            .filter(|a| a.is_c_contiguous() && matches!(*a.shape(), [h, w, 3] if h > 0 && w > 0));
        if let Some(array) = rgb8 {
            let size = (array.shape()[0], array.shape()[1]);
            let samples = array.as_slice().expect("checked contiguous");
            let scale = self.engine.config().scale;
            return rgb8_result(py, scale, size, out, |out| {
                upscale_rgb8_samples_into(self.engine.as_ref(), samples, size, self.max_memory, out)
            });
        }
        let input = read_array(image)?;
        let (dtype, two_d) = (input.samples.sample_type(), input.two_d);
        let (engine, max_memory, buffer) = (&self.engine, self.max_memory, &self.buffer);
        let s = engine.config().scale;
        let shape = [input.height * s, input.width * s, input.channels];
        let dims: &[usize] = if two_d { &shape[..2] } else { &shape };
        if dtype == SampleType::U8 && input.channels == 3 {
            let picture = input.picture()?;
            drop(input);
            let size = (picture.color.height, picture.color.width);
            return rgb8_result(py, s, size, out, |out| {
                upscale_rgb8_into(engine.as_ref(), &picture.color, max_memory, out)
            });
        }
        let samples = py.detach(|| -> PyResult<_> {
            let picture = input.picture()?;
            drop(input);
            // Taken, not held: a call from another thread meanwhile makes its own.
            let reused = buffer
                .lock()
                .expect("buffer")
                .take()
                .unwrap_or_else(|| Image::zeros(0, 0, 0));
            let result = upscale_picture_into(engine.as_ref(), &picture, max_memory, |_, _| {}, reused)
                .map_err(upscale_error)?;
            let samples = result.interleaved(dtype);
            if result.color.channels == 3 {
                *buffer.lock().expect("buffer") = Some(result.color);
            }
            Ok(samples)
        })?;
        match out {
            None => to_numpy(py, samples, shape, two_d),
            Some(out) => {
                match samples {
                    Interleaved::U8(v) => copy_into(out, dims, &v)?,
                    Interleaved::U16(v) => copy_into(out, dims, &v)?,
                    Interleaved::F32(v) => copy_into(out, dims, &v)?,
                }
                Ok(out.clone().unbind())
            }
        }
    }

    /// Upscales an image file into another, as `rt4ksr upscale SRC -o DST` does.
    #[pyo3(signature = (src, dst, overwrite=false, format=None, quality=92))]
    fn upscale_file(
        &self,
        py: Python<'_>,
        src: PathBuf,
        dst: PathBuf,
        overwrite: bool,
        format: Option<&str>,
        quality: u8,
    ) -> PyResult<()> {
        let format = match format {
            Some(name) => Some(format_from_name(name).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "unsupported output format {name:?} (png, jpg, webp, bmp, tiff)"
                ))
            })?),
            None => None,
        };
        if !(1..=100).contains(&quality) {
            return Err(PyValueError::new_err(format!("quality is 1..100, not {quality}")));
        }
        let options = FileOptions {
            format,
            quality,
            max_memory: self.max_memory,
            overwrite,
            ..FileOptions::default()
        };
        let engine = &self.engine;
        py.detach(|| upscale_file(engine.as_ref(), &src, &dst, &options, |_, _| {}))
            .map(|_| ())
            .map_err(file_error)
    }

    /// Upscales a stream of frames in order; see rt4ksr/__init__.pyi.
    fn frames(&self, frames: &Bound<'_, PyAny>) -> PyResult<Frames> {
        Frames::start(self.engine.clone(), frames.try_iter()?.unbind(), self.max_memory)
    }
}

/// What the stream thread hands to [`Frames::__next__`].
enum StreamItem {
    Frame(Interleaved, [usize; 3]),
    /// The end of the stream: an error, or none when every frame came through.
    End(Option<PyErr>),
}

/// The upscaled frames of `Upscaler.frames`, in order, computed on a thread of their own while
/// the caller works on earlier ones.
#[pyclass(module = "rt4ksr")]
struct Frames {
    received: Mutex<Receiver<StreamItem>>,
    ended: bool,
}

impl Frames {
    fn start(engine: SharedEngine, source: Py<PyIterator>, max_memory: usize) -> PyResult<Self> {
        // One finished frame waits for the caller; the pipeline holds the others.
        let (send, received) = sync_channel::<StreamItem>(1);
        std::thread::Builder::new()
            .name("rt4ksr-frames".into())
            .spawn(move || run_stream(engine, source, max_memory, send))
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start the frame thread: {e}")))?;
        Ok(Self {
            received: Mutex::new(received),
            ended: false,
        })
    }
}

/// Runs the library's frame pipeline over a Python iterator: frames are read with the GIL
/// held (only while one is taken and copied), computed without it, and sent to the caller.
fn run_stream(engine: SharedEngine, source: Py<PyIterator>, max_memory: usize, send: SyncSender<StreamItem>) {
    // Each frame's sample type, in order, from the reader to the writer.
    let dtypes = Mutex::new(VecDeque::new());
    // The Python exception that ended the input, raised as it is.
    let read_error: Mutex<Option<PyErr>> = Mutex::new(None);
    let read = |_index: u64| -> io::Result<Option<Image<f32>>> {
        let taken = Python::attach(|py| -> PyResult<Option<(Picture, SampleType)>> {
            let mut source = source.bind(py).clone();
            match source.next() {
                None => Ok(None),
                Some(frame) => {
                    let input = read_array(&frame?)?;
                    if input.channels != 3 {
                        return Err(PyValueError::new_err(format!(
                            "frames are H x W x 3 (RGB), not {} channel(s)",
                            input.channels
                        )));
                    }
                    Ok(Some((input.picture()?, input.samples.sample_type())))
                }
            }
        });
        match taken {
            Ok(Some((picture, dtype))) => {
                dtypes.lock().expect("dtype queue").push_back(dtype);
                Ok(Some(picture.color))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                let text = Python::attach(|py| e.value(py).to_string());
                *read_error.lock().expect("read error") = Some(e);
                Err(io::Error::other(text))
            }
        }
    };
    let write = |rgb: &Image<f32>| -> io::Result<()> {
        let dtype = dtypes
            .lock()
            .expect("dtype queue")
            .pop_front()
            .expect("a dtype per frame");
        let shape = [rgb.height, rgb.width, 3];
        send.send(StreamItem::Frame(interleave_planes(rgb, None, dtype), shape))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the frames are no longer read"))
    };
    let report = upscale_frames(engine.as_ref(), read, write, max_memory, |_| {});
    let error = match report.error {
        None | Some(StreamError::OutputClosed { .. }) => None,
        Some(StreamError::Input(_)) => read_error.lock().expect("read error").take(),
        Some(StreamError::FrameSizeChanged { index }) => Some(PyValueError::new_err(format!(
            "frame {index} differs in size from the first: a stream's frames share one size"
        ))),
        Some(StreamError::Frame { error, .. }) => Some(upscale_error(error)),
        Some(other) => Some(PyRuntimeError::new_err(other.to_string())),
    };
    let _ = send.send(StreamItem::End(error));
}

#[pymethods]
impl Frames {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if self.ended {
            return Ok(None);
        }
        let received = &self.received;
        let item = py.detach(|| received.lock().expect("frame channel").recv());
        match item {
            Ok(StreamItem::Frame(samples, shape)) => Ok(Some(to_numpy(py, samples, shape, false)?)),
            Ok(StreamItem::End(error)) => {
                self.ended = true;
                match error {
                    Some(e) => Err(e),
                    None => Ok(None),
                }
            }
            Err(_) => {
                self.ended = true;
                Err(PyRuntimeError::new_err("the frame thread stopped"))
            }
        }
    }
}

/// `rt4ksr.evaluate`'s measurements as the JSON that `rt4ksr eval --json` prints (the Python
/// side turns it into a dict).
// One argument per Python keyword argument.
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (folder, scale, weights=None, precision="auto", device="cpu", crop_border=None, bicubic_only=false))]
fn evaluate_json(
    py: Python<'_>,
    folder: PathBuf,
    scale: usize,
    weights: Option<PathBuf>,
    precision: &str,
    device: &str,
    crop_border: Option<usize>,
    bicubic_only: bool,
) -> PyResult<String> {
    if !(2..=4).contains(&scale) {
        return Err(PyValueError::new_err(format!("scale must be 2, 3 or 4, not {scale}")));
    }
    let (precision, device) = (precision.to_owned(), device.to_owned());
    py.detach(|| {
        let engine = if bicubic_only {
            None
        } else {
            Some(open_engine(Some(scale), weights.clone(), &precision, &device)?)
        };
        let scores = evaluate_folder(
            &folder,
            scale,
            crop_border.unwrap_or(scale),
            engine.as_deref().map(|e| e as &dyn Engine),
            |_| {},
        )
        .map_err(|e| match &e {
            EvalError::List { source, .. }
                if source.io_error().is_some_and(|io| io.kind() == io::ErrorKind::NotFound) =>
            {
                PyFileNotFoundError::new_err(e.to_string())
            }
            EvalError::Upscale { .. } => PyRuntimeError::new_err(e.to_string()),
            _ => PyValueError::new_err(e.to_string()),
        })?;
        serde_json::to_string(&scores).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    })
}

#[pymodule]
fn _rt4ksr(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Upscaler>()?;
    m.add_class::<Frames>()?;
    m.add_function(wrap_pyfunction!(evaluate_json, m)?)?;
    m.add("WeightsError", m.py().get_type::<WeightsError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
