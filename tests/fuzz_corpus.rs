//! The fuzz corpora as regression tests (issue 16): every file of `fuzz/corpus/TARGET/` goes
//! through the very function its libFuzzer target runs (`fuzz/targets.rs`), on stable Rust, so
//! `cargo test` replays what the fuzzers found interesting without nightly or cargo-fuzz.
//! `FUZZING.md` says how to run the fuzzers themselves.
#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::Path;

/// Runs `target` on every file of `fuzz/corpus/NAME/`; returns how many there were.
fn replay(name: &str, target: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    entries.sort();
    for path in &entries {
        let data = std::fs::read(path).expect("a corpus file reads");
        let outcome = std::panic::catch_unwind(|| target(&data));
        assert!(
            outcome.is_ok(),
            "fuzz target {name} panicked on {}",
            path.display()
        );
    }
    // Empty input too: every target must take it.
    target(&[]);
    entries.len()
}

macro_rules! corpus_test {
    ($name:ident) => {
        #[test]
        fn $name() {
            let files = replay(stringify!($name), targets::$name);
            assert!(files > 0, "fuzz/corpus/{} is empty", stringify!($name));
        }
    };
}

corpus_test!(wire_open);
corpus_test!(core_message);
corpus_test!(gum_wire);
corpus_test!(disk_records);
corpus_test!(disk_inspect);
corpus_test!(admin_request);
corpus_test!(events);
corpus_test!(time_service);
corpus_test!(catalog);
corpus_test!(monitor_codec);
