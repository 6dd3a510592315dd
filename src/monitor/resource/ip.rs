//! The `ip` resource type: a virtual IPv4 or IPv6 address on an interface, announced to the
//! segment when it comes online (a virtual server's address, DESIGN.md §1).
//!
//! Parameters: `address` (required: `198.18.10.5/24`, `2001:2::5/64`; without `/prefix` a host
//! address, /32 or /128) and `interface` (optional: the interface name). Without `interface`
//! the start picks the interface one of whose configured subnets contains the address, the
//! longest prefix winning (IPaddr2 does the same when `nic` is omitted); none, or a tie between
//! two interfaces, fails the start and asks for `interface`. Loopback interfaces and labelled
//! IPv4 addresses (`eth0:1`) are not candidates. Why: a catalog resource has one set of
//! parameters for every node, and nodes' interfaces are often named differently (`eno1` here,
//! `ens192` there); the subnet is what they share. Stop and checks then look for the address
//! on every interface (where it is, is where the start put it).
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

/// Where the address goes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum InterfaceChoice {
    /// The `interface` parameter.
    Given(String),
    /// No `interface`: the one whose subnet contains the address (see the module doc).
    BySubnet,
}

/// The driver of one `ip` resource.
pub struct IpDriver {
    address: IpAddr,
    prefix: u8,
    choice: InterfaceChoice,
    /// The interface of the current operation: the given one, or (chosen by subnet) where the
    /// address is or where the start puts it; empty while not known.
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

/// The parameters of an `ip` resource: the address, its prefix and the interface when given.
/// Touches nothing (whether the interface exists, or which one has the subnet, is for the node
/// that starts it), so the catalog applies the same rules when an administrator adds a
/// resource.
pub fn check_params(params: &[(String, String)]) -> Result<(IpAddr, u8, Option<&str>), String> {
    reject_unknown("ip", params, &KNOWN)?;
    let text = param(params, "address").ok_or("ip: the parameter 'address' is required")?;
    let (address, prefix) = parse_address(text)?;
    let interface = param(params, "interface");
    if let Some(interface) = interface {
        if !is_interface_name(interface) {
            return Err(format!("ip: '{interface}' is not an interface name"));
        }
    }
    Ok((address, prefix, interface))
}

/// Makes an `ip` resource; rejects bad parameters and a missing `ip` command.
pub fn new(params: &[(String, String)], settings: Settings) -> Result<Engine<IpDriver>, String> {
    let (address, prefix, interface) = check_params(params)?;
    let ip_program =
        find_program("ip").ok_or("ip: the 'ip' command (iproute2) is not installed")?;
    let choice = match interface {
        Some(name) => InterfaceChoice::Given(name.to_string()),
        None => InterfaceChoice::BySubnet,
    };
    let driver = IpDriver {
        address,
        prefix,
        interface: interface.unwrap_or_default().to_string(),
        choice,
        ip_program,
        action: Action::Add,
    };
    Ok(Engine::new(driver, settings))
}

/// One address of an interface, as getifaddrs reports it.
#[derive(Clone, Debug)]
struct InterfaceAddress {
    /// The interface (for a labelled IPv4 address, its label: `eth0:1`).
    interface: String,
    address: IpAddr,
    prefix: u8,
    up: bool,
    loopback: bool,
}

/// The addresses configured on `interface` (IPv4 addresses with a label report the label as
/// their interface name, so a labelled address does not count).
fn addresses_on(interface: &str) -> io::Result<Vec<InterfaceAddress>> {
    let mut addresses = all_addresses()?;
    addresses.retain(|entry| entry.interface == interface);
    Ok(addresses)
}

/// Whether `address` lies in `network`/`prefix` (false across address families).
fn subnet_contains(network: IpAddr, prefix: u8, address: IpAddr) -> bool {
    match (network, address) {
        (IpAddr::V4(network), IpAddr::V4(address)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(network) & mask == u32::from(address) & mask
        }
        (IpAddr::V6(network), IpAddr::V6(address)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(network) & mask == u128::from(address) & mask
        }
        _ => false,
    }
}

/// The interface for `address` when none is given: the one with the longest configured prefix
/// that contains it, or why there is none (no such subnet, or two interfaces tie).
fn interface_by_subnet(addresses: &[InterfaceAddress], address: IpAddr) -> Result<String, String> {
    let candidates: Vec<&InterfaceAddress> = addresses
        .iter()
        .filter(|entry| !entry.loopback && !entry.interface.contains(':'))
        .filter(|entry| entry.address != address)
        .filter(|entry| subnet_contains(entry.address, entry.prefix, address))
        .collect();
    let Some(longest) = candidates.iter().map(|entry| entry.prefix).max() else {
        return Err(format!(
            "ip: no interface has a subnet that contains {address}; give the parameter \
             'interface'"
        ));
    };
    let mut names: Vec<&str> = candidates
        .iter()
        .filter(|entry| entry.prefix == longest)
        .map(|entry| entry.interface.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    match names.as_slice() {
        [only] => Ok(only.to_string()),
        tied => Err(format!(
            "ip: the interfaces {} all have a /{longest} subnet that contains {address}; give \
             the parameter 'interface'",
            tied.join(", ")
        )),
    }
}

/// Every address of every interface.
fn all_addresses() -> io::Result<Vec<InterfaceAddress>> {
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
            if item.ifa_addr.is_null() {
                continue;
            }
            let name = CStr::from_ptr(item.ifa_name).to_string_lossy().into_owned();
            let up = item.ifa_flags & libc::IFF_UP as u32 != 0;
            let loopback = item.ifa_flags & libc::IFF_LOOPBACK as u32 != 0;
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
                interface: name,
                address,
                prefix,
                up,
                loopback,
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

    /// How the address stands on `self.interface`, and whether that interface is up.
    fn presence(&self) -> Result<(Presence, bool), String> {
        let addresses = addresses_on(&self.interface)
            .map_err(|error| format!("ip: cannot list the addresses: {error}"))?;
        Ok(self.presence_among(&addresses))
    }

    fn presence_among(&self, addresses: &[InterfaceAddress]) -> (Presence, bool) {
        let up = addresses.iter().any(|entry| entry.up);
        let presence = match addresses.iter().find(|entry| entry.address == self.address) {
            None => Presence::Absent,
            Some(entry) if entry.prefix == self.prefix => Presence::Configured,
            Some(entry) => Presence::OtherPrefix(entry.prefix),
        };
        (presence, up)
    }

    /// Before an operation: which interface it concerns (the given one; or, chosen by subnet,
    /// the one that has the address, else for a start the one whose subnet contains it) and
    /// how the address stands there. Without an interface chosen, the address is on none.
    fn locate(&mut self, op: Op) -> Result<(Presence, bool), String> {
        if let InterfaceChoice::Given(_) = self.choice {
            return self.presence();
        }
        let addresses =
            all_addresses().map_err(|error| format!("ip: cannot list the addresses: {error}"))?;
        let holder = addresses
            .iter()
            .find(|entry| entry.address == self.address && !entry.interface.contains(':'));
        self.interface = match (holder, op) {
            (Some(entry), _) => entry.interface.clone(),
            (None, Op::Start) => interface_by_subnet(&addresses, self.address)?,
            (None, _) => String::new(),
        };
        let on_interface: Vec<InterfaceAddress> = addresses
            .into_iter()
            .filter(|entry| entry.interface == self.interface)
            .collect();
        Ok(self.presence_among(&on_interface))
    }

    /// Where the address is or goes, for messages.
    fn place(&self) -> &str {
        match self.interface.is_empty() {
            true => "any interface",
            false => &self.interface,
        }
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
        let (presence, up) = match self.locate(op) {
            Ok(state) => state,
            Err(reason) => return Next::Done(Err(reason)),
        };
        let here = format!("{} on {}", self.spec(), self.place());
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
            (Op::Check(_), Presence::Absent | Presence::OtherPrefix(_)) => Next::Done(Err(
                format!("ip: {} is not configured on {}", self.spec(), self.place()),
            )),
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

#[cfg(test)]
mod interface_choice_tests {
    use super::*;

    /// An interface's address as getifaddrs would report it (`parse_address` refuses loopback
    /// addresses, so this parses by hand).
    fn entry(interface: &str, address: &str, loopback: bool) -> InterfaceAddress {
        let (address, prefix) = address.split_once('/').unwrap();
        InterfaceAddress {
            interface: interface.to_string(),
            address: address.parse().unwrap(),
            prefix: prefix.parse().unwrap(),
            up: true,
            loopback,
        }
    }

    #[test]
    fn subnets_contain_what_their_prefix_covers() {
        let vip: IpAddr = "198.18.0.100".parse().unwrap();
        assert!(subnet_contains("198.18.0.1".parse().unwrap(), 24, vip));
        assert!(!subnet_contains("198.18.1.1".parse().unwrap(), 24, vip));
        assert!(subnet_contains("10.0.0.1".parse().unwrap(), 0, vip));
        assert!(!subnet_contains("198.18.0.1".parse().unwrap(), 32, vip));
        assert!(!subnet_contains("2001:2::1".parse().unwrap(), 0, vip));
        let vip6: IpAddr = "2001:2:0:1::10".parse().unwrap();
        assert!(subnet_contains("2001:2:0:1::1".parse().unwrap(), 64, vip6));
        assert!(!subnet_contains("2001:2:0:2::1".parse().unwrap(), 64, vip6));
    }

    #[test]
    fn the_interface_whose_subnet_holds_the_address_is_chosen() {
        let vip: IpAddr = "198.18.0.100".parse().unwrap();
        let addresses = [
            entry("lo", "127.0.0.1/8", true),
            entry("wp-1a2b-n1e0", "198.18.0.1/24", false),
            entry("wp-1a2b-n1e1", "198.18.1.1/24", false),
            entry("wide", "198.18.0.0/15", false),
        ];
        // The longest prefix wins, as in a route lookup.
        assert_eq!(
            interface_by_subnet(&addresses, vip),
            Ok("wp-1a2b-n1e0".to_string())
        );
        let outside: IpAddr = "198.51.100.1".parse().unwrap();
        let none = interface_by_subnet(&addresses, outside).unwrap_err();
        assert!(
            none.contains("no interface") && none.contains("'interface'"),
            "{none}"
        );
        let tied = [
            entry("eth0", "198.18.0.1/24", false),
            entry("eth1", "198.18.0.2/24", false),
        ];
        let why = interface_by_subnet(&tied, vip).unwrap_err();
        assert!(why.contains("eth0, eth1"), "{why}");
        // Two subnets of one interface are no tie.
        let one = [
            entry("eth0", "198.18.0.1/24", false),
            entry("eth0", "198.18.0.2/24", false),
        ];
        assert_eq!(interface_by_subnet(&one, vip), Ok("eth0".to_string()));
    }

    #[test]
    fn loopback_labels_and_the_address_itself_are_not_candidates() {
        let vip: IpAddr = "198.18.0.100".parse().unwrap();
        let addresses = [
            entry("lo", "198.18.0.1/24", true),
            entry("eth0:1", "198.18.0.2/24", false),
            entry("eth1", "198.18.0.100/24", false),
        ];
        assert!(interface_by_subnet(&addresses, vip).is_err());
    }

    #[test]
    fn the_interface_parameter_is_optional_but_checked_when_given() {
        let params = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect()
        };
        assert_eq!(
            check_params(&params(&[("address", "198.18.0.100")])),
            Ok(("198.18.0.100".parse().unwrap(), 32, None))
        );
        assert!(check_params(&params(&[
            ("address", "198.18.0.100"),
            ("interface", "a b")
        ]))
        .is_err());
        assert!(check_params(&params(&[("interface", "eth0")])).is_err());
    }
}
