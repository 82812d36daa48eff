//! The training corpus: text files of the pxOS repository itself, with a
//! held-out split chosen by path (`docs/formats/pxi-llm.md`, "Corpus").

use std::path::{Path, PathBuf};

use pxos_pixel::{EncodeOptions, Kind, Limits};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// File name endings that go into the corpus.
pub const EXTENSIONS: &[&str] = &["md", "rs", "pxasm", "yaml", "yml", "toml", "x86", "txt"];
/// Folders never walked (build output, version control, fuzz inputs, models).
pub const SKIP_DIRS: &[&str] = &[
    "target",
    ".git",
    "node_modules",
    "corpus",
    "artifacts",
    "hostile",
    "models",
    "golden",
];
/// Files larger than this are left out (generated tables, not prose or code).
pub const MAX_FILE: u64 = 256 << 10;
/// A file is held out when the first byte of its path's SHA-256 is below
/// this: about 10% of the files.
pub const HELD_OUT_BELOW: u8 = 26;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorpusFile {
    pub path: String,
    pub bytes: u64,
    pub held_out: bool,
}

/// The corpus's metadata (stored as the PXI's metadata).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorpusInfo {
    pub format: String,
    pub files: Vec<CorpusFile>,
    pub train_bytes: u64,
    pub val_bytes: u64,
}

/// Training text and held-out text.
#[derive(Clone, Debug)]
pub struct Corpus {
    pub info: CorpusInfo,
    pub train: Vec<u8>,
    pub val: Vec<u8>,
}

/// Every file to include under `root`, sorted, as (relative path, absolute path).
fn walk(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(e, &dir))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(e, &dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().map_err(|e| Error::io(e, &path))?;
            if kind.is_dir() {
                if !SKIP_DIRS.contains(&name.as_str()) && !name.starts_with('.') {
                    stack.push(path);
                }
            } else if kind.is_file() {
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                if EXTENSIONS.contains(&ext) {
                    let rel = path
                        .strip_prefix(root)
                        .unwrap_or(&path)
                        .to_string_lossy()
                        .replace('\\', "/");
                    out.push((rel, path));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Builds the corpus from the text files under `root`.
pub fn build(root: &Path) -> Result<Corpus> {
    let mut files = Vec::new();
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (rel, path) in walk(root)? {
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(e, &path))?;
        if meta.len() == 0 || meta.len() > MAX_FILE {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(e, &path))?;
        if std::str::from_utf8(&bytes).is_err() {
            continue;
        }
        let held_out = pxos_pixel::sha256(rel.as_bytes())[0] < HELD_OUT_BELOW;
        let target = if held_out { &mut val } else { &mut train };
        target.extend_from_slice(&bytes);
        if !bytes.ends_with(b"\n") {
            target.push(b'\n');
        }
        target.push(b'\n');
        files.push(CorpusFile {
            path: rel,
            bytes: bytes.len() as u64,
            held_out,
        });
    }
    if train.is_empty() || val.is_empty() {
        return Err(Error::bad_input(format!(
            "{} holds too little text for a corpus with a held-out split ({} files found)",
            root.display(),
            files.len()
        )));
    }
    Ok(Corpus {
        info: CorpusInfo {
            format: "pxos-corpus".into(),
            files,
            train_bytes: train.len() as u64,
            val_bytes: val.len() as u64,
        },
        train,
        val,
    })
}

impl Corpus {
    /// The corpus as a PXI of kind `text`: the metadata lists the files, the
    /// payload is the training text followed by the held-out text.
    pub fn to_png(&self) -> Result<Vec<u8>> {
        let mut payload = Vec::with_capacity(self.train.len() + self.val.len());
        payload.extend_from_slice(&self.train);
        payload.extend_from_slice(&self.val);
        let options = EncodeOptions {
            metadata: serde_json::to_vec(&self.info)
                .map_err(|e| Error::bad_input(e.to_string()))?,
            ..EncodeOptions::kind(Kind::Text)
        };
        Ok(pxos_pixel::encode_to_vec(&payload, &options)?)
    }

    /// Reads a corpus PXI.
    pub fn open(path: &Path, limits: &Limits) -> Result<Corpus> {
        let png = std::fs::read(path).map_err(|e| Error::io(e, path))?;
        Corpus::from_png(&png, limits).map_err(|e| e.with_path(path))
    }

    pub fn from_png(png: &[u8], limits: &Limits) -> Result<Corpus> {
        let (decoded, payload) = pxos_pixel::decode_from_slice(png, limits)?;
        let info: CorpusInfo = serde_json::from_slice(&decoded.metadata)
            .map_err(|e| Error::bad_input(format!("not a pxOS corpus: {e}")))?;
        if info.format != "pxos-corpus"
            || info.train_bytes.checked_add(info.val_bytes) != Some(payload.len() as u64)
        {
            return Err(Error::bad_input(
                "not a pxOS corpus (its metadata does not describe its payload)",
            ));
        }
        let split = info.train_bytes as usize;
        Ok(Corpus {
            train: payload[..split].to_vec(),
            val: payload[split..].to_vec(),
            info,
        })
    }
}

/// Held-out loss of the unigram and bigram baselines, in nats per byte,
/// on the windows [`crate::train::eval_windows`] scores.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Baselines {
    pub unigram: f64,
    pub bigram: f64,
    /// The bigram's add-alpha smoothing, picked to minimise its held-out loss
    /// (which favours the baseline).
    pub bigram_alpha: f64,
}

/// Scores byte-level unigram and bigram models fitted on `train` against the
/// targets of `windows` (each `(context token or None at a window start, target)`).
pub fn baselines(train: &[u8], targets: &[(Option<u8>, u8)]) -> Baselines {
    let mut uni = [0f64; 256];
    let mut bi = vec![0f64; 256 * 256];
    for &b in train {
        uni[b as usize] += 1.0;
    }
    for w in train.windows(2) {
        bi[w[0] as usize * 256 + w[1] as usize] += 1.0;
    }
    let total: f64 = uni.iter().sum();
    let p_uni = |b: u8| (uni[b as usize] + 1.0) / (total + 256.0);
    let unigram = -targets.iter().map(|(_, t)| p_uni(*t).ln()).sum::<f64>() / targets.len() as f64;
    let mut row_totals = [0f64; 256];
    for (prev, row) in bi.chunks_exact(256).enumerate() {
        row_totals[prev] = row.iter().sum();
    }
    let mut best = (f64::INFINITY, 1.0);
    for alpha in [1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001] {
        let loss = -targets
            .iter()
            .map(|&(prev, t)| match prev {
                // A window's first target follows the BOS token: no byte context.
                None => p_uni(t).ln(),
                Some(p) => {
                    let p = p as usize;
                    ((bi[p * 256 + t as usize] + alpha) / (row_totals[p] + 256.0 * alpha)).ln()
                }
            })
            .sum::<f64>()
            / targets.len() as f64;
        if loss < best.0 {
            best = (loss, alpha);
        }
    }
    Baselines {
        unigram,
        bigram: best.0,
        bigram_alpha: best.1,
    }
}
