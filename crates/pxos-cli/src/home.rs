//! Where pxOS keeps its state.

use std::path::PathBuf;

use crate::error::{Context, Result};

use crate::cli::Global;

/// The home directory: `--home`, `PXOS_HOME`, `$XDG_DATA_HOME/pxos` or `~/.local/share/pxos`.
pub fn home(global: &Global) -> Result<PathBuf> {
    if let Some(home) = &global.home {
        return Ok(home.clone());
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|value| !value.is_empty()) {
        return Ok(PathBuf::from(data).join("pxos"));
    }
    let user = std::env::var_os("HOME")
        .filter(|value| !value.is_empty())
        .context("cannot find a home directory: set --home, PXOS_HOME, XDG_DATA_HOME or HOME")?;
    Ok(PathBuf::from(user).join(".local/share/pxos"))
}

/// The PixelFS directory inside the home.
pub fn fs_root(global: &Global) -> Result<PathBuf> {
    Ok(home(global)?.join("fs"))
}
