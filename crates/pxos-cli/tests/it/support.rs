use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh home directory (and scratch space) for one test.
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    pub fn new(name: &str) -> Home {
        let dir = std::env::temp_dir().join(format!("pxos-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("scratch")).unwrap();
        Home { dir }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.join("scratch").join(name)
    }

    /// A `pxos` command using this home.
    pub fn pxos(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pxos"));
        command
            .env("PXOS_HOME", self.home())
            .env_remove("PXOS_CRASH_AT")
            .env("NO_COLOR", "1");
        command
    }

    /// Runs `pxos ARGS`, returning the output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.pxos().args(args).output().unwrap()
    }

    /// Runs `pxos ARGS` and asserts exit code 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "pxos {args:?} failed ({:?}):\n{}{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs `pxos ARGS`, asserts exit code `code`; returns stderr.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(
            output.status.code(),
            Some(code),
            "pxos {args:?}: stderr {stderr}"
        );
        assert!(
            stderr.contains("pxos: error: ") || code == 1,
            "pxos {args:?}: {stderr}"
        );
        stderr
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The repository root (the project's own source tree).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Parses JSON Lines output.
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
        })
        .collect()
}

pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Edits the evolution log by hand: decodes its JSON, replaces `from` with
/// `to`, and writes it back as a valid pixel file (only the chain can tell).
pub fn hand_edit_log(home: &Home, from: &str, to: &str) {
    let path = home.home().join("log/evolution.png");
    let (_, json) =
        pxos_pixel::decode_from_slice(&std::fs::read(&path).unwrap(), &Default::default()).unwrap();
    let text = String::from_utf8(json).unwrap();
    assert!(text.contains(from), "the log does not contain {from:?}");
    let edited = text.replace(from, to);
    let options = pxos_pixel::EncodeOptions::kind(pxos_pixel::Kind::Table);
    std::fs::write(
        &path,
        pxos_pixel::encode_to_vec(edited.as_bytes(), &options).unwrap(),
    )
    .unwrap();
}
