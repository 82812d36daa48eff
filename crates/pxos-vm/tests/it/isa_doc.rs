//! `docs/isa.md` and its colour swatches are generated from the ISA enum.
//! Run with `UPDATE_EXPECT=1` to rewrite them; otherwise this test fails when
//! they are out of date.

use std::fmt::Write as _;
use std::path::Path;

use pxos_vm::isa::{Format, Op, PALETTE, syscall};

fn swatch(rgb: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 24, 24);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&rgb.repeat(24 * 24)).unwrap();
    writer.finish().unwrap();
    out
}

fn syntax(op: Op) -> String {
    let m = op.mnemonic();
    match op.format() {
        Format::None => m.to_string(),
        Format::R => format!("{m} Ra"),
        Format::RR => format!("{m} Ra, Rb"),
        Format::RRR => format!("{m} Ra, Rb, Rc"),
        Format::RRI8 if matches!(op, Op::LOAD | Op::STORE) => format!("{m} Ra, [Rb+imm8]"),
        Format::RRI8 => format!("{m} Ra, Rb, imm8"),
        Format::RI16 => format!("{m} Ra, imm16"),
        Format::U16 => format!("{m} imm16"),
        Format::RW => format!("{m} Ra, imm32"),
        Format::W => format!("{m} addr"),
        Format::RRW => format!("{m} Ra, Rb, addr"),
    }
}

fn encoding(op: Op) -> String {
    let r = format!("R={:#04x}", op as u8);
    let second = if op.format().words() == 2 {
        " + word 2"
    } else {
        ""
    };
    let fields = match op.format() {
        Format::None => "G=0 B=0 A=0",
        Format::R => "G=a B=0 A=0",
        Format::RR => "G=a B=b A=0",
        Format::RRR => "G=a B=b A=c",
        Format::RRI8 => "G=a B=b A=imm8",
        Format::RI16 => "G=a B,A=imm16 (little-endian)",
        Format::U16 => "G=0 B,A=imm16 (little-endian)",
        Format::RW => "G=a B=0 A=0",
        Format::W => "G=0 B=0 A=0",
        Format::RRW => "G=a B=b A=0",
    };
    format!("{r} {fields}{second}")
}

#[test]
fn isa_doc_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut doc = String::new();
    doc.push_str("# PXVM instruction set\n\n");
    doc.push_str("Generated from `crates/pxos-vm/src/isa.rs` by `cargo test -p pxos-vm isa_doc` with `UPDATE_EXPECT=1`; do not edit by hand.\n\n");
    doc.push_str("Every instruction is one 32-bit word stored as one RGBA pixel: `word = R | G << 8 | B << 16 | A << 24`, \
the opcode in R, operands a, b, c in G, B, A. Instructions with an address or a 32-bit immediate take a second word. \
Registers are R0..R15 (R0 receives syscall results), PC, SP and the flags Z, L (signed less) and B (unsigned below). \
Only canonical encodings are instructions: registers below 16 and unused bytes zero; any other word traps as an \
invalid instruction when executed and disassembles as `.word`. Memory is word-addressed (address = y * width + x of \
the VRAM texture it maps onto); the top of memory is the stack, which grows down and is never executable. \
Immediates: imm8 and imm16 are sign-extended (except `SYSCALL`'s number).\n\n");
    doc.push_str("The swatch is the colour of the instruction pixel with all operands 0 (alpha shown opaque). In the meaning column, rd, rs and rt are the register operands in order (Ra, Rb, Rc).\n\n");
    doc.push_str(
        "| swatch | opcode | syntax | encoding | words | meaning |\n|---|---:|---|---|---:|---|\n",
    );
    for &op in Op::ALL {
        let _ = writeln!(
            doc,
            "| ![](isa/op-{code:03}.png) | {code} (`{code:#04x}`) | `{}` | {} | {} | {} |",
            syntax(op),
            encoding(op),
            op.format().words(),
            op.doc().trim(),
            code = op as u8
        );
    }
    doc.push_str("\n## Syscalls\n\n`SYSCALL n` passes arguments in R1.. and returns in R0. A failing syscall sets R0 = 0 \
and R1 = an error code (below), logs a warning and lets the program go on; it never reports success for something \
it did not do. Only a host refusal traps.\n\n| number | name | meaning |\n|---:|---|---|\n");
    for (number, name, meaning) in syscall::ALL {
        let _ = writeln!(doc, "| {number} | `{name}` | {meaning} |");
    }
    doc.push_str(
        "\n### Error codes (R1 when R0 = 0)\n\n| code | name | meaning |\n|---:|---|---|\n",
    );
    for (code, name, meaning) in syscall::error::ALL {
        let _ = writeln!(doc, "| {code} | `{name}` | {meaning} |");
    }
    doc.push_str("\nSELF_MODIFY and VERSION_SWITCH stage a kernel change that the host applies after HALT. Only a kernel \
boot applies them (the kernel stage of `pxos boot` for the current cartridge, and `pxos kernel boot`); every other \
run (`pxos run`, `pxos debug`, other boot stages, sandboxes) answers `UNSUPPORTED` or `DENIED` and stages nothing.\n");
    doc.push_str("\nThe session syscalls (READ_LINE, RUN, INFO, SCREEN_SAVE, CLEAR) act only in an interactive session \
(the world's shell under `pxos shell`, or `pxos boot` on a terminal); everywhere else they answer `UNSUPPORTED`. RUN \
places a program exactly as `pxos run NAME --cartridge C` would for the shell's cartridge, so a sandboxed shell runs \
sandboxed programs. LIST_DIR reads PixelFS like FILE_READ.\n");
    doc.push_str("\nLLM asks the model the home configured (`pxos agents`; the built-in pixel model by default) \
through the model policy, each question in the exchange log (`pxos agents log`). A sandboxed run (an experimental \
cartridge, `pxos run FILE`) is refused with `DENIED` unless a person consents with `--allow-llm`; a run with no model \
answers `UNSUPPORTED`.\n");
    doc.push_str("\n## Calling convention\n\nA program starts with R1 = the number of its arguments and R2 = the address \
of argv: R1 words, each the address of one argument, a NUL-terminated UTF-8 string packed four bytes per word \
(little-endian), as `.string` stores them. The strings and argv sit at the top of memory, in the stack region, and SP \
starts just below them; without arguments R1 = 0 and R2 = SP. Other registers start at 0. At most 64 arguments of \
4096 bytes in all (NULs included), taking at most a quarter of the stack; an argument cannot hold a NUL byte. A run \
whose arguments break these limits does not start (a host trap names the limit). `pxos run NAME ARGS...` and the \
shell's `run NAME ARGS...` pass them this way.\n");
    doc.push_str("\n## Screen palette\n\n| index | swatch | RGB |\n|---:|---|---|\n");
    for (index, rgb) in PALETTE.iter().enumerate() {
        let _ = writeln!(
            doc,
            "| {index} | ![](isa/palette-{index:02}.png) | `#{:02x}{:02x}{:02x}` |",
            rgb[0], rgb[1], rgb[2]
        );
    }
    doc.push_str("\n## Traps\n\ninvalid-instruction, pc-out-of-bounds, memory-out-of-bounds, screen-out-of-bounds, \
divide-by-zero, fuel-exhausted, stack-overflow, stack-underflow, host. Every fault is a value returned to the host; \
PC stays at the faulting instruction.\n");

    let mut files: Vec<(std::path::PathBuf, Vec<u8>)> =
        vec![(root.join("docs/isa.md"), doc.into_bytes())];
    for &op in Op::ALL {
        files.push((
            root.join(format!("docs/isa/op-{:03}.png", op as u8)),
            swatch([op as u8, 0, 0]),
        ));
    }
    for (index, rgb) in PALETTE.iter().enumerate() {
        files.push((
            root.join(format!("docs/isa/palette-{index:02}.png")),
            swatch(*rgb),
        ));
    }
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    assert!(
        !update || std::env::var("CI").as_deref() != Ok("true"),
        "UPDATE_EXPECT is refused under CI=true"
    );
    for (path, bytes) in files {
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let current = std::fs::read(&path).unwrap_or_default();
            assert!(
                current == bytes,
                "{} is out of date: run UPDATE_EXPECT=1 cargo test -p pxos-vm isa_doc",
                path.display()
            );
        }
    }
}
