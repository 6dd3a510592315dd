//! The `ip` resource type and ocf:heartbeat:IPaddr2 through the real monitor process, inside
//! network namespaces each test creates (`wp-XXXX-<tag>h` where the monitor runs, `...p` a
//! peer on the other end of a veth that watches the announcements) and deletes, also when it
//! fails. IPv4 addresses are in 198.18.0.0/15; IPv6 ones in 2001:2::/48 (RFC 5180's
//! benchmarking block, the IPv6 sibling of 198.18.0.0/15); neither leaves the namespaces.
//! Needs root: skipped loudly without it, required under CI=true.
mod monitor_support;

use monitor_support::system::{require_file, require_root, run, NetnsPair};
use monitor_support::*;
use wolfpack::monitor::{CheckLevel, Outcome};

/// Makes the peer create ARP entries from gratuitous ARPs (Linux ignores them otherwise).
fn peer_accepts_gratuitous_arp(pair: &NetnsPair) {
    run(
        "ip",
        &[
            "netns",
            "exec",
            &pair.peer,
            "sysctl",
            "-qw",
            "net.ipv4.conf.all.arp_accept=1",
            &format!("net.ipv4.conf.{}.arp_accept=1", pair.peer_if),
        ],
    );
}

#[test]
fn an_ipv4_address_comes_online_is_announced_checked_and_removed() {
    if !require_root("ipv4 resource", "network namespaces") {
        return;
    }
    let scratch = Scratch::new("ip-v4");
    let pair = NetnsPair::new("a");
    pair.ip(
        &pair.host,
        &["addr", "add", "198.18.21.1/24", "dev", &pair.host_if],
    );
    pair.ip(
        &pair.peer,
        &["addr", "add", "198.18.21.2/24", "dev", &pair.peer_if],
    );
    peer_accepts_gratuitous_arp(&pair);
    let mut client = spawn_monitor_via(&scratch, &pair.monitor_wrapper(&scratch.path));
    let params = [
        ("address", "198.18.21.10/24"),
        ("interface", pair.host_if.as_str()),
    ];
    assert_eq!(
        start_op(&mut client, "vip", "ip", &params, None),
        Outcome::Success
    );
    assert!(pair.host_has("198.18.21.10"));
    let mac = pair.host_mac();
    wait_pinging(
        &mut client,
        "the peer learns the address from a gratuitous ARP",
        || pair.peer_neighbour("198.18.21.10").contains(&mac),
    );
    for level in [CheckLevel::LooksAlive, CheckLevel::IsAlive] {
        assert_eq!(check_op(&mut client, "vip", level, None), Outcome::Success);
    }
    // Someone removes it: the checks see it.
    pair.ip(
        &pair.host,
        &["addr", "del", "198.18.21.10/24", "dev", &pair.host_if],
    );
    let reason = reason_of(
        &check_op(&mut client, "vip", CheckLevel::LooksAlive, None),
        false,
    );
    assert!(reason.contains("not configured"), "{reason}");
    // Down interface: IsAlive fails.
    pair.ip(
        &pair.host,
        &["addr", "add", "198.18.21.10/24", "dev", &pair.host_if],
    );
    pair.ip(&pair.host, &["link", "set", &pair.host_if, "down"]);
    let reason = reason_of(
        &check_op(&mut client, "vip", CheckLevel::IsAlive, None),
        false,
    );
    assert!(reason.contains("down"), "{reason}");
    pair.ip(&pair.host, &["link", "set", &pair.host_if, "up"]);

    assert_eq!(stop_op(&mut client, "vip", None), Outcome::Success);
    assert!(
        !pair.host_has("198.18.21.10"),
        "the stop removed the address"
    );
    assert_eq!(transitions_of(&scratch, "vip"), ["online", "offline"]);

    // An address already there with the same prefix is adopted (and removed by the stop);
    // with another prefix the start fails and leaves it alone.
    pair.ip(
        &pair.host,
        &["addr", "add", "198.18.21.11/24", "dev", &pair.host_if],
    );
    let adopt = [
        ("address", "198.18.21.11/24"),
        ("interface", pair.host_if.as_str()),
    ];
    assert_eq!(
        start_op(&mut client, "adopt", "ip", &adopt, None),
        Outcome::Success
    );
    assert_eq!(stop_op(&mut client, "adopt", None), Outcome::Success);
    assert!(!pair.host_has("198.18.21.11"));
    pair.ip(
        &pair.host,
        &["addr", "add", "198.18.21.12/25", "dev", &pair.host_if],
    );
    let other = [
        ("address", "198.18.21.12/24"),
        ("interface", pair.host_if.as_str()),
    ];
    let reason = reason_of(&start_op(&mut client, "other", "ip", &other, None), false);
    assert!(reason.contains("/25"), "{reason}");
    assert!(
        pair.host_has("198.18.21.12"),
        "somebody else's address is left alone"
    );

    // A missing interface fails the start with ip's own words.
    let nowhere = [
        ("address", "198.18.21.13/24"),
        ("interface", "wp-nonexistent"),
    ];
    let reason = reason_of(
        &start_op(&mut client, "nowhere", "ip", &nowhere, None),
        false,
    );
    assert!(reason.contains("ip addr add"), "{reason}");
    for bad in [
        vec![("address", "198.18.21.300/24"), ("interface", "x")],
        vec![("address", "198.18.21.14/24"), ("interface", "a b")],
        vec![("interface", "x")],
        vec![
            ("address", "198.18.21.14/24"),
            ("interface", "x"),
            ("label", "y"),
        ],
    ] {
        let outcome = start_op(&mut client, "bad", "ip", &bad, None);
        assert!(
            matches!(outcome, Outcome::Rejected(_)),
            "{bad:?}: {outcome:?}"
        );
    }
    assert!(transitions_of(&scratch, "bad").is_empty());
    shut_down(client);
}

/// Without `interface`, the address goes on the interface whose subnet contains it (what a
/// catalog resource needs when the nodes' interfaces are named differently); stop and checks
/// find it there. No such subnet fails the start and asks for `interface`.
#[test]
fn an_address_without_an_interface_goes_where_its_subnet_is() {
    if !require_root("ip resource by subnet", "network namespaces") {
        return;
    }
    let scratch = Scratch::new("ip-subnet");
    let pair = NetnsPair::new("d");
    pair.ip(
        &pair.host,
        &["addr", "add", "198.18.24.1/24", "dev", &pair.host_if],
    );
    let mut client = spawn_monitor_via(&scratch, &pair.monitor_wrapper(&scratch.path));
    let params = [("address", "198.18.24.10")];
    assert_eq!(
        start_op(&mut client, "vip", "ip", &params, None),
        Outcome::Success
    );
    assert!(pair.host_has("198.18.24.10"));
    for level in [CheckLevel::LooksAlive, CheckLevel::IsAlive] {
        assert_eq!(check_op(&mut client, "vip", level, None), Outcome::Success);
    }
    pair.ip(
        &pair.host,
        &["addr", "del", "198.18.24.10/32", "dev", &pair.host_if],
    );
    let reason = reason_of(
        &check_op(&mut client, "vip", CheckLevel::LooksAlive, None),
        false,
    );
    assert!(
        reason.contains("not configured on any interface"),
        "{reason}"
    );
    pair.ip(
        &pair.host,
        &["addr", "add", "198.18.24.10/32", "dev", &pair.host_if],
    );
    assert_eq!(stop_op(&mut client, "vip", None), Outcome::Success);
    assert!(
        !pair.host_has("198.18.24.10"),
        "the stop found and removed it"
    );
    assert_eq!(transitions_of(&scratch, "vip"), ["online", "offline"]);

    let outside = [("address", "198.18.25.10")];
    let reason = reason_of(
        &start_op(&mut client, "outside", "ip", &outside, None),
        false,
    );
    assert!(
        reason.contains("no interface has a subnet that contains 198.18.25.10"),
        "{reason}"
    );
    assert!(!pair.host_has("198.18.25.10"));
    shut_down(client);
}

#[test]
fn an_ipv6_address_is_announced_by_an_unsolicited_neighbour_advertisement() {
    if !require_root("ipv6 resource", "network namespaces")
        || !require_file(
            "ipv6 resource",
            "/usr/libexec/heartbeat/send_ua",
            "resource-agents",
        )
    {
        return;
    }
    let scratch = Scratch::new("ip-v6");
    let pair = NetnsPair::new("b");
    pair.ip(
        &pair.host,
        &[
            "addr",
            "add",
            "2001:2:0:22::1/64",
            "dev",
            &pair.host_if,
            "nodad",
        ],
    );
    pair.ip(
        &pair.peer,
        &[
            "addr",
            "add",
            "2001:2:0:22::2/64",
            "dev",
            &pair.peer_if,
            "nodad",
        ],
    );
    // The peer believes the address is elsewhere; an unsolicited NA with the override flag
    // corrects that.
    pair.ip(
        &pair.peer,
        &[
            "neigh",
            "add",
            "2001:2:0:22::10",
            "lladdr",
            "02:00:00:00:00:01",
            "dev",
            &pair.peer_if,
            "nud",
            "stale",
        ],
    );
    let mut client = spawn_monitor_via(&scratch, &pair.monitor_wrapper(&scratch.path));
    let params = [
        ("address", "2001:2:0:22::10/64"),
        ("interface", pair.host_if.as_str()),
    ];
    assert_eq!(
        start_op(&mut client, "vip6", "ip", &params, None),
        Outcome::Success
    );
    assert!(pair.host_has("2001:2:0:22::10"));
    let mac = pair.host_mac();
    wait_pinging(
        &mut client,
        "the peer learns the move from an unsolicited NA",
        || pair.peer_neighbour("2001:2:0:22::10").contains(&mac),
    );
    assert_eq!(
        check_op(&mut client, "vip6", CheckLevel::IsAlive, None),
        Outcome::Success
    );
    assert_eq!(stop_op(&mut client, "vip6", None), Outcome::Success);
    assert!(!pair.host_has("2001:2:0:22::10"));
    assert_eq!(transitions_of(&scratch, "vip6"), ["online", "offline"]);
    shut_down(client);
}

#[test]
fn heartbeat_ipaddr2_adds_and_removes_an_address_in_a_namespace() {
    if !require_root("IPaddr2", "network namespaces")
        || !require_file(
            "IPaddr2",
            "/usr/lib/ocf/resource.d/heartbeat/IPaddr2",
            "resource-agents",
        )
    {
        return;
    }
    let scratch = Scratch::new("ip-ipaddr2");
    let pair = NetnsPair::new("c");
    pair.ip(
        &pair.host,
        &["addr", "add", "198.18.23.1/24", "dev", &pair.host_if],
    );
    pair.ip(
        &pair.peer,
        &["addr", "add", "198.18.23.2/24", "dev", &pair.peer_if],
    );
    peer_accepts_gratuitous_arp(&pair);
    let mut client = spawn_monitor_via(&scratch, &pair.monitor_wrapper(&scratch.path));
    let params = [
        ("ip", "198.18.23.10"),
        ("cidr_netmask", "24"),
        ("nic", pair.host_if.as_str()),
    ];
    assert_eq!(
        start_op(&mut client, "vip2", "ocf:heartbeat:IPaddr2", &params, None),
        Outcome::Success
    );
    assert!(pair.host_has("198.18.23.10"));
    let mac = pair.host_mac();
    wait_pinging(
        &mut client,
        "IPaddr2's gratuitous ARP reaches the peer",
        || pair.peer_neighbour("198.18.23.10").contains(&mac),
    );
    for level in [CheckLevel::LooksAlive, CheckLevel::IsAlive] {
        assert_eq!(check_op(&mut client, "vip2", level, None), Outcome::Success);
    }
    assert_eq!(stop_op(&mut client, "vip2", None), Outcome::Success);
    assert!(!pair.host_has("198.18.23.10"));
    assert_eq!(transitions_of(&scratch, "vip2"), ["online", "offline"]);
    // IPaddr2's meta-data requires `ip`.
    let reason = reason_of(
        &start_op(
            &mut client,
            "noip",
            "ocf:heartbeat:IPaddr2",
            &[("cidr_netmask", "24")],
            None,
        ),
        true,
    );
    assert!(reason.contains("'ip'"), "{reason}");
    shut_down(client);
}
