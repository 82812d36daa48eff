//! LLMs in pixels.
//!
//! * [`format`]: PXI-LLM, a model as one PXI of kind `tensor` (manifest plus
//!   each tensor's exact bytes, 64-byte aligned, read in place).
//! * [`dtype`]: f32, f16, bf16 and GGUF's q8_0, q4_0, q4_1 blocks.
//! * [`model`]: the CPU engine (the reference for every other), with a KV cache.
//! * [`generate`], [`sample`], [`tokenizer`]: prompts in, text streamed out.

#[cfg(target_endian = "big")]
compile_error!("PXI-LLM tensors are little-endian and are read in place");

pub mod chat;
pub mod convert;
pub mod corpus;
pub mod dtype;
pub mod error;
pub mod format;
pub mod fuzz;
pub mod generate;
pub mod gguf;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod import;
pub mod llama2c;
pub mod model;
pub mod pool;
pub mod registered;
pub mod render;
pub mod rng;
pub mod sample;
pub mod seedv0;
pub mod serve;
pub mod tokenizer;
pub mod train;
pub mod vocab;

pub use dtype::DType;
pub use error::{Error, ErrorKind, Result};
pub use format::{Architecture, LlamaConfig, Manifest, ModelFile, TensorData, TokenizerSpec};
pub use generate::{Finish, Generated, Generator};
pub use sample::{Sampler, Sampling};

/// The committed pixellm (trained by `pxos llm train`; see `docs/benchmarks.md`).
pub const BUILTIN_PIXELLM: &[u8] = include_bytes!("../models/pixellm.png");

/// The committed pixellm, decoded and checked.
pub fn builtin() -> Result<ModelFile> {
    ModelFile::from_png(BUILTIN_PIXELLM, &pxos_pixel::Limits::default())
}

/// Which engine runs a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Gpu,
    /// The GPU when an adapter is found, else the CPU.
    Auto,
}

impl Device {
    pub fn parse(name: &str) -> crate::error::Result<Device> {
        match name {
            "cpu" => Ok(Device::Cpu),
            "gpu" => Ok(Device::Gpu),
            "auto" => Ok(Device::Auto),
            other => Err(crate::error::Error::usage(format!(
                "unknown device {other:?} (cpu, gpu or auto)"
            ))),
        }
    }
}
