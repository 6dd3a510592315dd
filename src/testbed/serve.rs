//! `wolfpack testbed serve --group G --device DEV` (hidden): a test group's service, a stand-in
//! for a virtual server that brings its own address.
//!
//! `wolfpack testbed serve --address A` (hidden): only the responder, on an address somebody
//! else adds and announces: the `svc` resource of the catalog group `web`, which depends on
//! its `ip` resource (see `vip.rs`).
//!
//! It adds group G's service address as a /32 to DEV, announces it with a gratuitous ARP
//! (`arping -U`, iputils-arping, when installed; without it clients learn the new owner only
//! when their ARP entry expires), and answers every TCP connection on it with the node's name
//! (`n<WOLFPACK_NODE_ID>\n`). On SIGTERM/SIGINT it removes the address and exits 0.
//!
//! A SIGKILL (the monitor's fence after its grace, or a dying monitor's PDEATHSIG) leaves the
//! /32 on the interface: the node keeps answering ARP for it and resets connections. That
//! stale address is what the `ip` resource type must clean up when it lands; here the address
//! is added with `ip addr replace`, so a node taking the group (back) never fails on it, and
//! the overlap check relies on the monitors' event log, not on addresses.
use super::{service_address, SERVICE_PORT};
use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Runs the service until SIGTERM; `Err` is one line for the resource log.
pub fn run(group: u8, device: &str) -> Result<(), String> {
    let stop = stop_on_signals()?;
    let address = service_address(group);
    let cidr = format!("{address}/32");
    super::host::run("ip", &["addr", "replace", &cidr, "dev", device])?;
    let served = serve(&address, Some(device), &node_name(), &stop);
    let removed = super::host::run("ip", &["addr", "del", &cidr, "dev", device]);
    served?;
    removed.map(|_| ())
}

/// Answers on `address` (already configured, e.g. by an `ip` resource) until SIGTERM; adds,
/// announces and removes nothing.
pub fn run_on_address(address: &str) -> Result<(), String> {
    let stop = stop_on_signals()?;
    serve(address, None, &node_name(), &stop)
}

fn stop_on_signals() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [libc::SIGTERM, libc::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|error| format!("cannot handle signal {signal}: {error}"))?;
    }
    Ok(stop)
}

/// `nN` for node N (the monitor passes WOLFPACK_NODE_ID to the resources it starts).
fn node_name() -> String {
    format!(
        "n{}",
        std::env::var("WOLFPACK_NODE_ID").unwrap_or_else(|_| "?".into())
    )
}

/// The responder; with `announce_on`, also the gratuitous ARPs for `address` on that device.
fn serve(
    address: &str,
    announce_on: Option<&str>,
    name: &str,
    stop: &AtomicBool,
) -> Result<(), String> {
    let listener = TcpListener::bind((address, SERVICE_PORT))
        .map_err(|error| format!("cannot listen on {address}:{SERVICE_PORT}: {error}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|error| error.to_string())?;
    let mut announcer = announce_on.and_then(|device| announce(address, device));
    let answer = format!("{name}\n");
    while !stop.load(Ordering::Relaxed) {
        let mut ready = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a signal interrupts the wait (EINTR) and the loop checks `stop`.
        unsafe { libc::poll(&mut ready, 1, 200) };
        while let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.write_all(answer.as_bytes());
        }
        if let Some(child) = announcer.as_mut() {
            if matches!(child.try_wait(), Ok(Some(_))) {
                announcer = None;
            }
        }
    }
    if let Some(mut child) = announcer {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(())
}

/// Gratuitous ARP at once and once more a second later (in case the first is lost), in the
/// background; `None` without arping.
fn announce(address: &str, device: &str) -> Option<std::process::Child> {
    Command::new("arping")
        .args(["-q", "-U", "-c", "2", "-w", "2", "-I", device, address])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|_| eprintln!("serve: arping not available: no gratuitous ARP"))
        .ok()
}
