//! Every cargo-fuzz target's body, run on a fixed number of seeded inputs,
//! with a report of how deep the inputs got. The bodies turn bytes into
//! generated, structured inputs and mutate them one layer below the PNG
//! container, so most inputs reach the pxOS parsers instead of dying at a
//! chunk CRC. The whole report:
//!
//! ```text
//! cargo test -p pxos-cli --test it fuzz_reach -- --nocapture --test-threads 1
//! ```

use pxos_pixel::fuzz::Reach;
use pxos_test_support::Rng;

/// One cargo-fuzz target: its body, its seeded cases in CI, and the first
/// reach that counts as "got to a pxOS parser".
struct Target {
    name: &'static str,
    body: fn(&[u8]) -> Reach,
    cases: u32,
    parser: Reach,
}

const TARGETS: &[Target] = &[
    Target {
        name: "pxi_decode",
        body: pxos_pixel::fuzz::pxi_decode,
        cases: 3000,
        // For the PXI decoder, the pxOS parsers are its header and data checks.
        parser: Reach::PxiHeader,
    },
    Target {
        name: "map_tile",
        body: pxos_map::fuzz::map_tile,
        cases: 400,
        parser: Reach::Parser,
    },
    Target {
        name: "path_table",
        body: pxos_fs::fuzz::path_table,
        cases: 2000,
        parser: Reach::Parser,
    },
    Target {
        name: "tree_object",
        body: pxos_fs::fuzz::tree_object,
        cases: 2000,
        parser: Reach::Parser,
    },
    Target {
        name: "cart_unpack",
        body: pxos_cart::fuzz::cart_unpack,
        cases: 1500,
        parser: Reach::Parser,
    },
    Target {
        name: "evolution_log",
        body: pxos_cart::fuzz::evolution_log,
        cases: 2000,
        parser: Reach::Parser,
    },
    Target {
        name: "registry_state",
        body: pxos_cart::fuzz::registry_state,
        cases: 2000,
        parser: Reach::Parser,
    },
    Target {
        name: "kernel_state",
        body: pxos_boot::fuzz::kernel_state,
        cases: 2000,
        parser: Reach::Parser,
    },
    Target {
        name: "vm_execute",
        body: pxos_vm::fuzz::vm_execute,
        cases: 2000,
        parser: Reach::Parser,
    },
    Target {
        name: "asm_text",
        body: pxos_vm::fuzz::asm_text,
        cases: 3000,
        parser: Reach::Parser,
    },
    Target {
        name: "vram_roadmap",
        body: pxos_vram::fuzz::vram_roadmap,
        cases: 300,
        parser: Reach::Parser,
    },
    Target {
        name: "llm_model",
        body: pxos_llm::fuzz::model_file,
        cases: 600,
        parser: Reach::Parser,
    },
    Target {
        name: "gguf_import",
        body: pxos_llm::fuzz::gguf_file,
        cases: 400,
        parser: Reach::Parser,
    },
    Target {
        name: "x86_source",
        body: x86_built,
        cases: 1000,
        parser: Reach::Parser,
    },
];

/// `pxos-x86` stands alone and answers whether the source built.
fn x86_built(data: &[u8]) -> Reach {
    Reach::parsed(pxos_x86::fuzz::x86_source(data))
}

fn target(name: &str) -> &'static Target {
    TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no target {name}"))
}

/// Runs `name` on its seeded cases; prints its row of the report and fails
/// unless most inputs reached a pxOS parser.
fn run(name: &str) {
    let target = target(name);
    let seed = name.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut rng = Rng::new(seed);
    let mut tally = [0u32; Reach::ALL.len()];
    for _ in 0..target.cases {
        let len = 16 + rng.below(2048) as usize;
        let data = rng.bytes(len);
        let reach = (target.body)(&data);
        tally[Reach::ALL.iter().position(|r| *r == reach).unwrap()] += 1;
    }
    let reached: u32 = Reach::ALL
        .iter()
        .zip(tally)
        .filter(|(r, _)| **r >= target.parser)
        .map(|(_, n)| n)
        .sum();
    let percent = |n: u32| 100.0 * f64::from(n) / f64::from(target.cases);
    let row: Vec<String> = Reach::ALL
        .iter()
        .zip(tally)
        .map(|(r, n)| format!("{} {:.1}%", r.name(), percent(n)))
        .collect();
    println!(
        "fuzz-reach {name}: {} cases; reached a pxOS parser {:.1}%; {}",
        target.cases,
        percent(reached),
        row.join(", ")
    );
    assert!(
        reached * 2 > target.cases,
        "{name}: only {reached} of {} inputs reached a pxOS parser",
        target.cases
    );
}

#[test]
fn every_fuzz_target_has_a_seeded_run() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/fuzz_targets");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .collect();
    files.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(
        files, names,
        "fuzz/fuzz_targets and TARGETS must list the same targets"
    );
}

macro_rules! seeded {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(stringify!($name));
            }
        )*
    };
}

seeded!(
    pxi_decode,
    path_table,
    tree_object,
    cart_unpack,
    evolution_log,
    registry_state,
    kernel_state,
    vm_execute,
    asm_text,
    vram_roadmap,
    x86_source,
    llm_model,
    gguf_import,
    map_tile,
);
