//! Generates one test per conformance spec file in `tests/spec/`.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let spec_dir = Path::new(&root).join("tests/spec");
    println!("cargo:rerun-if-changed=tests/spec");
    let mut names: Vec<String> = std::fs::read_dir(&spec_dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
                .filter_map(|name| name.strip_suffix(".pxasm").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::new();
    for name in names {
        let ident: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let _ = writeln!(
            out,
            "#[test]\nfn spec_{ident}() {{\n    run_spec(\"{name}\");\n}}\n"
        );
    }
    let target =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("spec_tests.rs");
    std::fs::write(target, out).expect("OUT_DIR is writable");
}
