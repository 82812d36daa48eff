//! pxOS beyond one machine: remotes on S3-compatible object storage (proven
//! on a Garage cluster) and read-only HTTP(S) remotes.
//!
//! * [`config`]: the remotes a user added and their credentials.
//! * [`client`]: one open remote (`object_store`), every request logged.
//! * [`netlog`]: the network log.
//! * [`refs`]: references moved by compare-and-swap without conditional PUTs.
//! * [`fs`]: PixelFS push and pull; [`cart`]: cartridge push and pull.
//! * [`pixel`]: remote PXI files read by ranges.

pub mod cart;
pub mod client;
pub mod config;
mod error;
pub mod fs;
pub mod netlog;
pub mod pixel;
pub mod refs;

pub use client::Remote;
pub use error::{Error, Result};
