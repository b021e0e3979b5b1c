//! PyTorch checkpoints (`torch.save`, zip format): a `data.pkl` pickle that describes tensors,
//! and one zip record per storage. Only the state dict is read (`state_dict`, `model`,
//! `params_ema` or `params` key, or the whole dict when it holds tensors), a DataParallel
//! `module.` prefix is removed, and float tensors become f32.

use super::WeightError;
use super::pickle::{self, StorageType, TensorRef, Value};
use crate::host_tensor::{HostTensor, TensorMap};
use std::io::{Cursor, Read};
use std::path::Path;

/// No tensor of this model comes near this; a checkpoint claiming more is refused before any
/// allocation.
pub const MAX_TENSOR_BYTES: u64 = 1 << 30;
/// Upper bound on the pickle program itself.
const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// Reads the state dict of a PyTorch zip checkpoint held in `bytes`.
pub fn read_state_dict(bytes: &[u8], path: &Path) -> Result<TensorMap, WeightError> {
    let fail = |reason: String| WeightError::Pickle {
        path: path.to_owned(),
        reason,
    };
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| fail(format!("not a readable zip archive ({e})")))?;
    let pkl_name = archive
        .file_names()
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .map(str::to_owned)
        .ok_or_else(|| fail("no `<name>/data.pkl` record: not a torch.save zip file".into()))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_owned();
    if let Ok(mut f) = archive.by_name(&format!("{prefix}byteorder")) {
        let mut order = String::new();
        f.by_ref().take(16).read_to_string(&mut order).ok();
        if order.trim() != "little" {
            return Err(fail(format!("byte order `{}` is not supported", order.trim())));
        }
    }
    let program = read_record(&mut archive, &pkl_name, MAX_PICKLE_BYTES).map_err(fail)?;
    let root = pickle::unpickle(&program).map_err(fail)?;

    let dict = ["state_dict", "model", "params_ema", "params"]
        .iter()
        .find_map(|k| root.get(k).filter(|v| matches!(v, Value::Dict(_))))
        .unwrap_or(&root);
    let Value::Dict(items) = dict else {
        return Err(fail("the checkpoint does not hold a dict of tensors".into()));
    };
    let mut tensors = TensorMap::new();
    for (key, value) in items {
        let Some(name) = key.as_str() else { continue };
        let Value::Tensor(tensor) = value else { continue };
        let host =
            read_tensor(&mut archive, &prefix, tensor).map_err(|reason| fail(format!("tensor `{name}`: {reason}")))?;
        tensors.insert(name.to_owned(), host);
    }
    if tensors.is_empty() {
        return Err(fail("the state dict holds no tensors".into()));
    }
    let prefixed = tensors.keys().all(|k| k.starts_with("module."));
    Ok(if prefixed {
        super::strip_prefix(tensors, "module.")
    } else {
        tensors
    })
}

fn read_record(archive: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str, limit: u64) -> Result<Vec<u8>, String> {
    let mut file = archive.by_name(name).map_err(|e| format!("record `{name}`: {e}"))?;
    if file.size() > limit {
        return Err(format!(
            "record `{name}` claims {} bytes, more than {limit}",
            file.size()
        ));
    }
    let mut out = Vec::with_capacity(file.size() as usize);
    file.by_ref()
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| format!("record `{name}`: {e}"))?;
    Ok(out)
}

fn read_tensor(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    prefix: &str,
    tensor: &TensorRef,
) -> Result<HostTensor, String> {
    let storage = &tensor.storage;
    let size = storage.dtype.element_size();
    let bytes_needed = (storage.numel as u64).saturating_mul(size as u64);
    if bytes_needed > MAX_TENSOR_BYTES {
        return Err(format!(
            "its storage claims {bytes_needed} bytes, more than {MAX_TENSOR_BYTES}"
        ));
    }
    let record = format!("{prefix}data/{}", storage.key);
    let raw = read_record(archive, &record, bytes_needed)?;
    if (raw.len() as u64) != bytes_needed {
        return Err(format!(
            "storage record holds {} bytes, its header says {bytes_needed}",
            raw.len()
        ));
    }
    let element = |i: usize| -> f32 {
        let b = &raw[i * size..(i + 1) * size];
        match storage.dtype {
            StorageType::F32 => f32::from_le_bytes(b.try_into().unwrap()),
            StorageType::F64 => f64::from_le_bytes(b.try_into().unwrap()) as f32,
            StorageType::F16 => half::f16::from_le_bytes(b.try_into().unwrap()).to_f32(),
            StorageType::Bf16 => half::bf16::from_le_bytes(b.try_into().unwrap()).to_f32(),
            _ => unreachable!("checked below"),
        }
    };
    if !matches!(
        storage.dtype,
        StorageType::F32 | StorageType::F64 | StorageType::F16 | StorageType::Bf16
    ) {
        return Err(format!("{:?} tensors are not model weights", storage.dtype));
    }
    let numel: usize = tensor.shape.iter().product();
    let mut data = Vec::with_capacity(numel);
    let mut index = vec![0usize; tensor.shape.len()];
    for _ in 0..numel {
        let at = tensor.offset + index.iter().zip(&tensor.stride).map(|(i, s)| i * s).sum::<usize>();
        data.push(element(at));
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < tensor.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(HostTensor::new(tensor.shape.clone(), data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_zip_input_is_a_clear_error() {
        let err = read_state_dict(b"PK\x03\x04garbage", Path::new("bad.pth")).unwrap_err();
        assert!(
            err.to_string().starts_with("bad.pth: PyTorch checkpoint refused"),
            "{err}"
        );
    }
}
