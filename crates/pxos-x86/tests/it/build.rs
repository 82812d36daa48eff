//! The builders: the seed golden image, the refusal of the seed's bugs, every parser error
//! kind with its line, and the shell's sector and listing.

use pxos_x86::build::{CAPACITY, build_compat};
use pxos_x86::disasm::{disassemble, render};
use pxos_x86::{Diagnostic, Options, Problem, build};

use crate::support::{Rng, check_golden};

const SEED: &str = include_str!("../fixtures/seed_pxos_commands.txt");
/// The seed builder's output for its own source, as recorded in the seed notes.
const SEED_SHA256: &str = "733ada3165613e4076880a055dc4bb0e76d0414b3fab62f524749a10738675df";

fn compat() -> Options {
    Options {
        compat_seed: true,
        ..Options::default()
    }
}

/// Builds in boot mode and returns the diagnostics of a refusal.
fn refuse(source: &str) -> Vec<Diagnostic> {
    match build(source, Options::default()) {
        Ok(image) => panic!("expected a refusal, built {} bytes", image.bytes.len()),
        Err(err) => err.diagnostics,
    }
}

/// Asserts exactly one problem of `kind` on `line`, whose message mentions `fragment`.
fn assert_one(source: &str, kind: Problem, line: usize, fragment: &str) {
    let diagnostics = refuse(source);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    let d = &diagnostics[0];
    assert_eq!((d.problem, d.line), (kind, Some(line)), "{d:#?}");
    assert!(
        d.message.contains(fragment),
        "{:?} lacks {fragment:?}",
        d.message
    );
}

#[test]
fn seed_source_builds_byte_for_byte_in_compat_mode() {
    let image = build(SEED, compat()).unwrap();
    assert_eq!(image.bytes.len(), 31_833);
    assert_eq!(image.writes, 89);
    assert_eq!(image.sha256(), SEED_SHA256);
    let symbols: Vec<(&str, u32)> = image
        .symbols
        .iter()
        .map(|s| (s.name.as_str(), s.address))
        .collect();
    assert_eq!(
        symbols,
        [
            ("cursor_pos", 0x0050),
            ("boot_start", 0x7C00),
            ("print_string", 0x7C28),
            ("shell_loop", 0x7C38),
            ("welcome_msg", 0x7C40),
            ("shell_prompt", 0x7E00),
            ("input_buffer", 0x7E10),
            ("video_mem", 0xB800),
        ]
    );
    // The only bytes a BIOS loads are zeros and the signature, and the build says so.
    assert!(image.boot_sector()[..510].iter().all(|&b| b == 0));
    assert_eq!(image.boot_sector()[510..], [0x55, 0xAA]);
    let warnings = image.warnings.join("\n");
    assert!(warnings.contains("this image cannot boot"), "{warnings}");
    assert!(warnings.contains("file offset 0x7C00"), "{warnings}");
    assert!(
        warnings.contains("0x7C40..0x7C45, 0x7C47..0x7C49"),
        "{warnings}"
    );
}

#[test]
fn compat_mode_keeps_the_seed_quirks() {
    // Unknown commands and CALL are ignored, labels shadow numbers, later writes win,
    // "COMMENT" cuts a line anywhere, and trailing zeros are trimmed.
    let source = "WRTIE 0x10 0x01\nCALL anything\nDEFINE 10 0x20\nWRITE 10 0x02\n\
                  WRITE 0x21 0x03 MYCOMMENTX 0x99\nWRITE 0x21 0x04\nWRITE 0x300 0\n";
    let image = build_compat(source).unwrap();
    assert_eq!(image.bytes.len(), 512);
    assert_eq!(image.bytes[0x10], 0);
    assert_eq!(image.bytes[0x20], 0x02);
    assert_eq!(image.bytes[0x21], 0x04);
    assert_eq!(image.writes, 4);
    // The seed's error messages, with their line numbers.
    let err = build_compat("\n\nWRITE 0x10000 1\n").unwrap_err();
    assert_eq!(err.diagnostics[0].line, Some(3));
    assert!(
        err.diagnostics[0]
            .message
            .contains("Address 0x10000 out of bounds (max 0x10000)")
    );
    let err = build_compat("WRITE 1 0x100\n").unwrap_err();
    assert!(
        err.diagnostics[0]
            .message
            .contains("Byte value 0x100 out of range (max 0xFF)")
    );
    let err = build_compat("WRITE 1\n").unwrap_err();
    assert!(
        err.diagnostics[0]
            .message
            .contains("WRITE requires 2 arguments")
    );
    let err = build_compat("DEFINE x 0x7C00+2\n").unwrap_err();
    assert!(
        err.diagnostics[0]
            .message
            .contains("Cannot parse value: 0x7C00+2")
    );
    // Python wrapped negative addresses silently; the port refuses them.
    let err = build_compat("WRITE -1 1\n").unwrap_err();
    assert_eq!(err.diagnostics[0].problem, Problem::BadNumber);
}

#[test]
fn seed_source_is_refused_in_boot_mode_with_the_reasons() {
    let diagnostics = refuse(SEED);
    let found: Vec<(Problem, Option<usize>)> =
        diagnostics.iter().map(|d| (d.problem, d.line)).collect();
    assert_eq!(
        found,
        [
            (Problem::BadBranch, Some(107)),
            (Problem::Overlap, Some(111)),
            (Problem::BadBranch, Some(115)),
            (Problem::BadBranch, Some(132)),
            (Problem::BadBranch, Some(135)),
        ],
        "{diagnostics:#?}"
    );
    let text: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
    // The welcome message is overwritten by the shell loop's code.
    assert!(
        text[1].contains("welcome_msg, the text \"pxOS v1> \\0\""),
        "{}",
        text[1]
    );
    assert!(text[1].contains("lines 83-92"), "{}", text[1]);
    // The four hand-computed displacements that are off by one.
    assert!(
        text[0].contains("`je 0x7C48` at 0x7C3E goes to 0x7C48"),
        "{}",
        text[0]
    );
    for (i, branch, label) in [
        (2, "`jmp 0x7C37` at 0x7C44", "shell_loop"),
        (3, "`call 0x7C27` at 0x7C54", "print_string"),
        (4, "`jmp 0x7C37` at 0x7C57", "shell_loop"),
    ] {
        assert!(text[i].contains(branch), "{}", text[i]);
        assert!(text[i].contains(&format!("label {label}")), "{}", text[i]);
        assert!(text[i].contains("off by 1"), "{}", text[i]);
    }
}

#[test]
fn the_seed_program_corrected_builds_and_matches_the_verified_sector() {
    // The seed notes verify a corrected sector: the same code with the four displacements
    // fixed and the message moved to 0x7C60. Fix the seed's source the same way, in its
    // own primitives, and the checked builder must accept it and produce those bytes.
    let mut fixed = String::new();
    for line in SEED.lines() {
        let line = match line.split_whitespace().take(3).collect::<Vec<_>>()[..] {
            ["DEFINE", "welcome_msg", _] => "DEFINE welcome_msg 0x7C60".to_string(),
            // The message's own bytes (commented with their character) move with it.
            ["WRITE", addr, _]
                if ("0x7C40".."0x7C4A").contains(&addr)
                    && (line.contains('\'') || line.contains("null")) =>
            {
                let a = u32::from_str_radix(&addr[2..], 16).unwrap() + 0x20;
                line.replacen(addr, &format!("0x{a:04X}"), 1)
            }
            ["WRITE", "0x7C1B", _] | ["WRITE", "0x7C52", _] => line.replace("0x40", "0x60"),
            ["WRITE", "0x7C3F", _] => line.replace("0x08", "0x07"),
            ["WRITE", "0x7C45", _] => line.replace("0xF1", "0xF2"),
            ["WRITE", "0x7C55", _] => line.replace("0xD0", "0xD1"),
            ["WRITE", "0x7C58", _] => line.replace("0xDE", "0xDF"),
            _ => line.to_string(),
        };
        fixed.push_str(&line);
        fixed.push('\n');
    }
    fixed.push_str("WRITE 0x7C46 0x90 COMMENT nop\n");
    let image = build(&fixed, Options::default()).unwrap();
    assert_eq!(
        image.sha256(),
        "307e330e0accfa12c239fa1ef4a79a9e72363ad821d6fc8b52f72bcb060d54a4"
    );
}

#[test]
fn every_parser_error_names_its_line() {
    assert_one(
        "COMMENT x\nWRTIE 0x7C00 0xFA\n",
        Problem::UnknownCommand,
        2,
        "did you mean WRITE?",
    );
    assert_one("\n\nWRITE 0x7C00 0xZZ\n", Problem::BadNumber, 3, "0xZZ");
    assert_one(
        "WRITE 0x7C00 010\n",
        Problem::BadNumber,
        1,
        "cannot start with 0",
    );
    assert_one("WRITE 0x7C00 -1\n", Problem::BadNumber, 1, "signed numbers");
    assert_one(
        "WRITE 0x7C00 0x7C00+2\n",
        Problem::BadNumber,
        1,
        "not a base-16 digit",
    );
    assert_one(
        "WRITE 0x7C00\n",
        Problem::MissingArgument,
        1,
        "address and byte value",
    );
    assert_one(
        "WRITE 0x7C00 1 2\n",
        Problem::ExtraArgument,
        1,
        "unexpected \"2\"",
    );
    assert_one("TEXT 0x7C00 \"abc\n", Problem::BadString, 1, "unterminated");
    assert_one(
        "TEXT 0x7C00 \"\\q\"\n",
        Problem::BadString,
        1,
        "unknown escape",
    );
    assert_one(
        "DEFINE 7up 0x7C00\n",
        Problem::BadLabel,
        1,
        "not a label name",
    );
    assert_one(
        "DEFINE write 0x7C00\n",
        Problem::BadLabel,
        1,
        "reserved word",
    );
    assert_one(
        "DEFINE a 0x7C00\nDEFINE a 0x7C01\nWRITE a 0xF4\n",
        Problem::DuplicateLabel,
        2,
        "already defined on line 1",
    );
    assert_one(
        "WRITE 0x7C00 0xF4\nCALL nowhere\n",
        Problem::UndefinedLabel,
        2,
        "undefined label nowhere",
    );
    assert_one(
        "DEFINE Start 0x7C00\nWRITE start 0xF4\n",
        Problem::UndefinedLabel,
        2,
        "did you mean Start?",
    );
    assert_one(
        "DEFINE a b\nDEFINE b a\nWRITE a 0xF4\n",
        Problem::UndefinedLabel,
        1,
        "circle",
    );
    assert_one(
        "WRITE 0x7C00 0x100\n",
        Problem::OutOfRange,
        1,
        "does not fit in a byte",
    );
    assert_one(
        "DEFINE msg 0x7C10\nWRITE 0x7C00 msg\n",
        Problem::OutOfRange,
        2,
        "lo(label) and hi(label)",
    );
    assert_one("WRITE 0x10000 1\n", Problem::OutOfRange, 1, "past 0xFFFF");
    assert_one(
        "WRITE 0x7C00 0xEB\nREL8 0x7C01 far\nDEFINE far 0x7D00\n",
        Problem::OutOfRange,
        2,
        "use the near form with REL16",
    );
}

#[test]
fn sector_bounds_overlaps_and_the_signature_are_checked() {
    assert_one(
        "WRITE 0x7C00 0xEB\nWRITE 0x7C01 0xFE\nWRITE 0x7C00 0xEB\n",
        Problem::Overlap,
        3,
        "line 1 already wrote",
    );
    // The program here is `jmp $` (EB FE), so only the write under test is wrong.
    let jmp = "WRITE 0x7C00 0xEB\nWRITE 0x7C01 0xFE\n";
    assert_one(
        &format!("{jmp}WRITE 0x0000 0x90\n"),
        Problem::OutsideSector,
        3,
        "file offset 0x0 is 0x7C00",
    );
    assert_one(
        &format!("{jmp}TEXT 0x7DF0 \"0123456789abcdef\"\n"),
        Problem::OverSignature,
        3,
        "0x7DFE..0x7DFF",
    );
    assert_one(
        &format!("{jmp}WRITE 0x7E00 0x90\n"),
        Problem::OutsideSector,
        3,
        "does not fit in one sector",
    );
    assert_one(
        &format!("{jmp}WRITE 0x7DFE 0x55\n"),
        Problem::OverSignature,
        3,
        "builder puts 55 AA there",
    );
    // OVERWRITE, or --allow-overwrite, says replacing is intended.
    let image = build(
        "WRITE 0x7C00 0x90\nOVERWRITE 0x7C00 0xF4\nWRITE 0x7C01 0xEB\nWRITE 0x7C02 0xFD\n",
        Options::default(),
    )
    .unwrap();
    assert_eq!(image.bytes[..3], [0xF4, 0xEB, 0xFD]);
    let source = "WRITE 0x7C00 0x90\nWRITE 0x7C00 0xF4\nWRITE 0x7C01 0xEB\nWRITE 0x7C02 0xFD\n";
    let image = build(
        source,
        Options {
            allow_overwrite: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(image.bytes[0], 0xF4);
}

#[test]
fn code_is_traced_and_bad_branches_refused() {
    // A hand-computed short jump one byte past its target.
    assert_one(
        "DEFINE loop 0x7C00\nWRITE 0x7C00 0xB4\nWRITE 0x7C01 0x0E\nWRITE 0x7C02 0xCD\nWRITE 0x7C03 0x10\nWRITE 0x7C04 0xEB\nWRITE 0x7C05 0xFB\n",
        Problem::BadBranch,
        6,
        "the middle of `mov ah, 0xE` at 0x7C00 (label loop is at 0x7C00: is the displacement off by -1?)",
    );
    // A jump into the middle of an instruction, and one to a byte nobody wrote.
    assert_one(
        "WRITE 0x7C00 0xB8\nWORD 0x7C01 0x1234\nWRITE 0x7C03 0xEB\nWRITE 0x7C04 0xFC\n",
        Problem::BadBranch,
        3,
        "the middle of `mov ax, 0x1234` at 0x7C00",
    );
    assert_one(
        "DEFINE next 0x7C03\nWRITE 0x7C00 0xEB\nWRITE 0x7C01 0x02\nWRITE 0x7C03 0xB4\nWRITE 0x7C04 0x0E\nWRITE 0x7C05 0xEB\nWRITE 0x7C06 0xFE\n",
        Problem::BadBranch,
        2,
        "0x7C04, which is neither a label nor the start of an instruction",
    );
    assert_one(
        "DEFINE next 0x7C04\nWRITE 0x7C00 0xEB\nWRITE 0x7C01 0x01\nWRITE 0x7C04 0xEB\nWRITE 0x7C05 0xFE\n",
        Problem::BadBranch,
        2,
        "goes to 0x7C03, a byte no line writes (label next is at 0x7C04: is the displacement off by 1?)",
    );
    // An instruction whose operand was never written.
    assert_one(
        "WRITE 0x7C00 0xB8\nWRITE 0x7C01 0x34\nWRITE 0x7C03 0xEB\nWRITE 0x7C04 0xFE\n",
        Problem::BadCode,
        1,
        "0x7C02 is never written",
    );
    // Execution running into bytes nobody wrote.
    assert_one(
        "WRITE 0x7C00 0xFA\nWRITE 0x7C02 0xF4\n",
        Problem::BadCode,
        1,
        "runs on into 0x7C01",
    );
    // Nothing at the entry point.
    let diagnostics = refuse("WRITE 0x7C10 0xF4\n");
    assert_eq!(diagnostics[0].problem, Problem::BadCode);
    assert!(
        diagnostics[0]
            .message
            .contains("nothing is written at 0x7C00")
    );
    // REL8/REL16 compute displacements, so labels make branches right by construction.
    let image = build(
        "DEFINE top 0x7C00\nWRITE top 0xF4\nWRITE 0x7C01 0xEB\nREL8 0x7C02 top\n",
        Options::default(),
    )
    .unwrap();
    assert_eq!(image.bytes[..3], [0xF4, 0xEB, 0xFD]);
    // A branch out of the sector is allowed (code loaded there) but noted.
    let image = build(
        "WRITE 0x7C00 0xE9\nREL16 0x7C01 0x8000\n",
        Options::default(),
    )
    .unwrap();
    assert!(
        image.warnings[0].contains("leaves the boot sector for 0x8000"),
        "{:?}",
        image.warnings
    );
}

#[test]
fn shell_is_one_checked_sector() {
    let image = build(pxos_x86::SHELL_SOURCE, Options::default()).unwrap();
    assert_eq!(image.bytes.len(), 512);
    assert_eq!(image.bytes[510..], [0x55, 0xAA]);
    assert!(image.used <= CAPACITY);
    assert!(image.warnings.is_empty(), "{:?}", image.warnings);
    // The source builds the same in any run, and strings sit where their labels say.
    let labels = image.labels();
    let prompt = labels
        .iter()
        .find(|(_, n)| *n == "msg_prompt")
        .map(|(a, _)| *a)
        .unwrap();
    let at = (prompt - 0x7C00) as usize;
    assert_eq!(&image.bytes[at..at + 10], b"pxOS v1> \0");
}

#[test]
fn shell_listing_matches_the_golden_listing() {
    let image = build(pxos_x86::SHELL_SOURCE, Options::default()).unwrap();
    let listing = render(&disassemble(&image.bytes, 0x7C00, &image.labels()));
    check_golden("tests/golden/pxos-v1-shell.lst", &listing);
}

#[test]
fn mangled_sources_never_panic() {
    let mut rng = Rng::new(0x86);
    let seeds = [pxos_x86::SHELL_SOURCE.as_bytes(), SEED.as_bytes()];
    for round in 0..400 {
        let mut bytes = seeds[round % 2].to_vec();
        for _ in 0..1 + rng.below(8) as usize {
            if bytes.is_empty() {
                break;
            }
            let at = rng.below(bytes.len() as u64) as usize;
            match rng.below(4) {
                0 => bytes[at] = rng.below(256) as u8,
                1 => {
                    bytes.remove(at);
                }
                2 => bytes.insert(at, b"0x7C\"'#;()_-\n"[rng.below(13) as usize]),
                _ => bytes.truncate(at),
            }
        }
        pxos_x86::fuzz::build_source(&bytes);
        pxos_x86::fuzz::disassemble_bytes(&bytes[..bytes.len().min(512)]);
    }
}
