//! Checkpoints as plain [safetensors](https://github.com/huggingface/safetensors) files.
//!
//! A checkpoint holds tensors under the [`ParamStore`] names (`rmc.block0.qkv.weight`, …) plus
//! string metadata, so Python reads it with two lines:
//!
//! ```python
//! from safetensors.numpy import load_file
//! params = load_file("best.safetensors")
//! ```
//!
//! Writes are atomic: bytes go to a temporary file in the target's directory, are flushed to disk,
//! and the file is renamed over the target, so an interrupted run never leaves a corrupt
//! checkpoint — the old file stays until the new one is complete.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::{Grads, ParamStore, Scalar};

/// Tensors by name, widened to f64 (exact for f32 and f64 files).
pub type Tensors = BTreeMap<String, ArrayD<f64>>;

/// String metadata stored in the safetensors header.
pub type Metadata = BTreeMap<String, String>;

/// Why a checkpoint could not be written or read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not a valid safetensors file, or hold an unsupported dtype.
    #[error("{path}: not a valid checkpoint: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model has a parameter the file lacks.
    #[error("{path}: checkpoint has no tensor `{name}` (was it written for another model?)")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The missing parameter.
        name: String,
    },
    /// A tensor's shape differs from the model's parameter.
    #[error("{path}: tensor `{name}` has shape {found:?}, the model expects {expected:?}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The parameter.
        name: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// A tensor holds NaN or ±∞: a diverged or corrupted checkpoint.
    #[error("{path}: tensor `{name}` holds a non-finite value ({value} at element {index})")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The first non-finite value.
        value: f64,
        /// Its position in the tensor's elements, in row-major order.
        index: usize,
    },
    /// The file has a tensor the model does not (another network's checkpoint).
    #[error(
        "{path}: tensor `{name}` is not a parameter of this network (was it written for another \
         configuration?)"
    )]
    Unexpected {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
    },
}

/// The tensor `name` of `tensors` (read from `path`), checked to have shape `expected` and only
/// finite values.
fn checked<'a>(
    tensors: &'a Tensors,
    name: &str,
    expected: &[usize],
    path: &Path,
) -> Result<&'a ArrayD<f64>, CheckpointError> {
    let t = tensors.get(name).ok_or_else(|| CheckpointError::Missing {
        path: path.to_owned(),
        name: name.to_owned(),
    })?;
    if t.shape() != expected {
        return Err(CheckpointError::Shape {
            path: path.to_owned(),
            name: name.to_owned(),
            expected: expected.to_vec(),
            found: t.shape().to_vec(),
        });
    }
    if let Some((index, &value)) = t.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(CheckpointError::NonFinite {
            path: path.to_owned(),
            name: name.to_owned(),
            value,
            index,
        });
    }
    Ok(t)
}

/// Serialises named tensors (in `T`'s dtype) and metadata to safetensors bytes; tensors and
/// metadata keys are sorted by name, so the same inputs always give the same bytes.
pub fn encode<'a, T: Scalar>(
    tensors: impl IntoIterator<Item = (&'a str, &'a ArrayD<T>)>,
    metadata: &Metadata,
) -> Result<Vec<u8>, safetensors::SafeTensorError> {
    let dtype = if T::BYTES == 4 {
        Dtype::F32
    } else {
        Dtype::F64
    };
    let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, a)| {
            let mut bytes = Vec::with_capacity(a.len() * T::BYTES);
            for &x in a.iter() {
                let x = x.to_f64_lossy();
                if T::BYTES == 4 {
                    bytes.extend((x as f32).to_le_bytes());
                } else {
                    bytes.extend(x.to_le_bytes());
                }
            }
            (name.to_owned(), a.shape().to_vec(), bytes)
        })
        .collect();
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            Ok((name.as_str(), TensorView::new(dtype, shape.clone(), bytes)?))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let bytes = safetensors::serialize(views, None)?;
    Ok(with_sorted_metadata(bytes, metadata))
}

/// Splices `metadata`, keys sorted, into the header of safetensors `bytes` written without it.
/// safetensors takes metadata as a `HashMap`, whose order changes from one map to the next;
/// identical runs must give identical checkpoint bytes. Tensors are already sorted by name, and
/// data offsets count from the end of the header, so only the header changes.
fn with_sorted_metadata(bytes: Vec<u8>, metadata: &Metadata) -> Vec<u8> {
    if metadata.is_empty() {
        return bytes;
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).expect("safetensors writes JSON");
    let tensors = header.trim_end().strip_prefix('{').expect("a JSON object");
    let sorted = serde_json::to_string(metadata).expect("strings serialise");
    let comma = if tensors == "}" { "" } else { "," };
    let mut header = format!("{{\"__metadata__\":{sorted}{comma}{tensors}").into_bytes();
    // safetensors pads the header with spaces to a multiple of 8 bytes (aligned data).
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + bytes.len() - 8 - n);
    out.extend((header.len() as u64).to_le_bytes());
    out.extend(header);
    out.extend(&bytes[8 + n..]);
    out
}

/// Parses safetensors bytes; `path` is only used in error messages.
pub fn decode(bytes: &[u8], path: &Path) -> Result<(Tensors, Metadata), CheckpointError> {
    let format = |message: String| CheckpointError::Format {
        path: path.to_owned(),
        message,
    };
    let st = SafeTensors::deserialize(bytes).map_err(|e| format(e.to_string()))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| format(e.to_string()))?;
    let metadata: Metadata = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut tensors = Tensors::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let values: Vec<f64> = match view.dtype() {
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))))
                .collect(),
            other => {
                return Err(format(format!(
                    "tensor `{name}` has unsupported dtype {other:?}"
                )));
            }
        };
        let array = ArrayD::from_shape_vec(IxDyn(view.shape()), values)
            .map_err(|e| format(format!("tensor `{name}`: {e}")))?;
        tensors.insert(name, array);
    }
    Ok((tensors, metadata))
}

/// Reads a safetensors file.
pub fn read(path: impl AsRef<Path>) -> Result<(Tensors, Metadata), CheckpointError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    })?;
    decode(&bytes, path)
}

/// Marks the temporary file of an atomic write: `.<name>.tmp-<pid>` beside `<name>`.
const TEMPORARY: &str = ".tmp-";

/// Whether `file_name` is the temporary file of an atomic write (`.<name>.tmp-<pid>`); one left
/// behind by a killed writer can be removed once no writer can be running.
pub fn is_temporary(file_name: &str) -> bool {
    file_name.starts_with('.')
        && file_name
            .rsplit_once(TEMPORARY)
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Writes `bytes` to `path` atomically: a temporary sibling file, `fsync`, then `rename`.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), CheckpointError> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// Writes `path` atomically with `write`, which fills a temporary sibling file; the file is
/// synced and renamed over `path` only when `write` succeeds. On any failure the temporary file
/// is removed and `path` keeps its old contents.
pub fn write_atomic_with(
    path: impl AsRef<Path>,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), CheckpointError> {
    let path = path.as_ref();
    let io = |source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}{TEMPORARY}{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        write(&mut f)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Saves every parameter of `store` (in `T`'s dtype) with `metadata`, atomically.
pub fn save_store<T: Scalar>(
    path: impl AsRef<Path>,
    store: &ParamStore<T>,
    metadata: &Metadata,
) -> Result<(), CheckpointError> {
    let path = path.as_ref();
    let bytes = encode(store.iter().map(|(_, n, v)| (n, v)), metadata).map_err(|e| {
        CheckpointError::Format {
            path: path.to_owned(),
            message: e.to_string(),
        }
    })?;
    write_atomic(path, &bytes)
}

/// Copies every parameter of `store` from `tensors` (read from `path`), checking names, shapes
/// and that every value is finite; tensors the store does not have (optimizer state, traces) are
/// ignored.
pub fn load_into<T: Scalar>(
    store: &mut ParamStore<T>,
    tensors: &Tensors,
    path: &Path,
) -> Result<(), CheckpointError> {
    let ids: Vec<_> = store.ids().collect();
    for id in ids {
        let name = store.name(id).to_owned();
        let value = store.get_mut(id);
        let t = checked(tensors, &name, value.shape(), path)?;
        value.zip_mut_with(t, |v, &x| *v = T::from_f64_lossy(x));
    }
    Ok(())
}

/// Refuses a tensor of `tensors` that is not a parameter of `store` and does not start with one
/// of `ignored` (e.g. `optim.`, the optimiser's buffers): with [`load_into`], the file holds
/// exactly the network's parameters.
pub fn check_no_extra<T: Scalar>(
    store: &ParamStore<T>,
    tensors: &Tensors,
    ignored: &[&str],
    path: &Path,
) -> Result<(), CheckpointError> {
    let extra = tensors
        .keys()
        .find(|k| store.id(k).is_none() && !ignored.iter().any(|p| k.starts_with(p)));
    match extra {
        Some(name) => Err(CheckpointError::Unexpected {
            path: path.to_owned(),
            name: name.clone(),
        }),
        None => Ok(()),
    }
}

/// Per-parameter state saved under `{prefix}{name}` for every parameter `name` of `store`
/// (optimiser buffers: `optim.m.rmc.block0.qkv.weight`, …): `None` when the file has no tensor
/// with that prefix, an error when it has some but not all, a shape differs or a value is not
/// finite.
pub fn load_grads<T: Scalar>(
    store: &ParamStore<T>,
    tensors: &Tensors,
    prefix: &str,
    path: &Path,
) -> Result<Option<Grads<T>>, CheckpointError> {
    if !tensors.keys().any(|k| k.starts_with(prefix)) {
        return Ok(None);
    }
    let mut grads = store.zeros_like();
    for (id, name, value) in store.iter() {
        let t = checked(tensors, &format!("{prefix}{name}"), value.shape(), path)?;
        grads
            .get_mut(id)
            .zip_mut_with(t, |g, &x| *g = T::from_f64_lossy(x));
    }
    Ok(Some(grads))
}

/// Reads `path` and loads it into `store`, returning the file's metadata.
pub fn load_store<T: Scalar>(
    path: impl AsRef<Path>,
    store: &mut ParamStore<T>,
) -> Result<Metadata, CheckpointError> {
    let path = path.as_ref();
    let (tensors, metadata) = read(path)?;
    load_into(store, &tensors, path)?;
    Ok(metadata)
}
