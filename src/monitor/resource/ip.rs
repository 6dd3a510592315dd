//! The `ip` resource type: a virtual IPv4 or IPv6 address on an interface, announced to the
//! segment when it comes online (a virtual server's address, DESIGN.md §1).
//!
//! Parameters: `address` (required: `198.18.10.5/24`, `2001:2::5/64`; without `/prefix` a host
//! address, /32 or /128) and `interface` (required: the interface name).
//!
//! - start: an address already on the interface with the same prefix is adopted (as IPaddr2
//!   does: a monitor restarted after a crash, or an administrator's manual add, must not fail
//!   the group); with another prefix the start fails. Otherwise `ip addr add ADDRESS/PREFIX dev
//!   INTERFACE` (IPv6 with `nodad`: the cluster, not duplicate detection, keeps the address on
//!   one node, and a tentative address could not be announced or used for a second). Online once
//!   the address is configured; the announcements then run in the background, so the start does
//!   not wait for them: IPv4 sends ANNOUNCE_COUNT gratuitous ARPs ANNOUNCE_INTERVAL_MS apart
//!   (`arping -U -c 1` from iputils-arping, each run by a fixed `sh` script that gets the
//!   address and interface as positional arguments, never as text it interprets); IPv6 sends as
//!   many unsolicited neighbour advertisements with `send_ua` from the resource-agents package
//!   (what IPaddr2 uses). Without `arping` or `send_ua` the start still succeeds and the monitor
//!   logs that the neighbours learn the move only when their cache entries expire (IPv6: the
//!   kernel announces only if `ndisc_notify` is set).
//! - stop: the announcements are killed; `ip addr del`; done once the address is gone from the
//!   interface (an address already gone, or an interface removed, counts as stopped; the same
//!   address with another prefix is somebody else's and is left alone).
//! - LooksAlive: the address is configured on the interface (getifaddrs: no program runs).
//!   IsAlive: that, and the interface is up.
use super::engine::{Driver, Engine, Next, Op, Step, StepResult};
use super::{find_program, param, plain_environment, reject_unknown, Settings};
use crate::monitor::constants::{ANNOUNCE_COUNT, ANNOUNCE_INTERVAL_MS};
use crate::monitor::protocol::CheckLevel;
use std::ffi::CStr;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

const KNOWN: [&str; 2] = ["address", "interface"];
/// Where resource-agents installs its unsolicited-NA sender (Debian; older layouts second).
const SEND_UA_PATHS: [&str; 2] = [
    "/usr/libexec/heartbeat/send_ua",
    "/usr/lib/heartbeat/send_ua",
];
/// The announcer of IPv4: $1 arping, $2 interface, $3 address, $4 count, $5 interval (s).
const ARP_SCRIPT: &str = "i=0; while [ \"$i\" -lt \"$4\" ]; do \
     \"$1\" -q -U -c 1 -w 1 -I \"$2\" \"$3\" & i=$((i + 1)); sleep \"$5\"; done; wait";

/// How an address stands on the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Presence {
    Absent,
    Configured,
    /// The address is there with this other prefix length.
    OtherPrefix(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Add,
    Delete,
}

/// The driver of one `ip` resource.
pub struct IpDriver {
    address: IpAddr,
    prefix: u8,
    interface: String,
    ip_program: PathBuf,
    action: Action,
}

/// Parses `198.18.0.1/24`, `2001:2::1/64` or a bare address (a host prefix).
pub fn parse_address(text: &str) -> Result<(IpAddr, u8), String> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address
        .parse()
        .map_err(|_| format!("ip: '{text}' is not an IPv4 or IPv6 address"))?;
    let longest = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => longest,
        Some(prefix) => match prefix.parse::<u8>() {
            Ok(prefix) if prefix <= longest => prefix,
            _ => return Err(format!("ip: '{text}': the prefix must be 0 to {longest}")),
        },
    };
    if address.is_unspecified() || address.is_multicast() || address.is_loopback() {
        return Err(format!("ip: '{text}' cannot be a virtual address"));
    }
    Ok((address, prefix))
}

/// Whether `name` may be an interface name (Linux: 1 to 15 bytes, no '/', ':' or space).
fn is_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && !name.starts_with('-')
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && !matches!(byte, b'/' | b':'))
}

/// The parameters of an `ip` resource: the address, its prefix and the interface. Touches
/// nothing (whether the interface exists is for the node that starts it), so the catalog
/// applies the same rules when an administrator adds a resource.
pub fn check_params(params: &[(String, String)]) -> Result<(IpAddr, u8, &str), String> {
    reject_unknown("ip", params, &KNOWN)?;
    let text = param(params, "address").ok_or("ip: the parameter 'address' is required")?;
    let (address, prefix) = parse_address(text)?;
    let interface =
        param(params, "interface").ok_or("ip: the parameter 'interface' is required")?;
    if !is_interface_name(interface) {
        return Err(format!("ip: '{interface}' is not an interface name"));
    }
    Ok((address, prefix, interface))
}

/// Makes an `ip` resource; rejects bad parameters and a missing `ip` command.
pub fn new(params: &[(String, String)], settings: Settings) -> Result<Engine<IpDriver>, String> {
    let (address, prefix, interface) = check_params(params)?;
    let ip_program =
        find_program("ip").ok_or("ip: the 'ip' command (iproute2) is not installed")?;
    let driver = IpDriver {
        address,
        prefix,
        interface: interface.to_string(),
        ip_program,
        action: Action::Add,
    };
    Ok(Engine::new(driver, settings))
}

/// One address of an interface, as getifaddrs reports it.
#[derive(Clone, Copy, Debug)]
struct InterfaceAddress {
    address: IpAddr,
    prefix: u8,
    up: bool,
}

/// The addresses configured on `interface` (IPv4 addresses with a label report the label as
/// their interface name, so a labelled address does not count).
fn addresses_on(interface: &str) -> io::Result<Vec<InterfaceAddress>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `list`, freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs returned, not yet freed; its name is
        // a NUL-terminated string and its address pointers are null or point at sockaddrs of
        // the family they say.
        unsafe {
            let item = &*entry;
            entry = item.ifa_next;
            if item.ifa_addr.is_null()
                || CStr::from_ptr(item.ifa_name).to_bytes() != interface.as_bytes()
            {
                continue;
            }
            let up = item.ifa_flags & libc::IFF_UP as u32 != 0;
            let (address, prefix) = match i32::from((*item.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let address = &*(item.ifa_addr as *const libc::sockaddr_in);
                    let octets = address.sin_addr.s_addr.to_ne_bytes();
                    let prefix = match item.ifa_netmask.is_null() {
                        true => 32,
                        false => {
                            let mask = &*(item.ifa_netmask as *const libc::sockaddr_in);
                            mask.sin_addr.s_addr.count_ones() as u8
                        }
                    };
                    (IpAddr::from(octets), prefix)
                }
                libc::AF_INET6 => {
                    let address = &*(item.ifa_addr as *const libc::sockaddr_in6);
                    let prefix = match item.ifa_netmask.is_null() {
                        true => 128,
                        false => {
                            let mask = &*(item.ifa_netmask as *const libc::sockaddr_in6);
                            mask.sin6_addr
                                .s6_addr
                                .iter()
                                .map(|byte| byte.count_ones())
                                .sum::<u32>() as u8
                        }
                    };
                    (IpAddr::from(address.sin6_addr.s6_addr), prefix)
                }
                _ => continue,
            };
            found.push(InterfaceAddress {
                address,
                prefix,
                up,
            });
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    Ok(found)
}

impl IpDriver {
    fn spec(&self) -> String {
        format!("{}/{}", self.address, self.prefix)
    }

    fn presence(&self) -> Result<(Presence, bool), String> {
        let addresses = addresses_on(&self.interface)
            .map_err(|error| format!("ip: cannot list the addresses: {error}"))?;
        let up = addresses.iter().any(|entry| entry.up);
        let presence = match addresses.iter().find(|entry| entry.address == self.address) {
            None => Presence::Absent,
            Some(entry) if entry.prefix == self.prefix => Presence::Configured,
            Some(entry) => Presence::OtherPrefix(entry.prefix),
        };
        Ok((presence, up))
    }

    fn run(&mut self, action: Action) -> Next {
        self.action = action;
        let (word, what) = match action {
            Action::Add => ("add", "ip addr add"),
            Action::Delete => ("del", "ip addr del"),
        };
        let mut args: Vec<String> = ["addr", word, &self.spec(), "dev", &self.interface]
            .iter()
            .map(|arg| arg.to_string())
            .collect();
        if action == Action::Add && self.address.is_ipv6() {
            args.push("nodad".to_string());
        }
        Next::Run(Step::new(
            what,
            self.ip_program.clone(),
            args,
            plain_environment(),
        ))
    }

    fn failure(&self, what: &str, result: &StepResult) -> String {
        format!(
            "{what} {} dev {}: {}{}",
            self.spec(),
            self.interface,
            result.describe(),
            result.quote()
        )
    }
}

impl Driver for IpDriver {
    fn begin(&mut self, op: Op, _timeout: Duration) -> Next {
        let (presence, up) = match self.presence() {
            Ok(state) => state,
            Err(reason) => return Next::Done(Err(reason)),
        };
        let here = format!("{} on {}", self.spec(), self.interface);
        match (op, presence) {
            (Op::Admit, _) => Next::Done(Ok(())),
            (Op::Start, Presence::Configured) => {
                log::info!("ip: {here} is already configured: adopted");
                Next::Done(Ok(()))
            }
            (Op::Start, Presence::OtherPrefix(prefix)) => Next::Done(Err(format!(
                "ip: {} is already on {} with prefix /{prefix}, not /{}",
                self.address, self.interface, self.prefix
            ))),
            (Op::Start, Presence::Absent) => self.run(Action::Add),
            // The address with another prefix is not ours (a failed start adopted nothing).
            (Op::Stop, Presence::Absent | Presence::OtherPrefix(_)) => Next::Done(Ok(())),
            (Op::Stop, Presence::Configured) => self.run(Action::Delete),
            (Op::Check(_), Presence::Absent | Presence::OtherPrefix(_)) => {
                Next::Done(Err(format!("ip: {here} is not configured")))
            }
            (Op::Check(CheckLevel::IsAlive), Presence::Configured) if !up => {
                Next::Done(Err(format!("ip: {} is down", self.interface)))
            }
            (Op::Check(_), Presence::Configured) => Next::Done(Ok(())),
        }
    }

    fn step_done(&mut self, result: StepResult) -> Next {
        let presence = match self.presence() {
            Ok((presence, _)) => presence,
            Err(reason) => return Next::Done(Err(reason)),
        };
        match (self.action, presence) {
            (Action::Add, Presence::Configured) => Next::Done(Ok(())),
            (Action::Add, _) => Next::Done(Err(self.failure("ip addr add", &result))),
            (Action::Delete, Presence::Absent | Presence::OtherPrefix(_)) => Next::Done(Ok(())),
            (Action::Delete, _) => Next::Done(Err(self.failure("ip addr del", &result))),
        }
    }

    fn after_start(&mut self) -> Vec<Step> {
        let count = ANNOUNCE_COUNT.to_string();
        let (what, program, args) = match self.address {
            IpAddr::V4(address) => {
                let Some(arping) = find_program("arping") else {
                    log::warn!(
                        "ip: arping (iputils-arping) is not installed: no gratuitous ARP for {}; \
                         neighbours learn the move when their ARP entries expire",
                        self.spec()
                    );
                    return Vec::new();
                };
                let interval = format!("{:.3}", ANNOUNCE_INTERVAL_MS as f64 / 1000.0);
                let args = [
                    "-c",
                    ARP_SCRIPT,
                    "wolfpack-announce",
                    &arping.to_string_lossy(),
                    &self.interface,
                    &address.to_string(),
                    &count,
                    &interval,
                ]
                .iter()
                .map(|arg| arg.to_string())
                .collect();
                ("gratuitous ARP", PathBuf::from("/bin/sh"), args)
            }
            IpAddr::V6(address) => {
                let Some(send_ua) = SEND_UA_PATHS
                    .iter()
                    .map(PathBuf::from)
                    .find(|path| find_program(&path.to_string_lossy()).is_some())
                else {
                    log::warn!(
                        "ip: send_ua (resource-agents) is not installed: no unsolicited neighbour \
                         advertisement for {}; neighbours learn the move when their entries \
                         expire, or from the kernel if ndisc_notify is set",
                        self.spec()
                    );
                    return Vec::new();
                };
                let args = [
                    "-i",
                    &ANNOUNCE_INTERVAL_MS.to_string(),
                    "-c",
                    &count,
                    &address.to_string(),
                    &self.prefix.to_string(),
                    &self.interface,
                ]
                .iter()
                .map(|arg| arg.to_string())
                .collect();
                ("unsolicited neighbour advertisement", send_ua, args)
            }
        };
        vec![Step::new(what, program, args, plain_environment())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_and_without_prefix() {
        assert_eq!(
            parse_address("198.18.10.5/24"),
            Ok(("198.18.10.5".parse().unwrap(), 24))
        );
        assert_eq!(
            parse_address("198.18.10.5"),
            Ok(("198.18.10.5".parse().unwrap(), 32))
        );
        assert_eq!(
            parse_address("2001:2::5/64"),
            Ok(("2001:2::5".parse().unwrap(), 64))
        );
        for bad in [
            "198.18.10.5/33",
            "nonsense",
            "1.2.3.4/x",
            "0.0.0.0",
            "::1",
            "1.2.3.4; ls",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interface_names_are_checked() {
        assert!(is_interface_name("eth0"));
        assert!(is_interface_name("wp-1a2b-n16e1"));
        for bad in ["", "a/b", "-x", "eth0:1", "a b", "sixteen-bytes-xx", ".."] {
            assert!(!is_interface_name(bad), "{bad}");
        }
    }
}
