//! The `--device` and `--precision` arguments that upscale, video and eval share.

use anyhow::Result;
use clap::Args;
use rt4ksr::device::{DeviceChoice, OpenedDevice, open_first};

/// Where the network runs.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// auto, cpu, wgpu, vulkan, cuda or cuda:N, or a list tried in order (cuda,vulkan,cpu).
    /// GPU backends exist in builds with the cargo features `wgpu`/`vulkan`/`cuda`; auto takes a
    /// hardware GPU when there is one, else the CPU.
    #[arg(long, default_value = "auto", value_delimiter = ',')]
    pub device: Vec<DeviceChoice>,
    /// Number format: auto (the fastest that keeps fp32 quality: AMX split bf16 on CPUs with
    /// AMX-BF16, else fp32), fp32, fp16 (GPU devices) or bf16 (CPU AMX).
    #[arg(long, default_value = "auto")]
    pub precision: rt4ksr::inference::Precision,
}

impl DeviceArgs {
    pub fn open(&self) -> Result<OpenedDevice> {
        let explicit = self.device != [DeviceChoice::Auto];
        let opened = open_first(&self.device, |why| {
            if explicit {
                eprintln!("note: {why}; trying the next device");
            }
        })?;
        if !opened.is_cpu() {
            eprintln!("running on {}: {}", opened.choice, opened.name);
        }
        Ok(opened)
    }
}
