//! The `wolfpack` binary: everything happens in `wolfpack::cli`; main only hands over the
//! arguments and exits with the code it gets back.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(wolfpack::cli::run(&args));
}
