use std::time::Duration;

use pxos_x86::qemu::{Machine, Screen, parse_keys};
use pxos_x86::{Options, build};

const WAIT: Duration = Duration::from_secs(30);

fn shows<'a>(rows: &'a [&'a str]) -> impl Fn(&Screen) -> bool + 'a {
    move |screen: &Screen| {
        let actual = screen.rows();
        rows.iter().enumerate().all(|(i, row)| actual[i] == *row)
            && actual[rows.len()..].iter().all(String::is_empty)
    }
}

#[test]
fn shell_boots_and_answers_in_qemu() {
    let image = build(pxos_x86::SHELL_SOURCE, Options::default()).unwrap();
    let mut vm = Machine::boot_headless(&image.bytes).unwrap();
    let screen = vm
        .wait_for("the prompt", WAIT, shows(&["pxOS v1>"]))
        .unwrap();
    println!("{}", screen.text());
    assert_eq!(screen.cursor, (0, 9));
    vm.type_keys(&parse_keys("hello").unwrap()).unwrap();
    let screen = vm
        .wait_for("echo", WAIT, shows(&["pxOS v1> hello"]))
        .unwrap();
    assert_eq!(screen.cursor, (0, 14));
    vm.type_keys(&parse_keys("\\b\\b").unwrap()).unwrap();
    let screen = vm
        .wait_for("erase", WAIT, shows(&["pxOS v1> hel"]))
        .unwrap();
    assert_eq!(screen.cursor, (0, 12));
    vm.type_keys(&parse_keys("\\nhelp\\n").unwrap()).unwrap();
    let screen = vm
        .wait_for(
            "help",
            WAIT,
            shows(&[
                "pxOS v1> hel",
                "unknown command: hel (type help)",
                "pxOS v1> help",
                "commands:",
                "  help   list the commands",
                "  clear  clear the screen",
                "pxOS v1>",
            ]),
        )
        .unwrap();
    println!("{}", screen.text());
    vm.type_keys(&parse_keys("\\nclear\\n").unwrap()).unwrap();
    let screen = vm.wait_for("clear", WAIT, shows(&["pxOS v1>"])).unwrap();
    assert_eq!(screen.cursor, (0, 9));
    vm.quit();
}
