use pxos_x86::{Options, Problem, build};

const SEED: &str = include_str!("../fixtures/seed_pxos_commands.txt");

#[test]
fn seed_source_builds_byte_for_byte_in_compat_mode() {
    let image = build(SEED, Options { compat_seed: true, ..Options::default() }).unwrap();
    assert_eq!(image.bytes.len(), 31_833);
    assert_eq!(image.writes, 89);
    assert_eq!(image.symbols.len(), 8);
    assert_eq!(
        image.sha256(),
        "733ada3165613e4076880a055dc4bb0e76d0414b3fab62f524749a10738675df"
    );
    println!("{:#?}", image.warnings);
}

#[test]
fn seed_source_is_refused_in_boot_mode() {
    let err = build(SEED, Options::default()).unwrap_err();
    println!("{err}");
    panic!();
}

#[test]
fn shell_builds() {
    let image = build(pxos_x86::SHELL_SOURCE, Options::default()).unwrap();
    std::fs::write("/tmp/pxos.bin", &image.bytes).unwrap();
    println!("{:#?} {}", image.warnings, image.used);
}

#[test]
fn shell_listing() {
    let image = build(pxos_x86::SHELL_SOURCE, Options::default()).unwrap();
    let listing = pxos_x86::disasm::disassemble(&image.bytes, 0x7C00, &image.labels());
    print!("{}", pxos_x86::disasm::render(&listing));
}
