//! Catalog groups on real nodes (loopback): OCF agents, dependencies, failover, restart in
//! place, failback windows. Needs Debian's resource-agents (tools/test.sh installs it); without
//! it the tests skip loudly, except under CI=true, where they must run.
mod common;

use common::Cluster;
use std::path::Path;

const DUMMY: &str = "/usr/lib/ocf/resource.d/heartbeat/Dummy";

fn have_dummy(test: &str) -> bool {
    if Path::new(DUMMY).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{DUMMY} is missing under CI: tools/test.sh installs resource-agents"
    );
    eprintln!("SKIPPED {test}: {DUMMY} is missing (apt-get install resource-agents)");
    false
}

/// The owner of `group` as node `asked` sees it, once its state there starts with `state`.
fn owner_when(cluster: &Cluster, asked: u8, group: &str, state: &str) -> Option<u64> {
    let groups = cluster.groups(asked);
    let (owner, shown) = groups.get(group)?;
    let matches = shown == state || shown.starts_with(&format!("{state}:"));
    matches.then_some(*owner).flatten()
}

fn wait_owner(cluster: &Cluster, asked: u8, group: &str, owner: u64) {
    cluster.wait_for(&format!("group {group} online on node {owner}"), || {
        // The owner reports the runner's state; every other node shows "on node N".
        owner_when(cluster, owner as u8, group, "online") == Some(owner)
            && cluster.groups(asked).get(group).and_then(|(o, _)| *o) == Some(owner)
    });
}

/// Lines of `ctl events --local` of node `id` that mention `needle`, in order.
fn local_events(cluster: &Cluster, id: u8, needle: &str) -> Vec<String> {
    let (_, text) = cluster.ctl(id, &["events", "--local"]);
    text.lines()
        .filter(|line| line.contains(needle))
        .map(str::to_string)
        .collect()
}

/// The position of the first line containing `needle`.
fn position(lines: &[String], needle: &str) -> usize {
    lines
        .iter()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no event '{needle}' in {lines:#?}"))
}

fn add_dummy_chain(cluster: &Cluster, group: &str) {
    cluster.ctl_ok(1, &["group", "add", group, "--preferred", "1,2"]);
    for (name, depends) in [("a", None), ("b", Some("a")), ("c", Some("b"))] {
        let mut words = vec![
            "resource",
            "add",
            name,
            "--group",
            group,
            "--type",
            "ocf:heartbeat:Dummy",
            "--looksalive",
            "1",
        ];
        if let Some(depends) = depends {
            words.extend(["--depends", depends]);
        }
        cluster.ctl_ok(1, &words);
    }
}

#[test]
fn an_ocf_dummy_group_starts_bottom_up_and_fails_over_when_its_owner_is_killed() {
    if !have_dummy("an_ocf_dummy_group_fails_over") {
        return;
    }
    let mut cluster = Cluster::new("grpfail", 3);
    cluster.catalog_mode();
    for id in 1..=3 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2, 3]);
    add_dummy_chain(&cluster, "web");
    wait_owner(&cluster, 3, "web", 1);
    assert!(
        cluster.ocf_state_dir(1).join("Dummy-c.state").exists(),
        "{:?} {}",
        std::fs::read_dir(cluster.ocf_state_dir(1))
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>()),
        cluster.logs()
    );
    // Bottom-up on the owner: a, then b, then c, each once its dependency is online.
    let started = local_events(&cluster, 1, "online-pending -> online");
    assert!(
        position(&started, "web/a") < position(&started, "web/b")
            && position(&started, "web/b") < position(&started, "web/c"),
        "{started:#?}"
    );
    cluster.kill(1);
    cluster.wait_membership(&[2, 3]);
    wait_owner(&cluster, 3, "web", 2);
    assert!(cluster.ocf_state_dir(2).join("Dummy-c.state").exists());
    let started = local_events(&cluster, 2, "online-pending -> online");
    assert!(
        position(&started, "web/a") < position(&started, "web/b")
            && position(&started, "web/b") < position(&started, "web/c"),
        "{started:#?}"
    );
    // A push migration: top-down on the old owner, then bottom-up on the new one.
    cluster.ctl_ok(2, &["group", "move", "web", "--to", "3"]);
    wait_owner(&cluster, 2, "web", 3);
    let stopped = local_events(&cluster, 2, "offline-pending -> offline");
    assert!(
        position(&stopped, "web/c") < position(&stopped, "web/b")
            && position(&stopped, "web/b") < position(&stopped, "web/a"),
        "{stopped:#?}"
    );
    assert!(!cluster.ocf_state_dir(2).join("Dummy-a.state").exists());
    // The merged log on any node shows both sides of the move.
    let (_, merged) = cluster.ctl(3, &["events"]);
    assert!(
        merged.contains("node=2") && merged.contains("node=3"),
        "{merged}"
    );
    cluster.assert_no_overlap();
}

#[test]
fn a_resource_failing_its_monitor_restarts_in_place_then_its_group_moves() {
    if !have_dummy("a_resource_failing_its_monitor_restarts_in_place") {
        return;
    }
    let mut cluster = Cluster::new("grprestart", 2);
    cluster.catalog_mode();
    for id in 1..=2 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2]);
    cluster.ctl_ok(1, &["group", "add", "app", "--preferred", "1,2"]);
    cluster.ctl_ok(
        1,
        &[
            "resource",
            "add",
            "d",
            "--group",
            "app",
            "--type",
            "ocf:heartbeat:Dummy",
            "--looksalive",
            "1",
            "--restart-threshold",
            "2",
            "--restart-period",
            "600",
        ],
    );
    wait_owner(&cluster, 2, "app", 1);
    // Dummy's monitor answers 7 (not running) once its state file is gone: a failure. The
    // first two are restarted in place (the start writes the file again); the third moves the
    // group to node 2.
    let state = cluster.ocf_state_dir(1).join("Dummy-d.state");
    let mut removed = 0;
    cluster.wait_for(
        "the group to move to node 2 after repeated failures",
        || {
            if state.exists()
                && cluster.groups(2).get("app").and_then(|(o, _)| *o) == Some(1)
                && std::fs::remove_file(&state).is_ok()
            {
                removed += 1;
            }
            owner_when(&cluster, 2, "app", "online") == Some(2)
        },
    );
    assert!(removed >= 3, "the state file was removed {removed} times");
    let restarts = local_events(&cluster, 1, "restarting in place");
    assert!(restarts.len() >= 2, "{restarts:#?}");
    let gave_up = local_events(&cluster, 1, "failed 3 times in 600 s (threshold 2)");
    assert!(
        !gave_up.is_empty(),
        "{:#?}",
        local_events(&cluster, 1, "web")
    );
    // Node 1 refuses the group for a while: it stays on node 2.
    let groups = cluster.groups(1);
    assert_eq!(
        groups.get("app").and_then(|(o, _)| *o),
        Some(2),
        "{groups:?}"
    );
    cluster.assert_no_overlap();
}

/// The local hour, as the daemon computes it (the same time zone: this process's).
fn local_hour() -> u8 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let time = now as libc::time_t;
    // SAFETY: localtime_r writes only into `broken_down`; a null return is checked.
    let mut broken_down: libc::tm = unsafe { std::mem::zeroed() };
    let result = unsafe { libc::localtime_r(&time, &mut broken_down) };
    assert!(!result.is_null(), "localtime_r failed");
    broken_down.tm_hour as u8
}

#[test]
fn failback_happens_inside_its_window_and_not_outside() {
    let mut cluster = Cluster::new("grpfailback", 2);
    cluster.catalog_mode();
    for id in 1..=2 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2]);
    // Two hours wide, so a test that crosses an hour boundary stays inside.
    let hour = local_hour();
    let open = format!("window={hour}-{}", (hour + 2) % 24);
    let closed = format!("window={}-{}", (hour + 2) % 24, (hour + 3) % 24);
    for (group, window) in [("open", &open), ("closed", &closed)] {
        cluster.ctl_ok(
            1,
            &[
                "group",
                "add",
                group,
                "--preferred",
                "1,2",
                "--failback",
                window,
            ],
        );
        cluster.ctl_ok(
            1,
            &[
                "resource",
                "add",
                &format!("{group}-p"),
                "--group",
                group,
                "--type",
                "process",
                "--param",
                "command=sleep 100000",
            ],
        );
    }
    wait_owner(&cluster, 2, "open", 1);
    wait_owner(&cluster, 2, "closed", 1);
    cluster.kill(1);
    cluster.wait_membership(&[2]);
    wait_owner(&cluster, 2, "open", 2);
    wait_owner(&cluster, 2, "closed", 2);
    cluster.start(1);
    cluster.wait_membership(&[1, 2]);
    // Inside its window the group goes back to its preferred node; outside it stays.
    wait_owner(&cluster, 2, "open", 1);
    let groups = cluster.groups(2);
    assert_eq!(
        groups.get("closed").and_then(|(o, _)| *o),
        Some(2),
        "{groups:?}"
    );
    cluster.assert_no_overlap();
}

/// A fake OCF agent under `root` (provider `wolfpack-test`): meta-data declares `state`
/// required and `extra` optional; `start_body` is its start action.
fn fake_agent(root: &Path, name: &str, start_body: &str) {
    let text = format!(
        r#"#!/bin/sh
case "$1" in
meta-data) cat <<'XML'
<?xml version="1.0"?>
<resource-agent name="{name}" version="1.0">
<parameters>
<parameter name="state" unique="1" required="1"><content type="string"/></parameter>
<parameter name="extra"><content type="string" default=""/></parameter>
</parameters>
<actions><action name="start" timeout="20s"/></actions>
</resource-agent>
XML
exit 0;;
validate-all) exit 0;;
start) {start_body};;
stop) rm -f "$OCF_RESKEY_state"; exit 0;;
monitor) [ -e "$OCF_RESKEY_state" ] && exit 0; exit 7;;
*) exit 3;;
esac
"#
    );
    write_executable(&root.join("resource.d/wolfpack-test").join(name), &text);
}

/// A file written mode 0755 (also what `system.rs` expects of its parent module).
pub fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create the directory");
    }
    std::fs::write(path, text).expect("write the file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn a_hanging_agent_fails_its_group_everywhere_and_metacharacters_reach_an_agent_verbatim() {
    let mut cluster = Cluster::new("grpbad", 2);
    cluster.catalog_mode();
    // Agents are written before any process is spawned: a fork that inherits a file still open
    // for writing makes its exec fail with ETXTBSY.
    let root = cluster.dir.join("ocf");
    fake_agent(&root, "hang", "exec sleep 100000");
    fake_agent(
        &root,
        "echo",
        r#"printf '%s' "$OCF_RESKEY_extra" > "$OCF_RESKEY_state"; exit 0"#,
    );
    let root_param = format!("wolfpack_ocf_root={}", root.display());
    for id in 1..=2 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2]);
    // A value a shell would expand, split or run: the agent must receive exactly these bytes.
    let marker = cluster.dir.join("shell-ran");
    let hostile = format!(
        "$(touch {0}); `touch {0}` ; \"quoted\" 'single' * ~ > <",
        marker.display()
    );
    let echoed = cluster.dir.join("echoed");
    cluster.ctl_ok(1, &["group", "add", "echo", "--preferred", "1,2"]);
    cluster.ctl_ok(
        1,
        &[
            "resource",
            "add",
            "echoer",
            "--group",
            "echo",
            "--type",
            "ocf:wolfpack-test:echo",
            "--param",
            &root_param,
            "--param",
            &format!("state={}", echoed.display()),
            "--param",
            &format!("extra={hostile}"),
        ],
    );
    wait_owner(&cluster, 2, "echo", 1);
    assert_eq!(
        std::fs::read_to_string(&echoed).expect("the agent wrote its state"),
        hostile
    );
    assert!(!marker.exists(), "a shell interpreted the parameter");
    // A start that hangs times out (2 s), is killed, counts as a failure, and with a restart
    // threshold of 0 gives the group up at once; node 2 then fails it too, and the group stays
    // offline (both refuse it) while the cluster goes on.
    cluster.ctl_ok(1, &["group", "add", "stuck", "--preferred", "1,2"]);
    cluster.ctl_ok(
        1,
        &[
            "resource",
            "add",
            "hanger",
            "--group",
            "stuck",
            "--type",
            "ocf:wolfpack-test:hang",
            "--param",
            &root_param,
            "--param",
            &format!("state={}", cluster.dir.join("hang.state").display()),
            "--timeout",
            "2",
            "--restart-threshold",
            "0",
        ],
    );
    cluster.wait_for("both nodes to give the hanging group up", || {
        let gave_up = |id| !local_events(&cluster, id, "failed 1 times").is_empty();
        gave_up(1) && gave_up(2)
    });
    let timed_out = local_events(&cluster, 1, "hanger");
    assert!(
        timed_out
            .iter()
            .any(|line| line.contains("timed out") || line.contains("timeout")),
        "{timed_out:#?}"
    );
    cluster.wait_for("the hanging group offline everywhere", || {
        cluster
            .groups(2)
            .get("stuck")
            .is_some_and(|(owner, state)| owner.is_none() && state.starts_with("offline"))
    });
    // Both daemons still answer, the other group still runs, and the database still commits.
    assert_eq!(cluster.groups(2).get("echo").and_then(|(o, _)| *o), Some(1));
    cluster.ctl_ok(2, &["update", "properties/after/bad-agents", "fine"]);
    assert!(cluster
        .ctl_ok(1, &["get", "properties/after"])
        .contains("fine"));
    // Unknown names get clear errors and change nothing.
    for words in [
        &["group", "move", "nosuch", "--to", "2"][..],
        &["resource", "online", "nosuch"][..],
        &[
            "resource",
            "add",
            "x",
            "--group",
            "nosuch",
            "--type",
            "process",
            "--param",
            "command=true",
        ][..],
    ] {
        let (code, text) = cluster.ctl(1, words);
        assert_eq!(code, Some(1), "{words:?}: {text}");
        assert!(text.contains("nosuch"), "{words:?}: {text}");
    }
    cluster.assert_no_overlap();
}

#[path = "monitor_support/system.rs"]
#[allow(dead_code)]
mod system;

#[test]
fn a_shared_filesystem_is_mounted_only_under_its_disk_lease_and_follows_its_group() {
    if !system::require_root("filesystem group", "loop devices and mount") {
        return;
    }
    let mut cluster = Cluster::new("grpfs", 2);
    cluster.catalog_mode();
    // One ext4 filesystem on a loop device stands for a shared LUN both nodes see.
    let mut device = system::LoopDevice::ext4(&cluster.dir.join("lun.img"), 24);
    for id in 1..=2 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2]);
    let shared_dir = cluster.dir.join("mnt");
    std::fs::create_dir_all(&shared_dir).expect("mount point");
    device.mount_point = Some(shared_dir.clone());
    cluster.ctl_ok(1, &["group", "add", "data", "--preferred", "1,2"]);
    cluster.ctl_ok(
        1,
        &[
            "resource",
            "add",
            "lun",
            "--group",
            "data",
            "--type",
            "filesystem",
            "--param",
            &format!("device={}", device.path.display()),
            "--param",
            &format!("directory={}", shared_dir.display()),
            "--param",
            "fstype=ext4",
        ],
    );
    let lun_online = |cluster: &Cluster, id: u8| {
        let events = local_events(cluster, id, "lun");
        events
            .iter()
            .any(|line| line.contains("online-pending -> online"))
            && system::is_mount_point(&shared_dir)
    };
    cluster.wait_for("lun mounted on node 1", || lun_online(&cluster, 1));
    // The lease came before the mount: the runner waited for it.
    let lun_events = local_events(&cluster, 1, "lun");
    assert!(
        position(&lun_events, "resource lease of lun held")
            < position(&lun_events, "online-pending -> online"),
        "{lun_events:#?}"
    );
    cluster.kill(1);
    // The killed node's monitor unmounts when its daemon's socket closes; node 2 mounts only
    // once it holds the lease, which waits out node 1's.
    cluster.wait_membership(&[2]);
    cluster.wait_for("lun mounted on node 2", || lun_online(&cluster, 2));
    let lun_events = local_events(&cluster, 2, "lun");
    assert!(
        position(&lun_events, "resource lease of lun held")
            < position(&lun_events, "online-pending -> online"),
        "{lun_events:#?}"
    );
    cluster.assert_no_overlap();
}

/// Issue 17, finding 1: a group that failed on every node used to stay refused for the whole
/// restart period (900 s) whatever the administrator did, and a new group that reused a failed
/// group's slot was refused everywhere without ever failing. Now each refusal is recorded by
/// name with its reason and end, shown by `ctl groups`, and a cleanup clears it everywhere.
#[test]
fn a_cleanup_clears_refusals_everywhere_and_a_reused_slot_is_not_refused() {
    let mut cluster = Cluster::new("grpclean", 2);
    cluster.catalog_mode();
    let root = cluster.dir.join("ocf");
    // Starts only while the file named by `extra` exists.
    fake_agent(
        &root,
        "flaky",
        r#"[ -e "$OCF_RESKEY_extra" ] || exit 1; touch "$OCF_RESKEY_state"; exit 0"#,
    );
    let root_param = format!("wolfpack_ocf_root={}", root.display());
    for id in 1..=2 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2]);
    let allowed = cluster.dir.join("allowed");
    let add_flaky = |group: &str, resource: &str| {
        cluster.ctl_ok(1, &["group", "add", group, "--preferred", "1,2"]);
        cluster.ctl_ok(
            1,
            &[
                "resource",
                "add",
                resource,
                "--group",
                group,
                "--type",
                "ocf:wolfpack-test:flaky",
                "--param",
                &root_param,
                "--param",
                &format!("state={}", cluster.dir.join(resource).display()),
                "--param",
                &format!("extra={}", allowed.display()),
                "--restart-threshold",
                "0",
            ],
        );
    };
    let refused_everywhere = |group: &str| {
        cluster.groups(2).get(group).is_some_and(|(owner, state)| {
            owner.is_none()
                && state.contains("refused on node 1 until")
                && state.contains("refused on node 2 until")
        })
    };
    let failures_on_1 =
        |resource: &str| local_events(&cluster, 1, &format!("resource {resource} failed")).len();
    add_flaky("web", "d");
    add_flaky("old", "o");
    cluster.wait_for("web and old refused on both nodes, with reasons", || {
        refused_everywhere("web") && refused_everywhere("old")
    });
    let (_, shown) = cluster.groups(1).remove("web").expect("web is listed");
    assert!(shown.contains("resource d failed"), "{shown}");
    // The cause is fixed; a resource cleanup places the group again at once (the refusals
    // would otherwise last the 900 s restart period).
    std::fs::write(&allowed, "").expect("write the flag file");
    cluster.ctl_ok(2, &["resource", "cleanup", "d"]);
    wait_owner(&cluster, 2, "web", 1);
    // A group cleanup: the group is tried again (and, still failing, refused again).
    let before = failures_on_1("o");
    std::fs::remove_file(&allowed).expect("remove the flag file");
    cluster.ctl_ok(1, &["group", "cleanup", "old"]);
    cluster.wait_for("old tried again on node 1 after its cleanup", || {
        failures_on_1("o") > before
    });
    cluster.wait_for("old refused on both nodes again", || {
        refused_everywhere("old")
    });
    // Removing the failed group frees its slot; a new group there owes nothing to it.
    cluster.ctl_ok(1, &["resource", "remove", "o"]);
    cluster.ctl_ok(1, &["group", "remove", "old"]);
    cluster.ctl_ok(1, &["group", "add", "fresh", "--preferred", "1,2"]);
    cluster.ctl_ok(
        1,
        &[
            "resource",
            "add",
            "sleeper",
            "--group",
            "fresh",
            "--type",
            "process",
            "--param",
            "command=sleep 100000",
        ],
    );
    wait_owner(&cluster, 2, "fresh", 1);
    cluster.assert_no_overlap();
}

/// The owner's daemon is SIGKILLed: its monitor fences and stops the group top-down, as a normal
/// stop would (issue 17): `app`, which needs `db`, is gone before `db` gets its SIGTERM. Each
/// process's SIGTERM trap appends a line; `app`'s takes 50 ms first, so `db` stopped alongside
/// it would write first. Needs only `process` resources.
#[test]
fn a_killed_owners_fence_stops_its_group_top_down() {
    let mut cluster = Cluster::new("fenceord", 3);
    cluster.catalog_mode();
    for id in 1..=3 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2, 3]);
    let order = cluster.path("stop-order");
    let shown = order.display();
    let trapping = |word: &str, before: &str| {
        format!(
            "command=trap '{before}echo {word} node=$WOLFPACK_NODE_ID >> {shown}; exit 0' TERM; \
             sleep 1000 & wait"
        )
    };
    let (db, app) = (
        trapping("db-stopping", ""),
        trapping("app-stopped", "sleep 0.05; "),
    );
    cluster.ctl_ok(1, &["group", "add", "web", "--preferred", "1,2"]);
    for (name, command, depends) in [("db", &db, None), ("app", &app, Some("db"))] {
        let mut words = vec![
            "resource", "add", name, "--group", "web", "--type", "process",
        ];
        words.extend(["--param", command.as_str()]);
        if let Some(depends) = depends {
            words.extend(["--depends", depends]);
        }
        cluster.ctl_ok(1, &words);
    }
    wait_owner(&cluster, 3, "web", 1);
    cluster.kill(1);
    let node_1_lines = || {
        std::fs::read_to_string(&order)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.ends_with(" node=1"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    cluster.wait_for("node 1's monitor stopped both", || {
        node_1_lines().len() == 2
    });
    assert_eq!(node_1_lines(), ["app-stopped node=1", "db-stopping node=1"]);
    wait_owner(&cluster, 3, "web", 2);
    cluster.assert_no_overlap();
}

/// An agent that appends, for every action it runs with a `state` parameter, a block to
/// `$OCF_RESKEY_state.env`: "== ACTION", its working directory, then its OCF_ variables.
/// Its meta-data declares `state` (required), `InstanceName` and `extra`.
fn recording_agent(root: &Path) {
    let text = r#"#!/bin/sh
if [ -n "$OCF_RESKEY_state" ]; then
    { echo "== $1"; pwd; env | grep '^OCF_' | sort; } >> "$OCF_RESKEY_state.env"
fi
case "$1" in
meta-data) cat <<'XML'
<?xml version="1.0"?>
<resource-agent name="recorder" version="1.0">
<parameters>
<parameter name="state" unique="1" required="1"><content type="string"/></parameter>
<parameter name="InstanceName"><content type="string"/></parameter>
<parameter name="extra"><content type="string" default=""/></parameter>
</parameters>
</resource-agent>
XML
exit 0;;
validate-all) exit 0;;
start) touch "$OCF_RESKEY_state"; exit 0;;
stop) rm -f "$OCF_RESKEY_state"; exit 0;;
monitor) [ -e "$OCF_RESKEY_state" ] && exit 0; exit 7;;
*) exit 3;;
esac
"#;
    write_executable(&root.join("resource.d/wolfpack-test/recorder"), text);
}

/// One recorded action: its name, working directory and OCF_ variables.
struct Recorded {
    action: String,
    directory: String,
    variables: std::collections::BTreeMap<String, String>,
}

fn recorded(state: &Path) -> Vec<Recorded> {
    let text = std::fs::read_to_string(format!("{}.env", state.display())).unwrap_or_default();
    text.split("== ")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut lines = block.lines();
            let action = lines.next().unwrap_or_default().to_string();
            let directory = lines.next().unwrap_or_default().to_string();
            let variables = lines
                .filter_map(|line| line.split_once('='))
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect();
            Recorded {
                action,
                directory,
                variables,
            }
        })
        .collect()
}

fn starts(state: &Path) -> usize {
    recorded(state)
        .iter()
        .filter(|record| record.action == "start")
        .count()
}

#[test]
fn an_ocf_agent_gets_pacemakers_environment_and_an_update_restarts_only_what_it_must() {
    let mut cluster = Cluster::new("grpenv", 2);
    cluster.catalog_mode();
    let root = cluster.dir.join("ocf");
    recording_agent(&root);
    let root_param = format!("wolfpack_ocf_root={}", root.display());
    for id in 1..=2 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2]);
    cluster.ctl_ok(1, &["group", "add", "rec", "--preferred", "1,2"]);
    let state = |name: &str| cluster.dir.join(format!("{name}.state"));
    let add = |name: &str, extra: &[&str]| -> (Option<i32>, String) {
        let state_param = format!("state={}", state(name).display());
        let mut words = vec![
            "resource",
            "add",
            name,
            "--group",
            "rec",
            "--type",
            "ocf:wolfpack-test:recorder",
            "--param",
            &root_param,
            "--param",
            &state_param,
        ];
        words.extend_from_slice(extra);
        cluster.ctl(1, &words)
    };

    // Parameters the meta-data does not declare are refused, naming them and the declared
    // ones; a wrong case is pointed out; --force goes ahead.
    let (code, text) = add("typo", &["--param", "statusurl=http://x/"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "ocf:wolfpack-test:recorder does not declare parameter statusurl (it declares \
             state, InstanceName, extra)"
        ) && text.contains("--force"),
        "{text}"
    );
    let (code, text) = add("typo", &["--param", "instancename=HA1"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("instancename (did you mean InstanceName?)"),
        "{text}"
    );
    assert!(cluster.ctl_ok(1, &["resources"]).lines().count() <= 1);

    // base (upper-case parameter, its own intervals and timeout), top needs base, side alone.
    let (code, text) = add(
        "base",
        &[
            "--param",
            "InstanceName=HA1_ASCS00",
            "--looksalive",
            "2",
            "--isalive",
            "3",
            "--timeout",
            "9",
        ],
    );
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = add("top", &["--depends", "base"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = add("side", &["--param", "colour=blue", "--force"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("warning: ocf:wolfpack-test:recorder does not declare parameter colour"),
        "{text}"
    );
    wait_owner(&cluster, 2, "rec", 1);
    cluster.wait_for("base's LooksAlive and IsAlive ran", || {
        let monitors: Vec<(String, String)> = recorded(&state("base"))
            .iter()
            .filter(|record| record.action == "monitor")
            .map(|record| {
                let variable = |name: &str| record.variables.get(name).cloned().unwrap_or_default();
                (
                    variable("OCF_CHECK_LEVEL"),
                    variable("OCF_RESKEY_CRM_meta_interval"),
                )
            })
            .collect();
        let has = |level: &str, interval: &str| {
            monitors.contains(&(level.to_string(), interval.to_string()))
        };
        has("0", "2000") && has("10", "3000")
    });
    let records = recorded(&state("base"));
    for record in &records {
        let variable = |name: &str| record.variables.get(name).map(String::as_str);
        let action = record.action.as_str();
        assert_eq!(record.directory, "/", "{action} runs in /");
        assert_eq!(
            variable("OCF_RESKEY_CRM_meta_name"),
            Some(action),
            "{action}"
        );
        assert_eq!(
            variable("OCF_RESKEY_CRM_meta_on_node"),
            Some("n1"),
            "{action}"
        );
        assert_eq!(
            variable("OCF_RESKEY_InstanceName"),
            Some("HA1_ASCS00"),
            "{action}"
        );
        assert_eq!(variable("OCF_RESOURCE_INSTANCE"), Some("base"), "{action}");
        let timeout: u64 = variable("OCF_RESKEY_CRM_meta_timeout")
            .and_then(|text| text.parse().ok())
            .unwrap_or_else(|| panic!("{action}: a timeout in ms"));
        assert!((1..=9_000).contains(&timeout), "{action}: {timeout}");
        let interval = variable("OCF_RESKEY_CRM_meta_interval");
        match (action, variable("OCF_CHECK_LEVEL")) {
            ("monitor", Some("0")) => assert!(
                matches!(interval, Some("0" | "2000")),
                "a probe or LooksAlive: {interval:?}"
            ),
            ("monitor", Some("10")) => assert_eq!(interval, Some("3000")),
            ("monitor", level) => panic!("monitor at level {level:?}"),
            _ => assert_eq!(interval, Some("0"), "{action}"),
        }
        for leaked in [
            "OCF_RESKEY_wolfpack_ocf_root",
            "OCF_RESKEY_wolfpack_node_name",
        ] {
            assert_eq!(variable(leaked), None, "{action}");
        }
    }
    let actions: Vec<&str> = records
        .iter()
        .map(|record| record.action.as_str())
        .collect();
    assert_eq!(
        actions[..4],
        ["meta-data", "validate-all", "start", "monitor"],
        "{actions:?}"
    );
    cluster.wait_for("top and side started", || {
        starts(&state("top")) == 1 && starts(&state("side")) == 1
    });

    // An update of base's parameters is checked like an add, then restarts base and top
    // (which needs it), not side; the new value reaches the agent.
    let (code, text) = cluster.ctl(1, &["resource", "update", "base", "--param", "extr=1"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("does not declare parameter extr"), "{text}");
    cluster.ctl_ok(
        2,
        &[
            "resource",
            "update",
            "base",
            "--param",
            "extra=v2",
            "--timeout",
            "8",
        ],
    );
    cluster.wait_for("base and top restarted", || {
        starts(&state("base")) == 2 && starts(&state("top")) == 2
    });
    wait_owner(&cluster, 2, "rec", 1);
    let records = recorded(&state("base"));
    let last_start = records
        .iter()
        .rev()
        .find(|record| record.action == "start")
        .expect("a start");
    assert_eq!(
        last_start
            .variables
            .get("OCF_RESKEY_extra")
            .map(String::as_str),
        Some("v2")
    );
    assert!(records.iter().any(|record| record.action == "stop"
        && record
            .variables
            .get("OCF_RESKEY_CRM_meta_interval")
            .map(String::as_str)
            == Some("0")));
    assert_eq!(starts(&state("side")), 1, "side kept running");
    let resources = cluster.ctl_ok(1, &["resources"]);
    assert!(resources.contains("InstanceName=HA1_ASCS00"), "{resources}");
    // A timeout alone restarts nothing.
    cluster.ctl_ok(1, &["resource", "update", "base", "--timeout", "7"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(starts(&state("base")), 2);
    cluster.assert_no_overlap();
}

/// A `script` resource whose start hangs and whose stop fails on the node written in
/// `DIR/stuck-node` until `DIR/fixed` exists, and works elsewhere (each node keeps its own
/// state file). Its group `app` prefers node 1 (then 2); its start times out after 2 s.
fn add_stuck_group(cluster: &Cluster, stuck_node: u8) -> std::path::PathBuf {
    let dir = cluster.dir.join("stuck");
    std::fs::create_dir_all(&dir).expect("the script's directory");
    std::fs::write(dir.join("stuck-node"), stuck_node.to_string()).expect("stuck-node");
    let script = cluster.dir.join("stuck.sh");
    write_executable(
        &script,
        r#"#!/bin/sh
state="$2/running.$WOLFPACK_NODE_ID"
stuck=no
if [ "$(cat "$2/stuck-node")" = "$WOLFPACK_NODE_ID" ] && [ ! -e "$2/fixed" ]; then stuck=yes; fi
case "$1" in
start) [ $stuck = yes ] && exec sleep 1000; touch "$state";;
stop) [ $stuck = yes ] && exit 1; rm -f "$state";;
status) [ -e "$state" ];;
*) exit 2;;
esac
"#,
    );
    let command =
        |action: &str| format!("{action}={} {action} {}", script.display(), dir.display());
    cluster.ctl_ok(1, &["group", "add", "app", "--preferred", "1,2"]);
    cluster.ctl_ok(
        1,
        &[
            "resource",
            "add",
            "stuck",
            "--group",
            "app",
            "--type",
            "script",
            "--param",
            &command("start"),
            "--param",
            &command("stop"),
            "--param",
            &command("status"),
            "--timeout",
            "2",
        ],
    );
    dir
}

/// Issue 17 (2): a start that times out, then a cleanup stop that fails again and again (the
/// monitor never confirms the resource offline), used to leave the group "online-pending:
/// waiting for stuck" for good, silently. Now, after its retries, the resource and its group
/// are blocked with the reason, in `ctl groups`, `ctl resources`, `ctl status` and the events;
/// the group stays on node 1 (the default policy without a watchdog: block), node 2 never
/// starts it, and once the stop succeeds the group recovers in place.
#[test]
fn a_stop_that_keeps_failing_blocks_its_group_here_with_the_reason_shown() {
    let mut cluster = Cluster::new("grpblock", 2);
    cluster.catalog_mode();
    for id in 1..=2 {
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2]);
    let dir = add_stuck_group(&cluster, 1);
    let blocked = |cluster: &Cluster| {
        cluster
            .groups(1)
            .get("app")
            .map(|(_, state)| state.clone())
            .filter(|state| state.starts_with("blocked: stop failed (stuck: "))
    };
    cluster.wait_for("group app blocked on node 1", || {
        blocked(&cluster).is_some()
    });
    let shown = blocked(&cluster).expect("blocked");
    assert!(shown.contains("offline not confirmed"), "{shown}");
    let (_, table) = cluster.ctl(1, &["groups"]);
    assert!(table.contains("blocked: stop failed (stuck: "), "{table}");
    let (_, resources) = cluster.ctl(1, &["resources"]);
    assert!(resources.contains("blocked: stop failed ("), "{resources}");
    let status = cluster.ctl_ok(1, &["status"]);
    assert!(
        status.contains("BLOCKED: group app: stop failed (stuck: ")
            && status.contains("on a failed stop: block"),
        "{status}"
    );
    let json = cluster.status(1).expect("status --json");
    assert_eq!(json["stop_failure"], "block", "{json}");
    assert_eq!(json["blocked"][0]["group"], "app", "{json}");
    let events = local_events(&cluster, 1, "app");
    assert!(
        events
            .iter()
            .any(|line| line.contains("stuck") && line.contains("-> blocked: stop failed (")),
        "{events:#?}"
    );
    // Held here: node 2 sees it on node 1 and never starts it.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(blocked(&cluster).is_some());
    assert_eq!(cluster.groups(2).get("app").and_then(|(o, _)| *o), Some(1));
    assert!(local_events(&cluster, 2, "stuck").is_empty());
    assert!(!dir.join("running.2").exists());
    // What kept the stop failing is fixed: the next retry confirms it, and it restarts here.
    std::fs::write(dir.join("fixed"), "").expect("fixed");
    wait_owner(&cluster, 2, "app", 1);
    assert!(dir.join("running.1").exists());
    let events = local_events(&cluster, 1, "stuck");
    assert!(
        events
            .iter()
            .any(|line| line.contains("blocked -> failed: stopped after its stop failed")),
        "{events:#?}"
    );
    cluster.assert_no_overlap();
}

/// CLOCK_MONOTONIC µs of a file's last modification (the loopback's event log clock).
fn modified_monotonic_us(path: &Path) -> u64 {
    let modified = std::fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .expect("the file's mtime");
    let age = std::time::SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    wolfpack::loopback::micros().saturating_sub(age.as_micros() as u64)
}

/// The resource's `online` lines in the loopback's event log: (µs, node).
fn online_lines(cluster: &Cluster, resource: &str) -> Vec<(u64, u8)> {
    let text = std::fs::read_to_string(&cluster.event_log).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at: u64 = fields.first()?.parse().ok()?;
            let node: u8 = fields.get(1)?.strip_prefix("node=")?.parse().ok()?;
            let named = fields.get(2)?.strip_prefix("resource=")? == resource;
            (named && fields.get(3) == Some(&"online")).then_some((at, node))
        })
        .collect()
}

/// Issue 17 (2), with a watchdog (here a file standing in for one): the default policy is to
/// leave. Node 1 blocks, leaves the cluster, stops pinging its monitor, whose dead-man fires
/// and leaves the watchdog armed (no magic close: the hardware would reset the node), and its
/// daemon exits; node 2 takes the group over only after node 1's last feed plus the watchdog's
/// timeout, that is after the reset would have stopped the resource node 1 could not.
#[test]
fn with_a_watchdog_a_failed_stop_makes_its_node_leave_and_the_group_moves_after_the_reset() {
    let mut cluster = Cluster::new("grpleave", 2);
    cluster.catalog_mode();
    let folder = cluster.dir.clone();
    let watchdog = |id: u8| folder.join(format!("watchdog-{id}"));
    for id in 1..=2 {
        std::fs::write(watchdog(id), "").expect("a watchdog stand-in");
        let args = vec!["--watchdog".into(), watchdog(id).display().to_string()];
        cluster.extra_args.insert(id, args);
        cluster.start(id);
    }
    cluster.wait_membership(&[1, 2]);
    let dir = add_stuck_group(&cluster, 1);
    let code = cluster.wait_exit(1);
    assert_ne!(code, Some(0), "node 1 must not exit gracefully");
    let log = std::fs::read_to_string(cluster.log(1)).unwrap_or_default();
    assert!(
        log.contains("blocked: stop failed (")
            && log.contains("leaving the cluster: the stop of resource stuck failed 5 times")
            && log.contains("the resource monitor exited"),
        "{log}"
    );
    let fed = std::fs::read(watchdog(1)).expect("the watchdog stand-in");
    assert!(!fed.is_empty(), "the monitor fed it");
    assert!(!fed.contains(&b'V'), "the watchdog was disarmed: {fed:?}");
    let last_feed_us = modified_monotonic_us(&watchdog(1));
    cluster.wait_membership(&[2]);
    wait_owner(&cluster, 2, "app", 2);
    assert!(dir.join("running.2").exists());
    let taken_over_us = online_lines(&cluster, "stuck")
        .into_iter()
        .find(|(_, node)| *node == 2)
        .map(|(at, _)| at)
        .expect("node 2's online line");
    let watchdog_ms = wolfpack::core::disk_records::Timing::default().watchdog_timeout_max_ms();
    assert!(
        taken_over_us > last_feed_us + watchdog_ms * 1000,
        "node 2 started it {} µs after node 1's last watchdog feed",
        taken_over_us as i64 - last_feed_us as i64
    );
}
