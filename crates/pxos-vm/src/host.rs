//! The standard syscall host.
//!
//! [`StdHost`] implements every syscall of [`crate::isa::syscall`] over a
//! [`Storage`] (in memory by default; `pxos-boot` plugs in PixelFS). It keeps
//! what programs print, warnings for failing syscalls (which return 0 in R0
//! and let the program go on), and the kernel change a program asked for
//! (SELF_MODIFY or VERSION_SWITCH), which the host applies after HALT.

use std::collections::{BTreeMap, BTreeSet};

use crate::isa::syscall;
use crate::machine::{Host, Machine};
use crate::trap::Trap;

/// Where files and modules come from.
pub trait Storage {
    /// A file's bytes by path.
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, String>;
    /// Writes a file by path.
    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), String>;
    /// A program module's words by id (a registered number or a PixelFS file id).
    fn module(&mut self, id: u32) -> Result<Vec<u32>, String>;
}

/// Files and modules held in memory.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    pub files: BTreeMap<String, Vec<u8>>,
    pub modules: BTreeMap<u32, Vec<u32>>,
}

impl Storage for MemoryStorage {
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| format!("no file {path}"))
    }

    fn write_file(&mut self, path: &str, bytes: &[u8]) -> Result<(), String> {
        self.files.insert(path.to_string(), bytes.to_vec());
        Ok(())
    }

    fn module(&mut self, id: u32) -> Result<Vec<u32>, String> {
        self.modules
            .get(&id)
            .cloned()
            .ok_or_else(|| format!("no module with id {id}"))
    }
}

/// A kernel change requested by the running program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelRequest {
    /// SELF_MODIFY: replace the kernel with this module (id, words).
    Replace { id: u32, words: Vec<u32> },
    /// VERSION_SWITCH: make this existing version current.
    Switch { version: u32 },
}

/// The default message table (ids used by the seed kernels).
pub fn default_messages() -> BTreeMap<u32, String> {
    [
        (1, "PXVM booting..."),
        (2, "PXVM ready"),
        (3, "Kernel loaded"),
        (4, "Kernel init done"),
        (5, "Health check passed"),
        (6, "Health check failed"),
    ]
    .into_iter()
    .map(|(id, text)| (id, text.to_string()))
    .collect()
}

/// Longest string PRINT and file paths read from memory.
pub const MAX_STRING: usize = 4096;
/// Largest file FILE_READ/FILE_WRITE moves in one call.
pub const MAX_FILE_BYTES: u32 = 16 << 20;

/// The standard host.
pub struct StdHost {
    /// Message id -> text, for PRINT.
    pub messages: BTreeMap<u32, String>,
    /// Files and modules.
    pub storage: Box<dyn Storage>,
    /// Known kernel version ids, for VERSION_LIST.
    pub versions: Vec<u32>,
    /// The running kernel's version id, for VERSION_GET.
    pub current_version: u32,
    /// The kernel change requested, applied by the caller after HALT.
    pub request: Option<KernelRequest>,
    /// What the program printed, one entry per PRINT.
    pub output: Vec<String>,
    /// Warnings from failing or refused syscalls.
    pub warnings: Vec<String>,
    /// Seconds reported by TIME (fixed for determinism; set by the caller).
    pub time: u64,
    /// When set, only these syscalls are allowed; others fail with a warning.
    pub allowed: Option<BTreeSet<u16>>,
    /// Echo PRINT output to stdout as it happens.
    pub echo: bool,
}

impl Default for StdHost {
    fn default() -> StdHost {
        StdHost::new(Box::new(MemoryStorage::default()))
    }
}

impl StdHost {
    /// A host over `storage` with the default message table.
    pub fn new(storage: Box<dyn Storage>) -> StdHost {
        StdHost {
            messages: default_messages(),
            storage,
            versions: Vec::new(),
            current_version: 0,
            request: None,
            output: Vec::new(),
            warnings: Vec::new(),
            time: 0,
            allowed: None,
            echo: false,
        }
    }

    fn fail(&mut self, machine: &mut Machine, number: u16, why: String) {
        let name = syscall::name(number).unwrap_or("unknown");
        self.warnings.push(format!(
            "syscall {number} ({name}) at pc {} failed: {why}",
            machine.pc.wrapping_sub(1)
        ));
        machine.regs[0] = 0;
    }

    fn print(&mut self, text: String) {
        if self.echo {
            println!("{text}");
        }
        self.output.push(text);
    }
}

impl Host for StdHost {
    fn syscall(&mut self, number: u16, machine: &mut Machine) -> Result<bool, Trap> {
        if let Some(allowed) = &self.allowed
            && !allowed.contains(&number)
        {
            self.fail(machine, number, "not allowed here (sandbox)".into());
            return Ok(false);
        }
        let r = machine.regs;
        match number {
            syscall::PRINT => {
                let text = if r[2] == 1 {
                    match machine.read_string(r[1], MAX_STRING) {
                        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                        None => {
                            self.fail(
                                machine,
                                number,
                                format!("string at {} runs off memory", r[1]),
                            );
                            return Ok(false);
                        }
                    }
                } else {
                    match self.messages.get(&r[1]) {
                        Some(text) => text.clone(),
                        None => {
                            self.fail(machine, number, format!("no message with id {}", r[1]));
                            return Ok(false);
                        }
                    }
                };
                self.print(text);
                machine.regs[0] = 1;
            }
            syscall::RECT => {
                let painted =
                    machine
                        .screen_mut()
                        .fill_rect(r[1], r[2], r[3], r[4], (r[5] & 15) as u8);
                machine.regs[0] = u32::from(painted > 0);
            }
            syscall::VERSION_GET => machine.regs[0] = self.current_version,
            syscall::VERSION_LIST => {
                let count = (r[2] as usize).min(self.versions.len());
                for (index, version) in self.versions.iter().take(count).enumerate() {
                    if !machine.write_word(r[1].wrapping_add(index as u32), *version) {
                        self.fail(
                            machine,
                            number,
                            format!("buffer at {} runs off memory", r[1]),
                        );
                        return Ok(false);
                    }
                }
                machine.regs[0] = count as u32;
            }
            syscall::VERSION_SWITCH => {
                if self.versions.contains(&r[1]) {
                    self.request = Some(KernelRequest::Switch { version: r[1] });
                    machine.regs[0] = 1;
                } else {
                    self.fail(machine, number, format!("no kernel version {}", r[1]));
                }
            }
            syscall::SELF_MODIFY => match self.storage.module(r[1]) {
                Ok(words) if !words.is_empty() => {
                    self.request = Some(KernelRequest::Replace { id: r[1], words });
                    machine.regs[0] = 1;
                }
                Ok(_) => self.fail(machine, number, format!("module {} is empty", r[1])),
                Err(why) => self.fail(machine, number, why),
            },
            syscall::BLOB => match self.storage.module(r[1]) {
                Ok(words) => {
                    let count = words.len().min(r[3] as usize);
                    for (index, word) in words.iter().take(count).enumerate() {
                        if !machine.write_word(r[2].wrapping_add(index as u32), *word) {
                            self.fail(machine, number, format!("module does not fit at {}", r[2]));
                            return Ok(false);
                        }
                    }
                    machine.regs[0] = count as u32;
                }
                Err(why) => self.fail(machine, number, why),
            },
            syscall::FILE_READ => {
                let Some(path) = machine.read_string(r[1], MAX_STRING) else {
                    self.fail(machine, number, "path string runs off memory".into());
                    return Ok(false);
                };
                let path = String::from_utf8_lossy(&path).into_owned();
                match self.storage.read_file(&path) {
                    Ok(bytes) => {
                        let take = bytes.len().min(r[3].min(MAX_FILE_BYTES) as usize);
                        for (index, chunk) in bytes[..take].chunks(4).enumerate() {
                            let mut word = [0u8; 4];
                            word[..chunk.len()].copy_from_slice(chunk);
                            if !machine.write_word(
                                r[2].wrapping_add(index as u32),
                                u32::from_le_bytes(word),
                            ) {
                                self.fail(
                                    machine,
                                    number,
                                    format!("buffer at {} runs off memory", r[2]),
                                );
                                return Ok(false);
                            }
                        }
                        machine.regs[0] = take as u32;
                    }
                    Err(why) => self.fail(machine, number, why),
                }
            }
            syscall::FILE_WRITE => {
                let Some(path) = machine.read_string(r[1], MAX_STRING) else {
                    self.fail(machine, number, "path string runs off memory".into());
                    return Ok(false);
                };
                let path = String::from_utf8_lossy(&path).into_owned();
                if r[3] > MAX_FILE_BYTES {
                    self.fail(
                        machine,
                        number,
                        format!("{} bytes is more than {MAX_FILE_BYTES}", r[3]),
                    );
                    return Ok(false);
                }
                let mut bytes = Vec::with_capacity(r[3] as usize);
                for index in 0..(r[3] as usize).div_ceil(4) {
                    match machine.read_word(r[2].wrapping_add(index as u32)) {
                        Some(word) => bytes.extend_from_slice(&word.to_le_bytes()),
                        None => {
                            self.fail(
                                machine,
                                number,
                                format!("source at {} runs off memory", r[2]),
                            );
                            return Ok(false);
                        }
                    }
                }
                bytes.truncate(r[3] as usize);
                match self.storage.write_file(&path, &bytes) {
                    Ok(()) => machine.regs[0] = 1,
                    Err(why) => self.fail(machine, number, why),
                }
            }
            syscall::CYCLES => {
                machine.regs[0] = machine.cycles as u32;
                machine.regs[1] = (machine.cycles >> 32) as u32;
            }
            syscall::TIME => machine.regs[0] = self.time as u32,
            syscall::YIELD => {
                machine.regs[0] = 1;
                return Ok(true);
            }
            other => self.fail(machine, other, "no such syscall".into()),
        }
        Ok(false)
    }
}
