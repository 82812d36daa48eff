//! Integration tests of pxos-x86: the builders, the disassembler and the shell in QEMU.

mod build;
mod qemu;
mod support;
