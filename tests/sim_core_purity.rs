//! `src/core` is sans-IO: no clocks, sockets, files, threads, environment or OS randomness.
//! (The simulator can only reproduce a seed because of this.)

#[test]
fn the_core_imports_nothing_that_touches_the_operating_system() {
    let forbidden = [
        "std::time",
        "std::net",
        "std::fs",
        "std::thread",
        "std::env",
        "std::process",
        "mio::",
        "getrandom",
        "rand::",
        "memmap2",
    ];
    let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/src/core");
    let mut checked = 0;
    for entry in std::fs::read_dir(directory).expect("src/core exists") {
        let path = entry.expect("a directory entry").path();
        let text = std::fs::read_to_string(&path).expect("a readable source file");
        for word in forbidden {
            assert!(!text.contains(word), "{} mentions {word}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 10, "found the core's files");
}
