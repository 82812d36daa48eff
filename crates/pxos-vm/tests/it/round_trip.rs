//! Assemble -> disassemble -> assemble is the identity, and programs survive
//! the trip through a pixel image.

use pxos_vm::{ProgramImage, asm, disasm};

use crate::support::Rng;

fn reassemble(words: &[u32], entry: u32) -> asm::Program {
    let listing = disasm::disassemble(words, entry);
    asm::assemble("listing", &listing).unwrap_or_else(|err| panic!("{err}\n{listing}"))
}

#[test]
fn spec_programs_round_trip() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/spec");
    for entry in std::fs::read_dir(dir).unwrap() {
        let program = asm::assemble_file(&entry.unwrap().path()).unwrap();
        let again = reassemble(&program.words, program.entry);
        assert_eq!(again.words, program.words);
        assert_eq!(again.entry, program.entry);
    }
}

#[test]
fn random_words_round_trip() {
    for seed in 0..200 {
        let mut rng = Rng(seed);
        let len = rng.below(64) as usize;
        let words: Vec<u32> = (0..len)
            .map(|_| match rng.below(3) {
                // Real opcodes with random operands, so many decode as instructions.
                0 | 1 => {
                    let op = pxos_vm::isa::Op::ALL
                        [rng.below(pxos_vm::isa::Op::ALL.len() as u64) as usize]
                        as u32;
                    op | (rng.next_u64() as u32 & 0x0f0f_0f00)
                        | if rng.below(4) == 0 {
                            rng.next_u64() as u32 & 0xff00_0000
                        } else {
                            0
                        }
                }
                _ => rng.next_u64() as u32,
            })
            .collect();
        let entry = if len > 0 {
            rng.below(len as u64) as u32
        } else {
            0
        };
        let again = reassemble(&words, entry);
        assert_eq!(again.words, words, "seed {seed}");
        assert_eq!(again.entry, entry, "seed {seed}");
    }
}

#[test]
fn programs_survive_the_pixel_image() {
    let program = asm::assemble("v1", include_str!("../../kernels/v1.0.pxasm")).unwrap();
    let image = ProgramImage {
        words: program.words.clone(),
        entry: program.entry,
    };
    let png = image.to_png();
    assert_eq!(&png[1..4], b"PNG");
    assert_eq!(ProgramImage::from_png(&png).unwrap(), image);
    let blob = pxos_pixel::encode_to_vec(b"not code", &Default::default()).unwrap();
    assert!(
        ProgramImage::from_png(&blob)
            .unwrap_err()
            .to_string()
            .contains("not a PXVM program")
    );
}
