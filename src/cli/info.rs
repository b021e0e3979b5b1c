//! `rt4ksr info`: what a weight file holds (form, scale, configuration, provenance).

use anyhow::Result;
use clap::Args;
use rt4ksr::ModelWeights;
use rt4ksr::model::Form;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Weight file: an official .pth checkpoint, a safetensors state dict, or an rt4ksr file.
    weights: PathBuf,
}

pub fn run(args: InfoArgs) -> Result<ExitCode> {
    let weights = ModelWeights::load(&args.weights)?;
    let c = &weights.config;
    outln!("file:             {}", args.weights.display());
    outln!("provenance:       {}", weights.provenance);
    outln!("form:             {}", weights.form);
    outln!("scale:            x{}", c.scale);
    outln!("feature channels: {}", c.feature_channels);
    outln!("blocks:           {}", c.num_blocks);
    outln!("activation:       {:?}", c.activation);
    outln!("hf extraction:    {:?}", c.hf_extraction);
    outln!("layernorm:        {}", c.layernorm);
    outln!("channel attention: {}", if c.eca { "on" } else { "off" });
    outln!("block residual:   {}", c.residual);
    outln!(
        "hf merge:         {}",
        if c.merge_hf {
            "on"
        } else {
            "off (HF branch is dead work)"
        }
    );
    outln!("parameters:       {} in the file", weights.parameter_count());
    outln!(
        "                  {} training form, {} folded ({} without the dead branch)",
        c.parameter_count(Form::Training, true),
        c.parameter_count(Form::Folded, true),
        c.parameter_count(Form::Folded, false),
    );
    outln!("cost per frame (folded network, multiply-accumulates):");
    // The input that this scale takes to 4K (960x540 at x4) besides 720p and 1080p.
    let to_4k = (3840 / c.scale, 2160 / c.scale);
    let mut inputs = vec![(format!("{}x{}", to_4k.0, to_4k.1), to_4k.0, to_4k.1)];
    for (label, w, h) in [("1280x720 (720p)", 1280, 720), ("1920x1080 (1080p)", 1920, 1080)] {
        if (w, h) == to_4k {
            inputs[0].0 = label.to_owned();
        } else {
            inputs.push((label.to_owned(), w, h));
        }
    }
    inputs.sort_by_key(|&(_, w, _)| w);
    for (label, w, h) in inputs {
        let (ow, oh) = (w * c.scale, h * c.scale);
        outln!(
            "  {label:<18} -> {ow}x{oh}: {:.2} GMAC useful, {:.2} GMAC with the dead HF branch",
            c.folded_macs(w, h, false) as f64 / 1e9,
            c.folded_macs(w, h, true) as f64 / 1e9,
        );
    }
    Ok(ExitCode::SUCCESS)
}
