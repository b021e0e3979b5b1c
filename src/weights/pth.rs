//! PyTorch checkpoints (`torch.save`, zip format): a `data.pkl` pickle that describes tensors,
//! and one zip record per storage. Only the state dict is read (`state_dict`, `model`,
//! `params_ema` or `params` key, or the whole dict when it holds tensors), a DataParallel
//! `module.` prefix is removed, and float tensors become f32.

use super::WeightError;
use super::pickle::{self, PickleError, StorageType, TensorRef, Value};
use crate::host_tensor::{HostTensor, TensorMap};
use std::io::{Cursor, Read};
use std::path::Path;

/// No tensor of this model comes near this; a checkpoint claiming more is refused before any
/// allocation.
pub const MAX_TENSOR_BYTES: u64 = 1 << 30;
/// Upper bound on the pickle program itself.
const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// Why a PyTorch checkpoint was refused (`WeightError::Pickle` adds the file).
#[derive(Debug, thiserror::Error)]
pub enum PthError {
    #[error("not a readable zip archive ({0})")]
    NotZip(zip::result::ZipError),
    #[error("no `<name>/data.pkl` record: not a torch.save zip file")]
    NoPickle,
    #[error("byte order `{0}` is not supported")]
    ByteOrder(String),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Pickle(#[from] PickleError),
    #[error("the checkpoint does not hold a dict of tensors")]
    NoDict,
    #[error("the state dict holds no tensors")]
    NoTensors,
    #[error("tensor `{name}`: {error}")]
    Tensor { name: String, error: TensorReadError },
}

/// A zip record that could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record `{name}`: {error}")]
    Zip { name: String, error: zip::result::ZipError },
    #[error("record `{name}` claims {size} bytes, more than {limit}")]
    TooLarge { name: String, size: u64, limit: u64 },
    #[error("record `{name}`: {error}")]
    Read { name: String, error: std::io::Error },
}

/// A tensor whose storage cannot become f32 weights.
#[derive(Debug, thiserror::Error)]
pub enum TensorReadError {
    #[error("its storage claims {0} bytes, more than {MAX_TENSOR_BYTES}")]
    TooLarge(u64),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("storage record holds {held} bytes, its header says {claimed}")]
    SizeMismatch { held: u64, claimed: u64 },
    #[error("{0:?} tensors are not model weights")]
    NotFloat(StorageType),
}

/// Reads the state dict of a PyTorch zip checkpoint held in `bytes`.
pub fn read_state_dict(bytes: &[u8], path: &Path) -> Result<TensorMap, WeightError> {
    state_dict(bytes).map_err(|error| WeightError::Pickle {
        path: path.to_owned(),
        error: Box::new(error),
    })
}

fn state_dict(bytes: &[u8]) -> Result<TensorMap, PthError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(PthError::NotZip)?;
    let pkl_name = archive
        .file_names()
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .map(str::to_owned)
        .ok_or(PthError::NoPickle)?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_owned();
    if let Ok(mut f) = archive.by_name(&format!("{prefix}byteorder")) {
        let mut order = String::new();
        f.by_ref().take(16).read_to_string(&mut order).ok();
        if order.trim() != "little" {
            return Err(PthError::ByteOrder(order.trim().to_owned()));
        }
    }
    let program = read_record(&mut archive, &pkl_name, MAX_PICKLE_BYTES)?;
    let root = pickle::unpickle(&program)?;

    let dict = ["state_dict", "model", "params_ema", "params"]
        .iter()
        .find_map(|k| root.get(k).filter(|v| matches!(v, Value::Dict(_))))
        .unwrap_or(&root);
    let Value::Dict(items) = dict else {
        return Err(PthError::NoDict);
    };
    let mut tensors = TensorMap::new();
    for (key, value) in items {
        let Some(name) = key.as_str() else { continue };
        let Value::Tensor(tensor) = value else { continue };
        let host = read_tensor(&mut archive, &prefix, tensor).map_err(|error| PthError::Tensor {
            name: name.to_owned(),
            error,
        })?;
        tensors.insert(name.to_owned(), host);
    }
    if tensors.is_empty() {
        return Err(PthError::NoTensors);
    }
    let prefixed = tensors.keys().all(|k| k.starts_with("module."));
    Ok(if prefixed {
        super::strip_prefix(tensors, "module.")
    } else {
        tensors
    })
}

fn read_record(archive: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str, limit: u64) -> Result<Vec<u8>, RecordError> {
    let mut file = archive.by_name(name).map_err(|error| RecordError::Zip {
        name: name.to_owned(),
        error,
    })?;
    if file.size() > limit {
        return Err(RecordError::TooLarge {
            name: name.to_owned(),
            size: file.size(),
            limit,
        });
    }
    let mut out = Vec::with_capacity(file.size() as usize);
    file.by_ref()
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|error| RecordError::Read {
            name: name.to_owned(),
            error,
        })?;
    Ok(out)
}

fn read_tensor(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    prefix: &str,
    tensor: &TensorRef,
) -> Result<HostTensor, TensorReadError> {
    let storage = &tensor.storage;
    let size = storage.dtype.element_size();
    let bytes_needed = (storage.numel as u64).saturating_mul(size as u64);
    if bytes_needed > MAX_TENSOR_BYTES {
        return Err(TensorReadError::TooLarge(bytes_needed));
    }
    let record = format!("{prefix}data/{}", storage.key);
    let raw = read_record(archive, &record, bytes_needed)?;
    if (raw.len() as u64) != bytes_needed {
        return Err(TensorReadError::SizeMismatch {
            held: raw.len() as u64,
            claimed: bytes_needed,
        });
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
        return Err(TensorReadError::NotFloat(storage.dtype));
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
            matches!(&err, WeightError::Pickle { error, .. } if matches!(**error, PthError::NotZip(_))),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("bad.pth: PyTorch checkpoint refused"),
            "{err}"
        );
    }
}
