//! The `wolfpack` binary: everything happens in `wolfpack::cli`; main only hands over the
//! arguments and exits with the code it gets back.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `simulate` lives in the sim module until `cli` dispatches it (minimal wiring).
    if args.get(1).map(String::as_str) == Some("simulate") {
        std::process::exit(wolfpack::sim::cli::run_simulate(&args[2..]));
    }
    std::process::exit(wolfpack::cli::run(&args));
}
