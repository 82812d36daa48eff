//! The `pxos` binary, run as a user runs it: fresh homes, real files, exit codes.

mod agents;
mod boot;
mod cart;
mod crash;
mod crash_points;
mod evolution;
mod fs;
mod fuzz_reach;
mod gguf;
mod gpu;
mod hardening;
mod hostile;
mod llm;
mod newcomer;
mod pixel;
mod release_home;
mod remote;
mod shell;
mod support;
mod trust;
mod trust_crash;
mod view;
mod vm;
mod vram;
mod x86;
