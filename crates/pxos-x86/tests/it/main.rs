//! Integration tests of pxos-x86: the builders and the disassembler.

mod build;
mod qemu;
