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
    let mut directories = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/core"
    ))];
    let mut checked = 0;
    // Submodules (src/core/db, src/core/gum) live in directories and obey the same rule.
    while let Some(directory) = directories.pop() {
        for entry in std::fs::read_dir(&directory).expect("a core directory exists") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                directories.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            for word in forbidden {
                assert!(!text.contains(word), "{} mentions {word}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "found the core's files");
}
