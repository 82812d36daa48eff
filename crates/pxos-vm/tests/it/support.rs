use pxos_vm::{Config, Exit, Machine, MemoryStorage, StdHost, Trap, asm};

/// The host every spec runs against: fixed clock, three kernel versions,
/// module 301, and a file `/hello.txt`.
pub fn spec_host() -> StdHost {
    let mut storage = MemoryStorage::default();
    storage.modules.insert(301, vec![0x11e, 0x22e, 0x33e]);
    storage
        .files
        .insert("/hello.txt".into(), b"hi there".to_vec());
    let mut host = StdHost::new(Box::new(storage));
    host.time = 1_800_000_000;
    host.versions = vec![1, 2, 3];
    host.current_version = 2;
    host.kernel_changes = true;
    host
}

/// Runs a program to completion, resuming after yields. Returns the final
/// result and how many times it yielded.
pub fn run_to_end(
    machine: &mut Machine,
    host: &mut StdHost,
    fuel: u64,
) -> (Result<Exit, Trap>, u32) {
    let mut yields = 0;
    let mut left = fuel;
    loop {
        match machine.run(host, left) {
            Ok(Exit::Yielded { fuel_left }) if yields < 1000 => {
                yields += 1;
                left = fuel_left;
            }
            other => return (other, yields),
        }
    }
}

pub fn machine_for(source: &str) -> Machine {
    let program = asm::assemble("test", source).unwrap_or_else(|err| panic!("{err}"));
    Machine::with_program(Config::default(), &program.words, program.entry).unwrap()
}

pub use pxos_test_support::Rng;
