//! Running the host's tools (`ip`, `nft`) and sending signals to PIDs we recorded.
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `program args...`; `Err` names the command and quotes its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run {program}: {error}"))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(format!(
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

/// `ip -n NAMESPACE args...`.
pub fn ip_in(namespace: &str, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["-n", namespace];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Feeds `script` to `nft -f -` inside `namespace`.
pub fn nft_in(namespace: &str, script: &str) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", namespace, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run nft in {namespace}: {error}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|error| format!("cannot feed nft: {error}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|error| format!("nft in {namespace}: {error}"))?;
    match output.status.success() {
        true => Ok(()),
        false => Err(format!(
            "nft in {namespace} failed: {}\n{script}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

/// Every network namespace on the host.
pub fn namespaces() -> Vec<String> {
    run("ip", &["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Whether `program` is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Sends `signal` to `pid`; true when it was delivered.
pub fn signal(pid: i32, signal: i32) -> bool {
    if pid <= 1 {
        return false;
    }
    // SAFETY: kill(2) takes two integers; callers pass PIDs this testbed recorded.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Whether the process `pid` exists (zombies included).
pub fn alive(pid: i32) -> bool {
    signal(pid, 0)
}

/// Whether this process runs as root (the testbed needs it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
