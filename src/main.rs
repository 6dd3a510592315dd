fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("simulate") {
        std::process::exit(wolfpack::sim::cli::run_simulate(&args[2..]));
    }
}
