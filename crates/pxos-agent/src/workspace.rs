//! Sandbox workspaces: where agents write, and nowhere else. A task's
//! workspace is `HOME/agents/workspace/<task id>/`, chosen by pxOS from the
//! task's id (never from task metadata). Artefact names are plain relative
//! paths; `..`, absolute paths, and symbolic links anywhere on the way are
//! refused, so nothing an agent writes can land outside its workspace: not
//! the registry, the evolution log, the kernel store or PixelFS.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub const WORKSPACES: &str = "agents/workspace";
pub const REPLAYS: &str = "agents/replay";

/// An artefact name: a relative path of plain components (letters, digits,
/// `.`, `-`, `_`), at most 8 deep and 255 bytes.
pub fn check_artefact_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::refused(format!(
            "artefact path {name:?} refused: {why}"
        )))
    };
    if name.is_empty() || name.len() > 255 {
        return bad("empty or longer than 255 bytes");
    }
    if name.starts_with('/') {
        return bad("absolute paths leave the workspace");
    }
    let mut depth = 0;
    for part in name.split('/') {
        if part == ".." {
            return bad("`..` leaves the workspace");
        }
        if part.is_empty()
            || part.starts_with('.')
            || !part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return bad("each part is letters, digits, '.', '-' or '_', not starting with '.'");
        }
        depth += 1;
    }
    if depth > 8 {
        return bad("more than 8 levels deep");
    }
    Ok(())
}

/// Refuses `path` if it, or any folder from `root` down to it, is a symbolic link.
fn no_links(root: &Path, path: &Path) -> Result<()> {
    let rel = path
        .strip_prefix(root)
        .map_err(|_| Error::refused(format!("{} is outside {}", path.display(), root.display())))?;
    // The root itself is the person's (a home may well be a link); below it, pxOS's.
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        check_not_link(&at)?;
    }
    Ok(())
}

fn check_not_link(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::refused(format!(
            "{} is a symbolic link; an agent workspace never follows links",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// One task's workspace.
#[derive(Clone, Debug)]
pub struct Workspace {
    root: PathBuf,
    dir: PathBuf,
}

impl Workspace {
    /// The workspace of task `id` (`t` and digits), created if missing.
    pub fn open(home: &Path, id: &str) -> Result<Workspace> {
        Workspace::open_in(home, WORKSPACES, id)
    }

    /// The workspace a replay of task `id` runs in (`HOME/agents/replay/<id>`).
    pub fn open_replay(home: &Path, id: &str) -> Result<Workspace> {
        Workspace::open_in(home, REPLAYS, id)
    }

    fn open_in(home: &Path, area: &str, id: &str) -> Result<Workspace> {
        if !(id.len() > 1
            && id.len() <= 21
            && id.starts_with('t')
            && id[1..].bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Error::refused(format!("{id:?} is not a task id")));
        }
        let root = home.join(area);
        no_links(home, &root)?;
        std::fs::create_dir_all(&root).map_err(|err| Error::io(err, &root))?;
        let dir = root.join(id);
        no_links(home, &dir)?;
        std::fs::create_dir_all(&dir).map_err(|err| Error::io(err, &dir))?;
        no_links(home, &dir)?;
        Ok(Workspace { root, dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where artefact `name` lives (checked, links refused).
    pub fn path(&self, name: &str) -> Result<PathBuf> {
        check_artefact_name(name)?;
        let path = self.dir.join(name);
        no_links(&self.root, &path)?;
        Ok(path)
    }

    /// Writes artefact `name` atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.path(name)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| Error::io(err, parent))?;
            no_links(&self.root, parent)?;
        }
        pxos_pixel::durable::write_atomic(&path, bytes, pxos_pixel::durable::label::AGENT_ARTEFACT)
            .map_err(|err| Error::io(err, &path))?;
        Ok(path)
    }

    /// A clean sub-folder `name` (emptied if it exists): only ever inside
    /// this workspace, whose path pxOS chose.
    pub fn fresh_dir(&self, name: &str) -> Result<PathBuf> {
        let path = self.path(name)?;
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|err| Error::io(err, &path))?;
        }
        std::fs::create_dir_all(&path).map_err(|err| Error::io(err, &path))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "../x",
            "a/../../b",
            "/etc/passwd",
            "",
            ".hidden",
            "a//b",
            "a b",
            "C:\\x",
            "a/./b",
            "~/x",
        ] {
            assert!(check_artefact_name(bad).is_err(), "{bad:?}");
        }
        for good in ["main.pxasm", "world/programs/x.pxasm", "plan-1.md"] {
            assert!(check_artefact_name(good).is_ok(), "{good}");
        }
    }
}
