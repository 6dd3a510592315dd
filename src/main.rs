//! The `wolfpack` binary: everything happens in `wolfpack::cli`; main only hands over the
//! arguments, sets how a closed stdout ends the process, and exits with the code it gets back.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if wolfpack::cli::only_prints(&args) {
        end_quietly_when_stdout_closes();
    }
    std::process::exit(wolfpack::cli::run(&args));
}

/// Rust starts with SIGPIPE ignored, so once a reader such as `head` closes the pipe `println!`
/// panics, and with panic = "abort" the process dumps core. Every Unix tool ends quietly from
/// SIGPIPE instead, which is the signal's default action.
fn end_quietly_when_stdout_closes() {
    // SAFETY: restoring a signal's default disposition, before any thread starts, has no
    // preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}
