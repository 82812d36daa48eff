//! The remotes a user added (`HOME/remotes.json`) and their credentials
//! (the environment, or `HOME/credentials.json` with mode 0600). Nothing
//! here ever prints a secret: [`Credentials`] has no `Display` and its
//! `Debug` hides the secret.

use std::fmt;
use std::path::{Path, PathBuf};

use pxos_pixel::durable;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const REMOTES_FILE: &str = "remotes.json";
pub const CREDENTIALS_FILE: &str = "credentials.json";
const REMOTES_FORMAT: &str = "pxos-remotes";
const CREDENTIALS_FORMAT: &str = "pxos-credentials";

/// One remote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    pub name: String,
    /// `s3://BUCKET/PREFIX`, or `https://HOST/PATH` (read-only).
    pub url: String,
    /// The S3 endpoint (`http://127.0.0.1:3900`); none means AWS itself.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub added: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemotesFile {
    format: String,
    version: u32,
    remotes: Vec<RemoteConfig>,
}

/// Where a remote's URL points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    S3 { bucket: String, prefix: String },
    Http { base: String },
}

/// Parses a remote URL, refusing anything else with a message that names the problem.
pub fn parse_url(url: &str) -> Result<Location> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            return Err(Error::Usage(format!(
                "{url}: the bucket name must be 3-63 characters of a-z, 0-9, '-' and '.'"
            )));
        }
        let prefix = prefix.trim_end_matches('/');
        if prefix.split('/').any(|part| part == ".." || part == ".")
            || prefix.contains("//")
            || prefix.chars().any(|c| c.is_control() || c == '\\')
        {
            return Err(Error::Usage(format!(
                "{url}: the prefix must be plain path segments"
            )));
        }
        return Ok(Location::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        });
    }
    if let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    {
        let host = rest.split('/').next().unwrap_or("");
        if host.is_empty() || host.contains('@') || url.contains(['?', '#']) {
            return Err(Error::Usage(format!(
                "{url}: an http(s) remote is a host and a path, with no user, query or fragment"
            )));
        }
        return Ok(Location::Http {
            base: url.trim_end_matches('/').to_string(),
        });
    }
    Err(Error::Usage(format!(
        "{url}: a remote URL starts with s3://, https:// or http://"
    )))
}

/// Checks a remote's name: what a user types, and what a folder may be called.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{name:?}: a remote's name is 1-64 characters of a-z, A-Z, 0-9, '-' and '_'"
        )))
    }
}

/// The remotes of one home.
#[derive(Clone, Debug)]
pub struct Remotes {
    home: PathBuf,
    pub list: Vec<RemoteConfig>,
}

impl Remotes {
    /// Reads `HOME/remotes.json` (none yet: no remotes).
    pub fn load(home: &Path) -> Result<Remotes> {
        let path = home.join(REMOTES_FILE);
        let list = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: RemotesFile = serde_json::from_slice(&bytes).map_err(|err| {
                    Error::BadInput(format!("{}: not a remotes file: {err}", path.display()))
                })?;
                if file.format != REMOTES_FORMAT || file.version != 1 {
                    return Err(Error::BadInput(format!(
                        "{}: not a pxOS remotes file (version 1)",
                        path.display()
                    )));
                }
                file.remotes
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(Error::io(err, &path)),
        };
        Ok(Remotes {
            home: home.to_path_buf(),
            list,
        })
    }

    pub fn get(&self, name: &str) -> Result<&RemoteConfig> {
        self.list.iter().find(|r| r.name == name).ok_or_else(|| {
            Error::NotFound(format!(
                "no remote named {name:?} (`pxos remote list` shows them; `pxos remote add` adds one)"
            ))
        })
    }

    /// The remote to use when a command names none: the only one, or `origin`.
    pub fn default_name(&self) -> Result<String> {
        match self.list.as_slice() {
            [] => Err(Error::Usage(
                "no remote is configured: add one with `pxos remote add NAME s3://BUCKET/PREFIX --endpoint URL`".into(),
            )),
            [only] => Ok(only.name.clone()),
            list => list
                .iter()
                .find(|r| r.name == "origin")
                .map(|r| r.name.clone())
                .ok_or_else(|| {
                    Error::Usage("several remotes are configured and none is `origin`: name one".into())
                }),
        }
    }

    /// The remote whose URL holds `url` (a URL a command was given), if any.
    pub fn covering(&self, url: &str) -> Option<&RemoteConfig> {
        self.list.iter().find(|r| {
            let base = r.url.trim_end_matches('/');
            url == base
                || url
                    .strip_prefix(base)
                    .is_some_and(|rest| rest.starts_with('/'))
                // A bucket-wide remote (`s3://bucket`) covers every key in it.
                || (base.matches('/').count() == 2 && url.starts_with(&format!("{base}/")))
        })
    }

    pub fn add(&mut self, config: RemoteConfig) -> Result<()> {
        check_name(&config.name)?;
        parse_url(&config.url)?;
        if self.list.iter().any(|r| r.name == config.name) {
            return Err(Error::Refused(format!(
                "a remote named {:?} exists (`pxos remote remove {}` first)",
                config.name, config.name
            )));
        }
        self.list.push(config);
        self.save()
    }

    pub fn remove(&mut self, name: &str) -> Result<RemoteConfig> {
        let index = self
            .list
            .iter()
            .position(|r| r.name == name)
            .ok_or_else(|| Error::NotFound(format!("no remote named {name:?}")))?;
        let removed = self.list.remove(index);
        self.save()?;
        Ok(removed)
    }

    fn save(&self) -> Result<()> {
        let path = self.home.join(REMOTES_FILE);
        let file = RemotesFile {
            format: REMOTES_FORMAT.into(),
            version: 1,
            remotes: self.list.clone(),
        };
        let mut json = serde_json::to_vec_pretty(&file).expect("remotes serialize");
        json.push(b'\n');
        std::fs::create_dir_all(&self.home).map_err(|err| Error::io(err, &self.home))?;
        durable::write_atomic(&path, &json, durable::label::REMOTE_CONFIG)
            .map_err(|err| Error::io(err, &path))
    }
}

/// An access key. The secret never reaches a log, an error or `--json`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub key_id: String,
    pub secret: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("key_id", &self.key_id)
            .field("secret", &"(hidden)")
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    format: String,
    version: u32,
    remotes: std::collections::BTreeMap<String, Credentials>,
}

/// Where credentials came from (for `remote list`; never the secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialSource {
    Environment,
    File,
    None,
}

fn env_pair(id: &str, secret: &str) -> Option<Credentials> {
    let key_id = std::env::var(id).ok().filter(|v| !v.is_empty())?;
    let secret = std::env::var(secret).ok().filter(|v| !v.is_empty())?;
    Some(Credentials { key_id, secret })
}

fn read_credentials_file(home: &Path) -> Result<Option<CredentialsFile>> {
    let path = home.join(CREDENTIALS_FILE);
    let meta = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::io(err, &path)),
    };
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Refused(format!(
            "{} can be read by others (mode {mode:o}); it holds secrets: `chmod 600` it",
            path.display()
        )));
    }
    let bytes = std::fs::read(&path).map_err(|err| Error::io(err, &path))?;
    // The parse error is not shown: it could quote a secret.
    let file: CredentialsFile = serde_json::from_slice(&bytes)
        .map_err(|_| Error::BadInput(format!("{}: not a pxOS credentials file", path.display())))?;
    if file.format != CREDENTIALS_FORMAT || file.version != 1 {
        return Err(Error::BadInput(format!(
            "{}: not a pxOS credentials file (version 1)",
            path.display()
        )));
    }
    Ok(Some(file))
}

/// The credentials for remote `name`, and where they came from: the most
/// specific first. `PXOS_REMOTE_<NAME>_KEY_ID` and `..._SECRET` (this remote,
/// this run), then the key stored for it in `credentials.json`, then
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (any remote).
pub fn credentials(home: &Path, name: &str) -> Result<(Option<Credentials>, CredentialSource)> {
    let upper = name.to_ascii_uppercase().replace('-', "_");
    if let Some(found) = env_pair(
        &format!("PXOS_REMOTE_{upper}_KEY_ID"),
        &format!("PXOS_REMOTE_{upper}_SECRET"),
    ) {
        return Ok((Some(found), CredentialSource::Environment));
    }
    if let Some(found) = read_credentials_file(home)?.and_then(|mut f| f.remotes.remove(name)) {
        return Ok((Some(found), CredentialSource::File));
    }
    Ok(
        match env_pair("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") {
            Some(found) => (Some(found), CredentialSource::Environment),
            None => (None, CredentialSource::None),
        },
    )
}

/// Stores credentials for `name` in `HOME/credentials.json`, created with mode 0600.
pub fn store_credentials(home: &Path, name: &str, credentials: Credentials) -> Result<()> {
    let mut file = read_credentials_file(home)?.unwrap_or(CredentialsFile {
        format: CREDENTIALS_FORMAT.into(),
        version: 1,
        remotes: Default::default(),
    });
    file.remotes.insert(name.to_string(), credentials);
    write_credentials(home, &file)
}

/// Forgets `name`'s stored credentials.
pub fn forget_credentials(home: &Path, name: &str) -> Result<()> {
    if let Some(mut file) = read_credentials_file(home)?
        && file.remotes.remove(name).is_some()
    {
        write_credentials(home, &file)?;
    }
    Ok(())
}

fn write_credentials(home: &Path, file: &CredentialsFile) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let path = home.join(CREDENTIALS_FILE);
    let json = serde_json::to_vec_pretty(file).expect("credentials serialize");
    let written = (|| -> std::io::Result<()> {
        let mut out = durable::AtomicFile::create(&path, durable::label::REMOTE_CREDENTIALS)?;
        // 0600 before a byte of the secret is written.
        out.file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        out.file().write_all(&json)?;
        out.after_write();
        out.commit()
    })();
    written.map_err(|err| Error::io(err, &path))
}
