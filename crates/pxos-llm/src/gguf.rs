//! A GGUF reader (versions 2 and 3, little-endian), written for hostile input.
//!
//! Every count and length is checked against the bytes that remain before
//! anything is allocated, every tensor's extent is checked against the data
//! region, and nesting is bounded, so a damaged or crafted file gives an
//! [`Error`] that names the problem and never a panic or a huge allocation.
//! The layout is GGUF's own (`docs/formats/gguf-import.md` lists what pxOS
//! reads): header, metadata key/values, tensor infos, padding to the
//! alignment, tensor data.

use std::collections::BTreeMap;

use crate::dtype::DType;
use crate::error::{Error, Result};

/// `GGUF` read as a little-endian u32.
const MAGIC: u32 = 0x4655_4747;
/// GGUF's default alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Arrays and objects nest at most this deep.
const MAX_DEPTH: usize = 4;
/// GGML's limit on tensor names (`GGML_MAX_NAME`).
const MAX_NAME: u64 = 64;
/// Keys are at most this long (the spec's bound).
const MAX_KEY: u64 = 65_535;
/// GGML tensors have at most four dimensions.
const MAX_DIMS: u32 = 4;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// The value as a float (integers convert).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// GGUF's name for the value's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "uint8",
            Value::I8(_) => "int8",
            Value::U16(_) => "uint16",
            Value::I16(_) => "int16",
            Value::U32(_) => "uint32",
            Value::I32(_) => "int32",
            Value::F32(_) => "float32",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::U64(_) => "uint64",
            Value::I64(_) => "int64",
            Value::F64(_) => "float64",
        }
    }
}

/// A GGML tensor type id, with its name when known.
pub fn ggml_type_name(id: u32) -> &'static str {
    match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16..=23 | 29 => "IQ (importance) quant",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        30 => "BF16",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => "unknown",
    }
}

/// The pxOS type that keeps a GGML type's bytes, if there is one.
pub fn dtype_of_ggml(id: u32) -> Option<DType> {
    Some(match id {
        0 => DType::F32,
        1 => DType::F16,
        2 => DType::Q4_0,
        3 => DType::Q4_1,
        8 => DType::Q8_0,
        12 => DType::Q4K,
        14 => DType::Q6K,
        30 => DType::Bf16,
        _ => return None,
    })
}

/// The GGML type id for a pxOS type.
pub fn ggml_of_dtype(dtype: DType) -> u32 {
    match dtype {
        DType::F32 => 0,
        DType::F16 => 1,
        DType::Q4_0 => 2,
        DType::Q4_1 => 3,
        DType::Q8_0 => 8,
        DType::Q4K => 12,
        DType::Q6K => 14,
        DType::Bf16 => 30,
    }
}

/// One tensor's record.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// GGML order: `dims[0]` is the contiguous dimension.
    pub dims: Vec<u64>,
    pub dtype: DType,
    /// Byte offset from the start of the data region.
    pub offset: u64,
    /// Exact byte length.
    pub size: u64,
}

impl TensorInfo {
    /// `[rows, cols]`: the contiguous dimension is the columns, every other
    /// dimension folds into the rows.
    pub fn shape(&self) -> [usize; 2] {
        let cols = self.dims[0] as usize;
        let rows = self.dims[1..].iter().product::<u64>() as usize;
        [rows, cols]
    }
}

/// A parsed GGUF file (metadata and tensor records; data stays in the bytes).
#[derive(Clone, Debug)]
pub struct Gguf {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Where the data region starts in the file.
    pub data_start: usize,
}

impl Gguf {
    /// Parses a whole GGUF file held in memory.
    pub fn parse(bytes: &[u8]) -> Result<Gguf> {
        let mut r = Reader { bytes, at: 0 };
        let magic = r.u32("the magic")?;
        if magic != MAGIC {
            return Err(bad(format!(
                "not a GGUF file: it starts with {:02x?}, not \"GGUF\"",
                &bytes[..4]
            )));
        }
        let version = r.u32("the version")?;
        if version > 0xFFFF && version.swap_bytes() <= 3 {
            return Err(bad(
                "a big-endian GGUF file; pxOS reads little-endian GGUF only",
            ));
        }
        if !(2..=3).contains(&version) {
            return Err(bad(format!(
                "GGUF version {version} is not supported (pxOS reads versions 2 and 3)"
            )));
        }
        let tensor_count = r.u64("the tensor count")?;
        let kv_count = r.u64("the metadata count")?;
        // A key/value takes at least 13 bytes and a tensor record 32.
        if kv_count > r.left() / 13 {
            return Err(bad(format!(
                "the header claims {kv_count} metadata entries, more than the {} bytes left can hold",
                r.left()
            )));
        }
        if tensor_count > r.left() / 32 {
            return Err(bad(format!(
                "the header claims {tensor_count} tensors, more than the {} bytes left can hold",
                r.left()
            )));
        }
        let mut metadata = BTreeMap::new();
        for i in 0..kv_count {
            let key = r.string(MAX_KEY, &format!("metadata key {i}"))?;
            let value_type = r.u32(&format!("the type of {key}"))?;
            let value = r.value(value_type, 0, &key)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(bad(format!("metadata key {key} appears twice")));
            }
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) if *a > 0 && a.is_multiple_of(8) => u64::from(*a),
            Some(other) => {
                return Err(bad(format!(
                    "general.alignment must be a uint32 multiple of 8, not {other:?}"
                )));
            }
        };
        let mut tensors = Vec::with_capacity(tensor_count as usize);
        let mut names = std::collections::HashSet::new();
        for i in 0..tensor_count {
            let name = r.string(MAX_NAME, &format!("the name of tensor {i}"))?;
            let n_dims = r.u32(&format!("the dimension count of {name}"))?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(bad(format!(
                    "tensor {name} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)"
                )));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(r.u64(&format!("a dimension of {name}"))?);
            }
            let type_id = r.u32(&format!("the type of {name}"))?;
            let offset = r.u64(&format!("the offset of {name}"))?;
            let dtype = dtype_of_ggml(type_id).ok_or_else(|| {
                bad(format!(
                    "tensor {name} has GGML type {type_id} ({}), which pxOS does not read \
                     (it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K)",
                    ggml_type_name(type_id)
                ))
            })?;
            let elements = dims
                .iter()
                .try_fold(1u64, |n, &d| if d == 0 { None } else { n.checked_mul(d) });
            let elements = elements
                .filter(|&n| n <= crate::format::MAX_ELEMENTS)
                .ok_or_else(|| {
                    bad(format!(
                        "tensor {name} has absurd dimensions {dims:?} (zero, or over {} elements)",
                        crate::format::MAX_ELEMENTS
                    ))
                })?;
            if !dims[0].is_multiple_of(dtype.block_elems() as u64) {
                return Err(bad(format!(
                    "tensor {name}: a {dtype} row must hold a multiple of {} elements, not {}",
                    dtype.block_elems(),
                    dims[0]
                )));
            }
            let size = elements / dtype.block_elems() as u64 * dtype.block_bytes() as u64;
            if !offset.is_multiple_of(alignment) {
                return Err(bad(format!(
                    "tensor {name} starts at offset {offset}, not a multiple of the alignment {alignment}"
                )));
            }
            if !names.insert(name.clone()) {
                return Err(bad(format!("tensor {name} appears twice")));
            }
            tensors.push(TensorInfo {
                name,
                dims,
                dtype,
                offset,
                size,
            });
        }
        let data_start = r.at.div_ceil(alignment as usize) * alignment as usize;
        let data_len = bytes.len().saturating_sub(data_start) as u64;
        for t in &tensors {
            let end = t.offset.checked_add(t.size);
            if end.is_none_or(|end| end > data_len) {
                return Err(bad(format!(
                    "tensor {} ({} bytes at offset {}) runs past the end of the file: \
                     the data region holds {data_len} bytes (truncated?)",
                    t.name, t.size, t.offset
                )));
            }
        }
        let mut spans: Vec<(u64, u64, &str)> = tensors
            .iter()
            .map(|t| (t.offset, t.offset + t.size, t.name.as_str()))
            .collect();
        spans.sort();
        for pair in spans.windows(2) {
            if pair[1].0 < pair[0].1 {
                return Err(bad(format!(
                    "tensors {} and {} overlap",
                    pair[0].2, pair[1].2
                )));
            }
        }
        Ok(Gguf {
            version,
            metadata,
            tensors,
            alignment,
            data_start,
        })
    }

    /// A tensor's exact bytes in `file` (the bytes this was parsed from).
    pub fn tensor_bytes<'f>(&self, file: &'f [u8], tensor: &TensorInfo) -> &'f [u8] {
        let start = self.data_start + tensor.offset as usize;
        &file[start..start + tensor.size as usize]
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// A required unsigned integer.
    pub fn require_u64(&self, key: &str) -> Result<u64> {
        match self.get(key) {
            None => Err(bad(format!("metadata key {key} is missing"))),
            Some(v) => v.as_u64().ok_or_else(|| {
                bad(format!(
                    "metadata key {key} must be a non-negative integer, not a {}",
                    v.type_name()
                ))
            }),
        }
    }

    /// An optional float.
    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| {
                bad(format!(
                    "metadata key {key} must be a number, not a {}",
                    v.type_name()
                ))
            }),
        }
    }

    /// An optional string.
    pub fn str_of(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| {
                bad(format!(
                    "metadata key {key} must be a string, not a {}",
                    v.type_name()
                ))
            }),
        }
    }
}

fn bad(message: impl Into<String>) -> Error {
    Error::bad_input(format!("GGUF: {}", message.into()))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn left(&self) -> u64 {
        (self.bytes.len() - self.at) as u64
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        if (n as u64) > self.left() {
            return Err(bad(format!(
                "the file ends at byte {} while reading {what} ({n} bytes needed, {} left)",
                self.bytes.len(),
                self.left()
            )));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        Ok(self.take(N, what)?.try_into().expect("N bytes"))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, max: u64, what: &str) -> Result<String> {
        let len = self.u64(what)?;
        if len > self.left() {
            return Err(bad(format!(
                "{what} claims {len} bytes, longer than the {} bytes left in the file",
                self.left()
            )));
        }
        if len > max {
            return Err(bad(format!("{what} is {len} bytes long (at most {max})")));
        }
        let bytes = self.take(len as usize, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| bad(format!("{what} is not valid UTF-8")))
    }

    fn value(&mut self, value_type: u32, depth: usize, key: &str) -> Result<Value> {
        Ok(match value_type {
            0 => Value::U8(self.array::<1>(key)?[0]),
            1 => Value::I8(self.array::<1>(key)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array(key)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(key)?)),
            4 => Value::U32(self.u32(key)?),
            5 => Value::I32(i32::from_le_bytes(self.array(key)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(key)?)),
            7 => match self.array::<1>(key)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                other => return Err(bad(format!("{key}: bool byte {other} is not 0 or 1"))),
            },
            8 => Value::String(self.string(u64::MAX, key)?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(bad(format!("{key}: arrays nest deeper than {MAX_DEPTH}")));
                }
                let elem_type = self.u32(key)?;
                let count = self.u64(key)?;
                let min_size = match elem_type {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    other => {
                        return Err(bad(format!("{key}: unknown array element type {other}")));
                    }
                };
                if count > self.left() / min_size {
                    return Err(bad(format!(
                        "{key}: an array of {count} elements cannot fit in the {} bytes left",
                        self.left()
                    )));
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(elem_type, depth + 1, key)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(key)?),
            11 => Value::I64(i64::from_le_bytes(self.array(key)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            other => return Err(bad(format!("{key}: unknown value type {other}"))),
        })
    }
}

/// Writes a GGUF (version 3) file: the metadata, then each tensor's bytes
/// at `alignment`. Used by `pxos llm export --format gguf` and the tests.
pub fn write(
    metadata: &[(String, Value)],
    tensors: &[(String, Vec<u64>, DType, &[u8])],
    alignment: u64,
) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn type_id(v: &Value) -> u32 {
        match v {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }
    fn value(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::U8(x) => out.push(*x),
            Value::I8(x) => out.push(*x as u8),
            Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::Bool(x) => out.push(u8::from(*x)),
            Value::String(s) => string(out, s),
            Value::Array(items) => {
                let elem = items.first().map_or(4, type_id);
                out.extend_from_slice(&elem.to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                items.iter().for_each(|i| value(out, i));
            }
            Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        }
    }
    let align = |n: u64| n.div_ceil(alignment) * alignment;
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        string(&mut out, k);
        out.extend_from_slice(&type_id(v).to_le_bytes());
        value(&mut out, v);
    }
    let mut offset = 0u64;
    for (name, dims, dtype, bytes) in tensors {
        string(&mut out, name);
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        dims.iter()
            .for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
        out.extend_from_slice(&ggml_of_dtype(*dtype).to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset = align(offset + bytes.len() as u64);
    }
    out.resize(align(out.len() as u64) as usize, 0);
    let data_start = out.len();
    let mut offset = 0u64;
    for (_, _, _, bytes) in tensors {
        out.resize(data_start + offset as usize, 0);
        out.extend_from_slice(bytes);
        offset = align(offset + bytes.len() as u64);
    }
    out
}
