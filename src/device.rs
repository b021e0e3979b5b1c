//! Where the burn network runs: the CPU, or a GPU backend built in as a cargo feature (`wgpu`,
//! `vulkan`, `cuda`). Opening a device checks that it really works (a tiny computation), so a
//! missing driver is a message here, not a panic later.

use burn::tensor::{Device, Tensor};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

/// Why a device did not open. Clone: a GPU runtime initialises once per process, and its
/// failure is kept and given again to later opens.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}` (auto, cpu, wgpu, vulkan, cuda or cuda:N)")]
    Unknown(String),
    #[error(
        "this rt4ksr was built without {choice} support (rebuild with `cargo build --release --features {feature}`)"
    )]
    NotBuilt {
        choice: DeviceChoice,
        feature: &'static str,
    },
    /// The runtime found no adapter; `detail` is the runtime's own message.
    #[error("no {choice} device: {detail} (is a GPU driver, or Mesa's lavapipe, installed?)")]
    NoAdapter { choice: DeviceChoice, detail: String },
    /// `auto` passes over software renderers: slower than the CPU engine.
    #[error("{choice} is a software renderer ({name})")]
    Software { choice: DeviceChoice, name: String },
    #[error(
        "{choice} is a software renderer ({name}), which crashes on the shaders of a build with the `vulkan` feature; use a build with `--features wgpu` only, or --device cpu"
    )]
    SoftwareVulkan { choice: DeviceChoice, name: String },
    #[error("device {choice} does not work: {failure}")]
    Broken {
        choice: DeviceChoice,
        failure: ProbeFailure,
    },
    #[error("no device given")]
    NoneGiven,
    #[error("no device in the list works: {}", join(.0))]
    NoneWorks(Vec<DeviceError>),
}

fn join(errors: &[DeviceError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// How the small test computation of a freshly opened device went wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProbeFailure {
    #[error("a test sum came back as {0}, not 14")]
    WrongSum(f32),
    /// The runtime panicked (missing driver libraries do); its message, when it had one.
    #[error("{}", .0.as_deref().unwrap_or("the runtime failed to start"))]
    Panicked(Option<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// A GPU when one is built in and present, else the CPU.
    #[default]
    Auto,
    /// The CPU: the fast engine for inference, burn-flex for training.
    Cpu,
    /// wgpu on whichever graphics API the machine has (Vulkan, Metal, DX12).
    Wgpu,
    /// wgpu pinned to Vulkan (also Mesa's software lavapipe).
    Vulkan,
    /// CUDA device N.
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<Self, DeviceError> {
        Ok(match text {
            "auto" => DeviceChoice::Auto,
            "cpu" => DeviceChoice::Cpu,
            "wgpu" => DeviceChoice::Wgpu,
            "vulkan" => DeviceChoice::Vulkan,
            "cuda" => DeviceChoice::Cuda(0),
            _ => match text.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(n)) => DeviceChoice::Cuda(n),
                _ => return Err(DeviceError::Unknown(text.to_owned())),
            },
        })
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => write!(f, "auto"),
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Wgpu => write!(f, "wgpu"),
            DeviceChoice::Vulkan => write!(f, "vulkan"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// A working burn device and what it is.
#[derive(Clone, Debug)]
pub struct OpenedDevice {
    pub device: Device,
    pub choice: DeviceChoice,
    /// What the runtime reports, e.g. "NVIDIA H100 (Vulkan)" or "llvmpipe (Vulkan, software)".
    pub name: String,
}

impl OpenedDevice {
    pub fn is_cpu(&self) -> bool {
        self.choice == DeviceChoice::Cpu
    }
}

/// Opens the device asked for. `Auto` tries CUDA, then a hardware GPU through wgpu, and settles
/// on the CPU: a software renderer (lavapipe, llvmpipe, WARP) is slower than the CPU engine, so
/// only an explicit `--device vulkan|wgpu` uses one.
pub fn open(choice: DeviceChoice) -> Result<OpenedDevice, DeviceError> {
    match choice {
        DeviceChoice::Auto => {
            for gpu in [DeviceChoice::Cuda(0), DeviceChoice::Wgpu] {
                if let Ok(opened) = open_gpu(gpu, false) {
                    return Ok(opened);
                }
            }
            open(DeviceChoice::Cpu)
        }
        DeviceChoice::Cpu => Ok(OpenedDevice {
            device: Device::flex(),
            choice,
            name: "cpu".into(),
        }),
        gpu => open_gpu(gpu, true),
    }
}

/// Opens the first of `choices` that works (`--device cuda,vulkan,cpu`), telling `on_failure`
/// why each one that has a successor did not; the error lists every reason.
pub fn open_first(
    choices: &[DeviceChoice],
    mut on_failure: impl FnMut(&DeviceError),
) -> Result<OpenedDevice, DeviceError> {
    let mut failures = vec![];
    for (i, &choice) in choices.iter().enumerate() {
        match open(choice) {
            Ok(opened) => return Ok(opened),
            Err(e) => {
                if i + 1 < choices.len() {
                    on_failure(&e);
                }
                failures.push(e);
            }
        }
    }
    Err(match failures.len() {
        0 => DeviceError::NoneGiven,
        1 => failures.remove(0),
        _ => DeviceError::NoneWorks(failures),
    })
}

/// A GPU runtime as first opened: it initialises once per process, so later opens (and
/// failures) reuse this.
struct Runtime {
    device: Device,
    name: String,
    software: bool,
    /// The probe's answer, once it has run (a software renderer that `Auto` passed over has
    /// not been probed).
    probed: Option<Result<(), DeviceError>>,
}

fn open_gpu(gpu: DeviceChoice, accept_software: bool) -> Result<OpenedDevice, DeviceError> {
    static RUNTIMES: Mutex<Vec<(DeviceChoice, Result<Runtime, DeviceError>)>> = Mutex::new(Vec::new());
    let mut runtimes = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
    let index = match runtimes.iter().position(|(c, _)| *c == gpu) {
        Some(index) => index,
        None => {
            let runtime = gpu_device(gpu).map(|(device, name, software)| Runtime {
                device,
                name,
                software,
                probed: None,
            });
            runtimes.push((gpu, runtime));
            runtimes.len() - 1
        }
    };
    let runtime = runtimes[index].1.as_mut().map_err(|e| e.clone())?;
    if runtime.software && !accept_software {
        return Err(DeviceError::Software {
            choice: gpu,
            name: runtime.name.clone(),
        });
    }
    if runtime.software && cfg!(feature = "vulkan") {
        // Measured with Mesa 22.3.6 and 25.0.7: lavapipe segfaults compiling the native SPIR-V
        // shaders of a `vulkan` build (the WGSL path of a `wgpu`-only build runs fine), and a
        // crash inside the driver cannot be caught.
        return Err(DeviceError::SoftwareVulkan {
            choice: gpu,
            name: runtime.name.clone(),
        });
    }
    let probed = runtime
        .probed
        .get_or_insert_with(|| probe(&runtime.device).map_err(|failure| DeviceError::Broken { choice: gpu, failure }));
    probed.clone().map(|()| OpenedDevice {
        device: runtime.device.clone(),
        choice: gpu,
        name: runtime.name.clone(),
    })
}

/// Initialises a GPU runtime: its device, name, and whether it is a software renderer.
#[allow(unreachable_code)]
fn gpu_device(choice: DeviceChoice) -> Result<(Device, String, bool), DeviceError> {
    match choice {
        DeviceChoice::Cuda(index) => {
            #[cfg(feature = "cuda")]
            return Ok((Device::cuda(index), format!("CUDA device {index}"), false));
            let _ = index;
            Err(DeviceError::NotBuilt {
                choice,
                feature: "cuda",
            })
        }
        DeviceChoice::Wgpu | DeviceChoice::Vulkan => {
            #[cfg(feature = "wgpu")]
            {
                use burn::tensor::wgpu::WgpuBackend;
                let api = if choice == DeviceChoice::Vulkan {
                    WgpuBackend::Vulkan
                } else {
                    WgpuBackend::Auto
                };
                let (device, setup) = Device::wgpu_options()
                    .graphics_api(api)
                    .init_with_setup()
                    .map_err(|e| DeviceError::NoAdapter {
                        choice,
                        detail: e.to_string(),
                    })?;
                let info = setup.adapter.get_info();
                let software = info.device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu;
                let kind = if software { ", software" } else { "" };
                return Ok((device, format!("{} ({:?}{kind})", info.name, info.backend), software));
            }
            Err(DeviceError::NotBuilt {
                choice,
                feature: if choice == DeviceChoice::Vulkan {
                    "vulkan"
                } else {
                    "wgpu"
                },
            })
        }
        DeviceChoice::Auto | DeviceChoice::Cpu => Ok((Device::flex(), "cpu".into(), false)),
    }
}

/// A small computation, read back: runtimes that initialise lazily fail here (missing driver
/// libraries panic inside them, hence the unwind guard) instead of in the middle of a job.
fn probe(device: &Device) -> Result<(), ProbeFailure> {
    let device = device.clone();
    let result = std::panic::catch_unwind(move || {
        let t = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device);
        (t.clone() * t).sum().into_scalar::<f32>()
    });
    match result {
        Ok(v) if (v - 14.0).abs() < 1e-4 => Ok(()),
        Ok(v) => Err(ProbeFailure::WrongSum(v)),
        Err(panic) => Err(ProbeFailure::Panicked(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_print() {
        for text in ["auto", "cpu", "wgpu", "vulkan", "cuda:1"] {
            assert_eq!(text.parse::<DeviceChoice>().unwrap().to_string(), text);
        }
        assert_eq!("cuda".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda(0));
        assert_eq!("gpu".parse::<DeviceChoice>(), Err(DeviceError::Unknown("gpu".into())));
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn the_cpu_always_opens_and_missing_backends_are_named() {
        assert!(open(DeviceChoice::Cpu).unwrap().is_cpu());
        if !cfg!(feature = "cuda") {
            let err = open(DeviceChoice::Cuda(0)).unwrap_err();
            assert_eq!(
                err,
                DeviceError::NotBuilt {
                    choice: DeviceChoice::Cuda(0),
                    feature: "cuda"
                }
            );
            assert!(err.to_string().contains("--features cuda"), "{err}");
        }
        if !cfg!(feature = "wgpu") {
            assert!(open(DeviceChoice::Auto).unwrap().is_cpu());
        }
    }

    #[test]
    fn a_list_of_devices_falls_back_in_order() {
        let mut notes = vec![];
        let first = open_first(&[DeviceChoice::Cpu, DeviceChoice::Wgpu], |e| notes.push(e.to_string()));
        assert!(first.unwrap().is_cpu() && notes.is_empty());
        if !cfg!(feature = "cuda") {
            let fallback = open_first(&[DeviceChoice::Cuda(0), DeviceChoice::Cpu], |e| {
                notes.push(e.to_string())
            });
            assert!(fallback.unwrap().is_cpu());
            assert!(notes.len() == 1 && notes[0].contains("--features cuda"), "{notes:?}");
            let err = open_first(&[DeviceChoice::Cuda(0), DeviceChoice::Cuda(1)], |e| {
                notes.push(e.to_string())
            })
            .unwrap_err();
            assert_eq!(notes.len(), 2, "no note for the last device: its failure is the error");
            assert!(matches!(&err, DeviceError::NoneWorks(all) if all.len() == 2), "{err:?}");
            let text = err.to_string();
            assert!(text.starts_with("no device in the list works"), "{text}");
            assert_eq!(text.matches("--features cuda").count(), 2, "{text}");
        }
        assert_eq!(open_first(&[], |_| {}).unwrap_err(), DeviceError::NoneGiven);
    }
}
