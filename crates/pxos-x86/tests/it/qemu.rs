//! The pxOS v1 shell booted in real QEMU: keys typed through the monitor, the screen read
//! back from the VGA text buffer at 0xB8000.

use std::time::Duration;

use pxos_x86::qemu::{Machine, Screen, parse_keys};
use pxos_x86::{Options, build};

const WAIT: Duration = Duration::from_secs(30);

/// The screen shows exactly `rows` from the top, and nothing below them.
fn shows<'a>(rows: &'a [&'a str]) -> impl Fn(&Screen) -> bool + 'a {
    move |screen: &Screen| {
        let actual = screen.rows();
        rows.iter().enumerate().all(|(i, row)| actual[i] == *row)
            && actual[rows.len()..].iter().all(String::is_empty)
    }
}

fn type_and_expect(vm: &mut Machine, keys: &str, rows: &[&str], cursor: (u8, u8)) -> Screen {
    vm.type_keys(&parse_keys(keys).unwrap()).unwrap();
    vm.wait_for(&format!("{rows:?}"), WAIT, shows(rows))
        .unwrap_or_else(|err| panic!("after typing {keys:?}: {err}"));
    // The screen can match before the cursor moves (the echo is written first).
    let screen = vm
        .wait_for(&format!("the cursor at {cursor:?}"), WAIT, |s| {
            s.cursor == cursor
        })
        .unwrap_or_else(|err| panic!("after typing {keys:?}: {err}"));
    assert!(shows(rows)(&screen), "{}", screen.text());
    screen
}

#[test]
fn shell_boots_and_answers_in_qemu() {
    let image = build(pxos_x86::SHELL_SOURCE, Options::default()).unwrap();
    let mut vm = Machine::boot_headless(&image.bytes).unwrap();

    // Boot: the BIOS messages are cleared and the prompt is at the top left.
    let screen = vm
        .wait_for("the prompt", WAIT, shows(&["pxOS v1>"]))
        .unwrap();
    let screen = if screen.cursor == (0, 9) {
        screen
    } else {
        vm.wait_for("the cursor after the prompt", WAIT, |s| s.cursor == (0, 9))
            .unwrap()
    };
    // Cleared to light grey on black.
    assert!((0..25).all(|r| (0..80).all(|c| screen.attribute(r, c) == 0x07)));

    // Typed characters are echoed; Backspace erases; it stops at the prompt.
    type_and_expect(&mut vm, "Hello, pxOS!", &["pxOS v1> Hello, pxOS!"], (0, 21));
    type_and_expect(
        &mut vm,
        "\\b\\b\\b\\b\\b\\b\\b",
        &["pxOS v1> Hello"],
        (0, 14),
    );
    type_and_expect(&mut vm, "\\b\\b\\b\\b\\b\\b\\b", &["pxOS v1>"], (0, 9));

    // Enter on an empty line: a new prompt on the next line.
    type_and_expect(&mut vm, "\\n", &["pxOS v1>", "pxOS v1>"], (1, 9));

    // An unknown command gets a short error and a new prompt.
    type_and_expect(
        &mut vm,
        "helpme\\n",
        &[
            "pxOS v1>",
            "pxOS v1> helpme",
            "unknown command: helpme (type help)",
            "pxOS v1>",
        ],
        (3, 9),
    );

    // help lists the commands.
    type_and_expect(
        &mut vm,
        "help\\n",
        &[
            "pxOS v1>",
            "pxOS v1> helpme",
            "unknown command: helpme (type help)",
            "pxOS v1> help",
            "commands:",
            "  help   list the commands",
            "  clear  clear the screen",
            "pxOS v1>",
        ],
        (7, 9),
    );

    // clear empties the screen and starts again at the top.
    type_and_expect(&mut vm, "clear\\n", &["pxOS v1>"], (0, 9));

    // The line holds 64 characters; further keys are ignored, and control keys are too.
    let long = "x".repeat(70);
    let expected = format!("pxOS v1> {}", "x".repeat(64));
    type_and_expect(
        &mut vm,
        &format!("{long}{{esc}}{{f1}}"),
        &[&expected],
        (0, 73),
    );
    // 17 + 63 characters fill the 80-column row exactly; the BIOS wraps the rest.
    let unknown = format!("unknown command: {}", "x".repeat(63));
    type_and_expect(
        &mut vm,
        "\\b\\n",
        &[
            &expected[..expected.len() - 1],
            &unknown,
            " (type help)",
            "pxOS v1>",
        ],
        (3, 9),
    );
    vm.quit();
}

#[test]
fn the_seed_builders_image_does_not_boot() {
    // What the seed's builder wrote: code at file offset 0x7C00, zeros in the sector the
    // BIOS loads. Booted, it never prints its prompt: the machine runs zeros.
    let source = include_str!("../fixtures/seed_pxos_commands.txt");
    let image = build(
        source,
        Options {
            compat_seed: true,
            ..Options::default()
        },
    )
    .unwrap();
    let mut vm = Machine::boot_headless(&image.bytes).unwrap();
    let screen = vm
        .wait_for("the BIOS handing over to the floppy", WAIT, |s| {
            s.text().contains("Booting from Floppy")
        })
        .unwrap();
    let after = vm.settle(Duration::from_millis(1500), WAIT).unwrap();
    assert!(!after.text().contains("pxOS"), "{}", after.text());
    assert!(screen.text().contains("Booting from Floppy"));
    vm.quit();
}
