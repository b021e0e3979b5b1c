//! Where the burn network runs: the CPU, or a GPU backend built in as a cargo feature (`wgpu`,
//! `vulkan`, `cuda`). Opening a device checks that it really works (a tiny computation), so a
//! missing driver is a message here, not a panic later.

use burn::tensor::{Device, Tensor};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

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
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "auto" => DeviceChoice::Auto,
            "cpu" => DeviceChoice::Cpu,
            "wgpu" => DeviceChoice::Wgpu,
            "vulkan" => DeviceChoice::Vulkan,
            "cuda" => DeviceChoice::Cuda(0),
            _ => match text.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(n)) => DeviceChoice::Cuda(n),
                _ => {
                    return Err(format!(
                        "unknown device `{text}` (auto, cpu, wgpu, vulkan, cuda or cuda:N)"
                    ));
                }
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
}

impl OpenedDevice {
    pub fn is_cpu(&self) -> bool {
        self.choice == DeviceChoice::Cpu
    }
}

/// Which GPU backends this binary was built with.
pub fn built_in_backends() -> Vec<&'static str> {
    let mut v = vec![];
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    if cfg!(feature = "vulkan") {
        v.push("vulkan");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    v
}

/// Opens the device asked for. `Auto` tries CUDA, then wgpu, and settles on the CPU.
pub fn open(choice: DeviceChoice) -> Result<OpenedDevice, String> {
    match choice {
        DeviceChoice::Auto => {
            let gpus = [DeviceChoice::Cuda(0), DeviceChoice::Wgpu];
            for gpu in gpus {
                if let Ok(opened) = open(gpu) {
                    return Ok(opened);
                }
            }
            open(DeviceChoice::Cpu)
        }
        DeviceChoice::Cpu => Ok(OpenedDevice {
            device: Device::flex(),
            choice,
        }),
        gpu => {
            // A GPU runtime initialises once per process: later opens (and failures) reuse the
            // first answer.
            static OPENED: Mutex<Vec<(DeviceChoice, Result<Device, String>)>> = Mutex::new(Vec::new());
            let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, result)) = opened.iter().find(|(c, _)| *c == gpu) {
                return result.clone().map(|device| OpenedDevice { device, choice: gpu });
            }
            let result = gpu_device(gpu).and_then(|device| {
                probe(&device)
                    .map(|()| device)
                    .map_err(|e| format!("device {gpu} does not work: {e}"))
            });
            opened.push((gpu, result.clone()));
            result.map(|device| OpenedDevice { device, choice: gpu })
        }
    }
}

fn not_built(choice: DeviceChoice, feature: &str) -> String {
    format!(
        "this rt4ksr was built without {choice} support (rebuild with `cargo build --release --features {feature}`)"
    )
}

#[allow(unreachable_code)]
fn gpu_device(choice: DeviceChoice) -> Result<Device, String> {
    match choice {
        DeviceChoice::Cuda(index) => {
            #[cfg(feature = "cuda")]
            return Ok(Device::cuda(index));
            let _ = index;
            Err(not_built(choice, "cuda"))
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
                return Device::wgpu_options()
                    .graphics_api(api)
                    .init()
                    .map_err(|e| format!("no {choice} device: {e} (is a GPU driver, or Mesa's lavapipe, installed?)"));
            }
            Err(not_built(
                choice,
                if choice == DeviceChoice::Vulkan {
                    "vulkan"
                } else {
                    "wgpu"
                },
            ))
        }
        DeviceChoice::Auto | DeviceChoice::Cpu => Ok(Device::flex()),
    }
}

/// A small computation, read back: runtimes that initialise lazily fail here (missing driver
/// libraries panic inside them, hence the unwind guard) instead of in the middle of a job.
fn probe(device: &Device) -> Result<(), String> {
    let device = device.clone();
    let result = std::panic::catch_unwind(move || {
        let t = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device);
        (t.clone() * t).sum().into_scalar::<f32>()
    });
    match result {
        Ok(v) if (v - 14.0).abs() < 1e-4 => Ok(()),
        Ok(v) => Err(format!("a test sum came back as {v}, not 14")),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the runtime failed to start".into())),
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
        assert!("gpu".parse::<DeviceChoice>().unwrap_err().contains("unknown device"));
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn the_cpu_always_opens_and_missing_backends_are_named() {
        assert!(open(DeviceChoice::Cpu).unwrap().is_cpu());
        if !cfg!(feature = "cuda") {
            let err = open(DeviceChoice::Cuda(0)).unwrap_err();
            assert!(err.contains("--features cuda"), "{err}");
        }
        if !cfg!(feature = "wgpu") {
            assert!(open(DeviceChoice::Auto).unwrap().is_cpu());
        }
    }
}
