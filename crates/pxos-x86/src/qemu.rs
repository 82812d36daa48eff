//! Booting a sector in QEMU.
//!
//! [`Machine::boot_headless`] starts `qemu-system-i386` with no display and its QMP
//! monitor on a Unix socket. Keys are typed with the monitor's `sendkey` command and the
//! screen is read back from the VGA text buffer at 0xB8000 with `xp`, so what a test sees
//! is what the emulated PC shows. [`run_interactive`] starts QEMU for a person.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

/// The emulator the project uses.
pub const QEMU: &str = "qemu-system-i386";
/// A 1.44 MB floppy: images are padded to this size so every BIOS sees a standard disk.
const FLOPPY_SIZE: usize = 1_474_560;
/// VGA text mode: 80 columns, 25 rows, a character byte and an attribute byte per cell.
pub const COLUMNS: usize = 80;
pub const ROWS: usize = 25;
const VGA_TEXT: u32 = 0xB8000;
/// BIOS data area: cursor position of page 0 (column, row).
const BDA_CURSOR: u32 = 0x450;

/// Why QEMU could not do what was asked.
#[derive(Debug)]
pub enum QemuError {
    /// The emulator is not installed (or not where `PXOS_QEMU` says).
    NotFound(String),
    /// The image cannot be used as a boot disk.
    Image(String),
    /// QEMU failed to start, died, or its monitor answered with an error.
    Failed(String),
    /// A key name or key script was not understood.
    Keys(String),
    /// The screen did not reach the expected state in time.
    Timeout {
        waited: Duration,
        screen: Box<Screen>,
        wanted: String,
    },
}

impl std::fmt::Display for QemuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QemuError::NotFound(message)
            | QemuError::Image(message)
            | QemuError::Failed(message)
            | QemuError::Keys(message) => f.write_str(message),
            QemuError::Timeout {
                waited,
                screen,
                wanted,
            } => write!(
                f,
                "after {:.1} s the screen still does not show {wanted}; it shows:\n{}",
                waited.as_secs_f64(),
                screen.text()
            ),
        }
    }
}

impl std::error::Error for QemuError {}

fn failed(message: impl Into<String>) -> QemuError {
    QemuError::Failed(message.into())
}

/// Finds the emulator: `PXOS_QEMU` if set, else `qemu-system-i386` on the PATH.
pub fn find_qemu() -> Result<PathBuf, QemuError> {
    if let Some(path) = std::env::var_os("PXOS_QEMU") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(QemuError::NotFound(format!(
                "PXOS_QEMU names {}, which does not exist",
                path.display()
            )))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(QEMU))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            QemuError::NotFound(format!(
                "{QEMU} is not installed; install Debian's qemu-system-x86 package \
                 (`cargo xtask setup` does) or point PXOS_QEMU at the emulator"
            ))
        })
}

/// The VGA text screen: 80x25 cells and the BIOS cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Screen {
    /// Cells row by row: character in the low byte, attribute in the high byte.
    #[serde(skip)]
    pub cells: Vec<u16>,
    /// Cursor as (row, column).
    pub cursor: (u8, u8),
}

impl Screen {
    /// Row `row` as text, trailing blanks removed. Bytes outside printable ASCII show as `.`.
    pub fn row(&self, row: usize) -> String {
        let line: String = self.cells[row * COLUMNS..(row + 1) * COLUMNS]
            .iter()
            .map(|cell| match (cell & 0xFF) as u8 {
                0 => ' ',
                b @ 0x20..=0x7E => b as char,
                _ => '.',
            })
            .collect();
        line.trim_end().to_string()
    }

    /// All rows.
    pub fn rows(&self) -> Vec<String> {
        (0..ROWS).map(|r| self.row(r)).collect()
    }

    /// The screen as text, trailing blank rows removed.
    pub fn text(&self) -> String {
        let mut rows = self.rows();
        while rows.last().is_some_and(String::is_empty) {
            rows.pop();
        }
        rows.join("\n")
    }

    /// The attribute byte of a cell.
    pub fn attribute(&self, row: usize, column: usize) -> u8 {
        (self.cells[row * COLUMNS + column] >> 8) as u8
    }
}

/// A running, headless QEMU with its monitor connected.
pub struct Machine {
    child: Child,
    monitor: BufReader<UnixStream>,
    dir: ScratchDir,
}

/// Copies `image` to a fresh floppy image in `dir`, padded to 1.44 MB.
fn floppy(image: &[u8], dir: &Path) -> Result<PathBuf, QemuError> {
    if image.len() < 512 {
        return Err(QemuError::Image(format!(
            "the image is {} bytes; a boot disk needs at least one 512-byte sector",
            image.len()
        )));
    }
    if image.len() > FLOPPY_SIZE {
        return Err(QemuError::Image(format!(
            "the image is {} bytes, more than a 1.44 MB floppy holds",
            image.len()
        )));
    }
    if image[510..512] != crate::build::SIGNATURE {
        return Err(QemuError::Image(format!(
            "the first sector ends in {:02X} {:02X}, not the boot signature 55 AA; a BIOS will not boot it",
            image[510], image[511]
        )));
    }
    let mut disk = image.to_vec();
    disk.resize(FLOPPY_SIZE, 0);
    let path = dir.join("floppy.img");
    std::fs::write(&path, disk)
        .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// What happens to a QEMU scratch folder and the QEMU process that uses it,
/// for a caller that must clean up if a signal ends it first.
#[derive(Clone, Copy, Debug)]
pub enum ScratchEvent<'a> {
    /// The folder was created.
    Created(&'a Path),
    /// QEMU was started on it, with this process id.
    Running(&'a Path, u32),
    /// QEMU (if any) has been stopped and the folder is about to be removed.
    Removed(&'a Path),
}

/// Told of every [`ScratchEvent`] (set once, by the CLI).
pub type ScratchObserver = fn(ScratchEvent<'_>);

static OBSERVER: std::sync::Mutex<Option<ScratchObserver>> = std::sync::Mutex::new(None);

/// Sets who is told of scratch folders and QEMU processes.
pub fn set_scratch_observer(observer: ScratchObserver) {
    *OBSERVER.lock().unwrap_or_else(|e| e.into_inner()) = Some(observer);
}

fn tell(event: ScratchEvent<'_>) {
    let observer = *OBSERVER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(observer) = observer {
        observer(event);
    }
}

/// A scratch folder, removed when dropped (on every error path too).
struct ScratchDir(PathBuf);

impl std::ops::Deref for ScratchDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        tell(ScratchEvent::Removed(&self.0));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> Result<ScratchDir, QemuError> {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Unix socket paths are limited to about 100 bytes: keep this short.
    let dir = std::env::temp_dir().join(format!("pxos-qemu-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
    tell(ScratchEvent::Created(&dir));
    Ok(ScratchDir(dir))
}

impl Machine {
    /// Boots `image` (a boot sector, or a disk image up to 1.44 MB) from the floppy drive
    /// with no display, and connects to the monitor.
    pub fn boot_headless(image: &[u8]) -> Result<Machine, QemuError> {
        let qemu = find_qemu()?;
        let dir = temp_dir()?;
        let disk = floppy(image, &dir)?;
        let socket = dir.join("qmp.sock");
        let log = std::fs::File::create(dir.join("qemu.log"))
            .map_err(|e| failed(format!("cannot create the QEMU log: {e}")))?;
        let mut child = Command::new(&qemu)
            .args([
                "-nodefaults",
                "-machine",
                "pc",
                "-m",
                "16",
                "-vga",
                "std",
                "-display",
                "none",
            ])
            .args(["-no-reboot", "-boot", "a"])
            .arg("-drive")
            .arg(format!("file={},format=raw,if=floppy", disk.display()))
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", socket.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| failed(e.to_string()))?)
            .stderr(log)
            .spawn()
            .map_err(|e| failed(format!("cannot start {}: {e}", qemu.display())))?;
        tell(ScratchEvent::Running(&dir, child.id()));
        let monitor = match connect(&socket, &dir) {
            Ok(monitor) => monitor,
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err);
            }
        };
        let mut machine = Machine {
            child,
            monitor: BufReader::new(monitor),
            dir,
        };
        // The stream is connected; QMP sends a greeting, then wants capabilities negotiated.
        machine.read_reply(true)?;
        machine.command("qmp_capabilities", json!({}))?;
        Ok(machine)
    }

    fn read_reply(&mut self, greeting: bool) -> Result<Value, QemuError> {
        loop {
            let mut line = String::new();
            let read = self
                .monitor
                .read_line(&mut line)
                .map_err(|e| failed(format!("the QEMU monitor stopped answering: {e}")))?;
            if read == 0 {
                return Err(failed(format!("QEMU exited{}", self.log_tail())));
            }
            let value: Value = serde_json::from_str(&line).map_err(|e| {
                failed(format!(
                    "the QEMU monitor sent something that is not JSON ({e}): {line}"
                ))
            })?;
            if greeting && value.get("QMP").is_some() {
                return Ok(value);
            }
            if let Some(error) = value.get("error") {
                return Err(failed(format!(
                    "the QEMU monitor refused a command: {error}"
                )));
            }
            if let Some(result) = value.get("return") {
                return Ok(result.clone());
            }
            // Anything else is an asynchronous event; keep reading.
        }
    }

    fn command(&mut self, execute: &str, arguments: Value) -> Result<Value, QemuError> {
        let request = json!({"execute": execute, "arguments": arguments});
        let stream = self.monitor.get_mut();
        writeln!(stream, "{request}")
            .map_err(|e| failed(format!("cannot talk to the QEMU monitor: {e}")))?;
        self.read_reply(false)
    }

    /// Runs a human monitor command (`sendkey`, `xp`, ...) and returns its output.
    pub fn monitor(&mut self, command_line: &str) -> Result<String, QemuError> {
        let result = self.command(
            "human-monitor-command",
            json!({"command-line": command_line}),
        )?;
        Ok(result.as_str().unwrap_or_default().to_string())
    }

    /// Reads `count` 16-bit words of guest physical memory.
    fn read_words(&mut self, address: u32, count: usize) -> Result<Vec<u16>, QemuError> {
        let text = self.monitor(&format!("xp /{count}hx 0x{address:x}"))?;
        let mut words = Vec::with_capacity(count);
        for line in text.lines() {
            let Some((_, values)) = line.split_once(':') else {
                continue;
            };
            for value in values.split_whitespace() {
                let digits = value.trim_start_matches("0x");
                let word = u16::from_str_radix(digits, 16).map_err(|_| {
                    failed(format!("cannot read the monitor's memory dump: {line}"))
                })?;
                words.push(word);
            }
        }
        if words.len() != count {
            return Err(failed(format!(
                "asked the monitor for {count} words at 0x{address:X}, got {}",
                words.len()
            )));
        }
        Ok(words)
    }

    /// The VGA text screen and the BIOS cursor, as the guest has them now.
    pub fn screen(&mut self) -> Result<Screen, QemuError> {
        let cells = self.read_words(VGA_TEXT, COLUMNS * ROWS)?;
        let cursor = self.read_words(BDA_CURSOR, 1)?[0];
        Ok(Screen {
            cells,
            cursor: ((cursor >> 8) as u8, cursor as u8),
        })
    }

    /// Presses and releases one key, named as QEMU's `sendkey` names keys (`a`, `ret`,
    /// `backspace`, `shift-a`, ...).
    pub fn send_key(&mut self, key: &str) -> Result<(), QemuError> {
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(QemuError::Keys(format!("{key:?} is not a key name")));
        }
        let answer = self.monitor(&format!("sendkey {key} 30"))?;
        if !answer.trim().is_empty() {
            return Err(QemuError::Keys(format!(
                "QEMU did not take the key {key:?}: {}",
                answer.trim()
            )));
        }
        // The BIOS keyboard buffer holds 15 keys; give the guest time to take each one.
        std::thread::sleep(Duration::from_millis(40));
        Ok(())
    }

    /// Types each key of `keys` (see [`parse_keys`]).
    pub fn type_keys(&mut self, keys: &[String]) -> Result<(), QemuError> {
        for key in keys {
            self.send_key(key)?;
        }
        Ok(())
    }

    /// Polls the screen until `done` holds, for at most `timeout`.
    pub fn wait_for(
        &mut self,
        wanted: &str,
        timeout: Duration,
        done: impl Fn(&Screen) -> bool,
    ) -> Result<Screen, QemuError> {
        let started = Instant::now();
        loop {
            let screen = self.screen()?;
            if done(&screen) {
                return Ok(screen);
            }
            if started.elapsed() > timeout {
                return Err(QemuError::Timeout {
                    waited: started.elapsed(),
                    screen: Box::new(screen),
                    wanted: wanted.to_string(),
                });
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(failed(format!("QEMU exited ({status}){}", self.log_tail())));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the screen and cursor stop changing for `quiet`, at most `timeout`.
    pub fn settle(&mut self, quiet: Duration, timeout: Duration) -> Result<Screen, QemuError> {
        let started = Instant::now();
        let mut last = self.screen()?;
        let mut since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let screen = self.screen()?;
            if screen != last {
                last = screen;
                since = Instant::now();
            } else if since.elapsed() >= quiet || started.elapsed() > timeout {
                return Ok(screen);
            }
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("qemu.log")).unwrap_or_default();
        let log = log.trim();
        if log.is_empty() {
            String::new()
        } else {
            format!(": {log}")
        }
    }

    /// Stops the emulator.
    pub fn quit(mut self) {
        let _ = self.command("quit", json!({}));
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `dir` is removed as it drops, after the child has gone.
    }
}

fn connect(socket: &Path, dir: &Path) -> Result<UnixStream, QemuError> {
    let started = Instant::now();
    loop {
        match UnixStream::connect(socket) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .map_err(|e| failed(e.to_string()))?;
                return Ok(stream);
            }
            Err(err) if started.elapsed() < Duration::from_secs(20) => {
                let _ = err;
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(err) => {
                let log = std::fs::read_to_string(dir.join("qemu.log")).unwrap_or_default();
                return Err(failed(format!(
                    "QEMU's monitor did not come up at {}: {err}; QEMU said: {}",
                    socket.display(),
                    log.trim()
                )));
            }
        }
    }
}

/// Turns a key script into `sendkey` names. Characters stand for themselves (shifted keys
/// where needed); `\n` or `\r` is Enter, `\b` Backspace, `\t` Tab, `\\` a backslash, and
/// `{name}` any QEMU key name, such as `{esc}` or `{ctrl-c}`.
pub fn parse_keys(script: &str) -> Result<Vec<String>, QemuError> {
    let mut keys = Vec::new();
    let mut chars = script.chars();
    while let Some(c) = chars.next() {
        let key = match c {
            '\\' => match chars.next() {
                Some('n' | 'r') => "ret".to_string(),
                Some('b') => "backspace".to_string(),
                Some('t') => "tab".to_string(),
                Some('\\') => "backslash".to_string(),
                other => {
                    return Err(QemuError::Keys(format!(
                        "unknown escape \\{} in the keys (known: \\n \\r \\b \\t \\\\)",
                        other.map(String::from).unwrap_or_default()
                    )));
                }
            },
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(QemuError::Keys(format!("{{{name}}} is not a key name")));
                }
                name
            }
            '\n' | '\r' => "ret".to_string(),
            '\u{8}' => "backspace".to_string(),
            '\t' => "tab".to_string(),
            other => char_key(other).ok_or_else(|| {
                QemuError::Keys(format!(
                    "no key types {other:?}; use {{name}} for special keys"
                ))
            })?,
        };
        keys.push(key);
    }
    Ok(keys)
}

fn char_key(c: char) -> Option<String> {
    const PLAIN: &[(char, &str)] = &[
        (' ', "spc"),
        ('-', "minus"),
        ('=', "equal"),
        ('[', "bracket_left"),
        (']', "bracket_right"),
        (';', "semicolon"),
        ('\'', "apostrophe"),
        ('`', "grave_accent"),
        (',', "comma"),
        ('.', "dot"),
        ('/', "slash"),
    ];
    const SHIFTED: &[(char, &str)] = &[
        ('!', "1"),
        ('@', "2"),
        ('#', "3"),
        ('$', "4"),
        ('%', "5"),
        ('^', "6"),
        ('&', "7"),
        ('*', "8"),
        ('(', "9"),
        (')', "0"),
        ('_', "minus"),
        ('+', "equal"),
        ('{', "bracket_left"),
        ('}', "bracket_right"),
        (':', "semicolon"),
        ('"', "apostrophe"),
        ('~', "grave_accent"),
        ('<', "comma"),
        ('>', "dot"),
        ('?', "slash"),
        ('|', "backslash"),
    ];
    if c.is_ascii_lowercase() || c.is_ascii_digit() {
        return Some(c.to_string());
    }
    if c.is_ascii_uppercase() {
        return Some(format!("shift-{}", c.to_ascii_lowercase()));
    }
    if let Some((_, name)) = PLAIN.iter().find(|(k, _)| *k == c) {
        return Some((*name).to_string());
    }
    SHIFTED
        .iter()
        .find(|(k, _)| *k == c)
        .map(|(_, name)| format!("shift-{name}"))
}

/// How a person sees the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// QEMU's default window (GTK or SDL).
    Window,
    /// Text mode in this terminal (`-display curses`); quit with Esc then 2, `quit`.
    Curses,
}

/// The command line that boots `disk` for a person.
pub fn interactive_command(qemu: &Path, disk: &Path, display: Display) -> Command {
    let mut command = Command::new(qemu);
    command
        .args(["-machine", "pc", "-m", "16", "-boot", "a", "-no-reboot"])
        .arg("-drive")
        .arg(format!("file={},format=raw,if=floppy", disk.display()));
    if display == Display::Curses {
        command.args(["-display", "curses"]);
    }
    command
}

/// Boots `image` for a person and waits until QEMU is closed. The image is copied to a
/// temporary floppy, so nothing the guest does reaches the original file.
pub fn run_interactive(
    image: &[u8],
    display: Display,
) -> Result<std::process::ExitStatus, QemuError> {
    let qemu = find_qemu()?;
    let dir = temp_dir()?;
    let disk = floppy(image, &dir)?;
    interactive_command(&qemu, &disk, display)
        .status()
        .map_err(|e| failed(format!("cannot start {}: {e}", qemu.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            parse_keys("hI 1!\\n\\b{esc}").unwrap(),
            [
                "h",
                "shift-i",
                "spc",
                "1",
                "shift-1",
                "ret",
                "backspace",
                "esc"
            ]
        );
        assert!(parse_keys("é").is_err());
        assert!(parse_keys("\\q").is_err());
        assert!(parse_keys("{bad key}").is_err());
    }

    #[test]
    fn floppy_refuses_non_boot_images() {
        let dir = temp_dir().unwrap();
        assert!(matches!(floppy(&[0; 100], &dir), Err(QemuError::Image(_))));
        assert!(matches!(floppy(&[0; 512], &dir), Err(QemuError::Image(_))));
        assert!(matches!(
            floppy(&vec![0; FLOPPY_SIZE + 1], &dir),
            Err(QemuError::Image(_))
        ));
        let mut sector = [0u8; 512];
        sector[510..].copy_from_slice(&[0x55, 0xAA]);
        let path = floppy(&sector, &dir).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), FLOPPY_SIZE as u64);
        let kept = dir.to_path_buf();
        drop(dir);
        assert!(!kept.exists(), "the scratch folder is removed when dropped");
    }
}
