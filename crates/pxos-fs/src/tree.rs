//! Directory objects: one PXI of kind `table` per directory, naming each
//! child with its metadata and, for a subdirectory, the hash of its own tree
//! object (as git's trees). A change rewrites only the directories on its
//! path; the root's hash addresses the whole tree. See `docs/formats/pixelfs.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use pxos_pixel::{Hash256, Kind};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::Store;
use crate::table::{Entry, MAX_DESCRIPTION_LEN, check_path};

/// The `format` of a tree object.
pub const TREE_FORMAT: &str = "pxos-tree";
/// Most children one directory may hold.
pub const MAX_CHILDREN: usize = 1_000_000;

/// A file's metadata in its directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMeta {
    pub kind: String,
    pub description: String,
    pub size: u64,
    pub sha256: Hash256,
    pub created: String,
}

impl FileMeta {
    /// The public entry for this file at `path`.
    pub fn entry(&self, path: &str) -> Entry {
        let kind = self.kind.parse::<Kind>().unwrap_or(Kind::Blob);
        Entry::new(
            path,
            kind,
            &self.description,
            self.size,
            &self.sha256.0,
            self.created.clone(),
        )
    }

    /// The metadata of a public entry.
    pub fn of(entry: &Entry) -> Result<FileMeta> {
        Ok(FileMeta {
            kind: entry.kind.clone(),
            description: entry.description.clone(),
            size: entry.size,
            sha256: Hash256::parse(&entry.sha256).ok_or_else(|| {
                Error::Format(format!("entry {}: sha256 is not 64 hex digits", entry.path))
            })?,
            created: entry.created.clone(),
        })
    }
}

/// One child of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    File(FileMeta),
    /// A subdirectory: its tree, and the files and bytes below it.
    Dir {
        tree: Hash256,
        files: u64,
        bytes: u64,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum Item {
    Dir {
        name: String,
        tree: Hash256,
        files: u64,
        bytes: u64,
    },
    File {
        name: String,
        #[serde(rename = "kind")]
        kind: String,
        description: String,
        size: u64,
        sha256: Hash256,
        created: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: String,
    version: u32,
    entries: Vec<Item>,
}

/// A decoded directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    pub children: BTreeMap<String, Node>,
}

/// Checks one name in a directory.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("{name:?} is not a file name"));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(format!(
            "{:?} holds '/' or a control character",
            name.escape_debug().to_string()
        ));
    }
    if name.len() > 255 {
        return Err("a name is longer than 255 bytes".into());
    }
    Ok(())
}

impl Tree {
    /// Files and bytes in this directory and below.
    pub fn totals(&self) -> (u64, u64) {
        self.children
            .values()
            .fold((0, 0), |(f, b), node| match node {
                Node::File(meta) => (f + 1, b + meta.size),
                Node::Dir { files, bytes, .. } => (f + files, b + bytes),
            })
    }

    pub fn encode(&self) -> Vec<u8> {
        let entries = self
            .children
            .iter()
            .map(|(name, node)| match node {
                Node::Dir { tree, files, bytes } => Item::Dir {
                    name: name.clone(),
                    tree: *tree,
                    files: *files,
                    bytes: *bytes,
                },
                Node::File(meta) => Item::File {
                    name: name.clone(),
                    kind: meta.kind.clone(),
                    description: meta.description.clone(),
                    size: meta.size,
                    sha256: meta.sha256,
                    created: meta.created.clone(),
                },
            })
            .collect();
        serde_json::to_vec(&Document {
            format: TREE_FORMAT.into(),
            version: 1,
            entries,
        })
        .expect("trees serialize")
    }

    /// Decodes and checks a tree object's bytes.
    pub fn decode(bytes: &[u8]) -> Result<Tree> {
        let doc: Document = serde_json::from_slice(bytes)
            .map_err(|err| Error::Format(format!("a directory object is damaged: {err}")))?;
        if doc.format != TREE_FORMAT || doc.version != 1 {
            return Err(Error::Format(format!(
                "not a directory object (format {:?} version {})",
                doc.format, doc.version
            )));
        }
        if doc.entries.len() > MAX_CHILDREN {
            return Err(Error::Format("a directory holds too many entries".into()));
        }
        let mut tree = Tree::default();
        for item in doc.entries {
            let (name, node) = match item {
                Item::Dir {
                    name,
                    tree,
                    files,
                    bytes,
                } => (name, Node::Dir { tree, files, bytes }),
                Item::File {
                    name,
                    kind,
                    description,
                    size,
                    sha256,
                    created,
                } => {
                    kind.parse::<Kind>().map_err(|_| {
                        Error::Format(format!("entry {name:?}: unknown type {kind:?}"))
                    })?;
                    if description.len() > MAX_DESCRIPTION_LEN {
                        return Err(Error::Format(format!(
                            "entry {name:?}: description is too long"
                        )));
                    }
                    (
                        name,
                        Node::File(FileMeta {
                            kind,
                            description,
                            size,
                            sha256,
                            created,
                        }),
                    )
                }
            };
            check_name(&name).map_err(|why| Error::Format(format!("a directory entry: {why}")))?;
            if tree.children.insert(name.clone(), node).is_some() {
                return Err(Error::Format(format!("a directory names {name:?} twice")));
            }
        }
        Ok(tree)
    }
}

/// Reads a tree object.
pub fn load(store: &Store, sha: &Hash256) -> Result<Tree> {
    let (_, bytes) = store.read(sha)?;
    Tree::decode(&bytes)
}

/// Splits `/a/b/c` into its directory components and name.
fn split(path: &str) -> Result<(Vec<&str>, &str)> {
    check_path(path)?;
    let mut parts: Vec<&str> = path[1..].split('/').collect();
    let name = parts.pop().expect("a checked path has a name");
    for part in parts.iter().chain(std::iter::once(&name)) {
        check_name(part)
            .map_err(|why| Error::Usage(format!("invalid PixelFS path '{path}': {why}")))?;
    }
    Ok((parts, name))
}

fn dir_key(parts: &[&str]) -> String {
    parts.iter().map(|p| format!("/{p}")).collect()
}

/// Changes to a tree, made in memory and written bottom-up on commit: only
/// the directories on the changed paths are read and rewritten.
pub struct Editor<'a> {
    store: &'a Store,
    /// Loaded directories by path ("" is the root).
    dirs: HashMap<String, Tree>,
    dirty: BTreeSet<String>,
}

impl<'a> Editor<'a> {
    pub fn new(store: &'a Store, root: &Hash256) -> Result<Editor<'a>> {
        let mut dirs = HashMap::new();
        dirs.insert(String::new(), load(store, root)?);
        Ok(Editor {
            store,
            dirs,
            dirty: BTreeSet::new(),
        })
    }

    /// An editor over an empty tree.
    pub fn empty(store: &'a Store) -> Editor<'a> {
        let mut dirs = HashMap::new();
        dirs.insert(String::new(), Tree::default());
        Editor {
            store,
            dirs,
            dirty: BTreeSet::from([String::new()]),
        }
    }

    /// Loads the directories along `parts`; `None` when one is missing.
    /// With `create`, missing directories are made. A file in the way is an error.
    fn walk(&mut self, parts: &[&str], create: bool, path: &str) -> Result<Option<String>> {
        for depth in 0..parts.len() {
            let parent = dir_key(&parts[..depth]);
            let key = dir_key(&parts[..=depth]);
            if self.dirs.contains_key(&key) {
                continue;
            }
            let child = self.dirs[&parent].children.get(parts[depth]).cloned();
            let tree = match child {
                Some(Node::Dir { tree, .. }) => load(self.store, &tree)?,
                Some(Node::File(_)) => {
                    return Err(Error::Usage(format!(
                        "{path}: {key} is a file, not a directory"
                    )));
                }
                None if create => Tree::default(),
                None => return Ok(None),
            };
            self.dirs.insert(key, tree);
        }
        Ok(Some(dir_key(parts)))
    }

    /// The file at `path`.
    pub fn get(&mut self, path: &str) -> Result<Option<FileMeta>> {
        let (parts, name) = split(path)?;
        let Some(key) = self.walk(&parts, false, path)? else {
            return Ok(None);
        };
        Ok(match self.dirs[&key].children.get(name) {
            Some(Node::File(meta)) => Some(meta.clone()),
            _ => None,
        })
    }

    /// Puts a file at `path`, making its directories; returns what it replaced.
    pub fn put(&mut self, path: &str, meta: FileMeta) -> Result<Option<FileMeta>> {
        let (parts, name) = split(path)?;
        let key = self.walk(&parts, true, path)?.expect("created");
        let dir = self.dirs.get_mut(&key).expect("walked");
        if matches!(dir.children.get(name), Some(Node::Dir { .. })) {
            return Err(Error::Usage(format!("{path} is a directory")));
        }
        if dir.children.len() >= MAX_CHILDREN && !dir.children.contains_key(name) {
            return Err(Error::Usage(format!(
                "{key}/ already holds {MAX_CHILDREN} entries"
            )));
        }
        let old = dir.children.insert(name.to_string(), Node::File(meta));
        self.mark(&parts);
        Ok(old.and_then(|node| match node {
            Node::File(meta) => Some(meta),
            Node::Dir { .. } => None,
        }))
    }

    /// Removes the file at `path` (and directories it leaves empty).
    pub fn remove(&mut self, path: &str) -> Result<Option<FileMeta>> {
        let (parts, name) = split(path)?;
        let Some(key) = self.walk(&parts, false, path)? else {
            return Ok(None);
        };
        let dir = self.dirs.get_mut(&key).expect("walked");
        let old = match dir.children.get(name) {
            Some(Node::File(meta)) => meta.clone(),
            _ => return Ok(None),
        };
        dir.children.remove(name);
        self.mark(&parts);
        // Empty directories go with their last file.
        for depth in (0..parts.len()).rev() {
            let key = dir_key(&parts[..=depth]);
            if !self.dirs[&key].children.is_empty() {
                break;
            }
            let parent = dir_key(&parts[..depth]);
            self.dirs.remove(&key);
            self.dirty.remove(&key);
            self.dirs
                .get_mut(&parent)
                .expect("parents are loaded")
                .children
                .remove(parts[depth]);
        }
        Ok(Some(old))
    }

    fn mark(&mut self, parts: &[&str]) {
        for depth in 0..=parts.len() {
            self.dirty.insert(dir_key(&parts[..depth]));
        }
    }

    /// True when nothing changed.
    pub fn is_clean(&self) -> bool {
        self.dirty.is_empty()
    }

    /// Writes every changed directory, deepest first, through `write`
    /// (which stores the bytes as an object and returns its hash). Returns
    /// the new root and its totals.
    pub fn commit(
        mut self,
        write: &mut dyn FnMut(Vec<u8>) -> Result<Hash256>,
    ) -> Result<(Hash256, u64, u64)> {
        let mut order: Vec<String> = self.dirty.iter().cloned().collect();
        order.sort_by_key(|key| std::cmp::Reverse(key.matches('/').count()));
        let mut root = None;
        for key in order {
            let Some(tree) = self.dirs.get(&key) else {
                continue;
            };
            let (files, bytes) = tree.totals();
            let sha = write(tree.encode())?;
            if key.is_empty() {
                root = Some((sha, files, bytes));
                continue;
            }
            let (parent, name) = key.rsplit_once('/').expect("a non-root key has a '/'");
            self.dirs
                .get_mut(parent)
                .expect("parents are loaded")
                .children
                .insert(
                    name.to_string(),
                    Node::Dir {
                        tree: sha,
                        files,
                        bytes,
                    },
                );
        }
        match root {
            Some(root) => Ok(root),
            None => {
                let tree = &self.dirs[""];
                let (files, bytes) = tree.totals();
                Ok((write(tree.encode())?, files, bytes))
            }
        }
    }
}

/// Calls `visit` for every file under directory `tree` (at `prefix`), in
/// path order. Iterative: the depth of a tree never grows the stack.
pub fn walk_files(
    store: &Store,
    tree: &Hash256,
    prefix: &str,
    visit: &mut dyn FnMut(&str, &FileMeta) -> Result<()>,
) -> Result<()> {
    let mut stack = vec![(prefix.to_string(), load(store, tree)?)];
    // Children of each directory are visited in name order; subdirectories
    // are pushed in reverse so they pop in order.
    while let Some((dir, tree)) = stack.pop() {
        let mut subdirs = Vec::new();
        for (name, node) in &tree.children {
            let path = format!("{dir}/{name}");
            match node {
                Node::File(meta) => visit(&path, meta)?,
                Node::Dir { tree, .. } => subdirs.push((path, *tree)),
            }
        }
        for (path, sha) in subdirs.into_iter().rev() {
            stack.push((path, load(store, &sha)?));
        }
    }
    Ok(())
}

/// The tree objects reachable from `root` (itself included), each once,
/// skipping those in `seen`, and every file hash under them.
pub fn reach(
    store: &Store,
    root: &Hash256,
    seen: &mut std::collections::HashSet<Hash256>,
    files: &mut std::collections::HashSet<Hash256>,
) -> Result<()> {
    let mut stack = vec![*root];
    while let Some(sha) = stack.pop() {
        if !seen.insert(sha) {
            continue;
        }
        for node in load(store, &sha)?.children.values() {
            match node {
                Node::File(meta) => {
                    files.insert(meta.sha256);
                }
                Node::Dir { tree, .. } => stack.push(*tree),
            }
        }
    }
    Ok(())
}
