//! The `ocf:PROVIDER:AGENT` resource type through the real monitor process: Debian's
//! resource-agents (Dummy, anything) and fake agents in a temporary OCF root that hang, exit
//! outside the standard, print garbage, are missing, record their environment, declare
//! required parameters, or will not confirm a stop. Every test checks the event log and, by
//! pid, that what was started is gone.
mod monitor_support;

use monitor_support::system::require_file;
use monitor_support::*;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wolfpack::monitor::{CheckLevel, Outcome};

const HEARTBEAT: &str = "/usr/lib/ocf/resource.d/heartbeat";

/// A temporary OCF root with the fake provider `wolfpack-test`.
struct FakeRoot {
    root: PathBuf,
}

/// The default body of each action of a fake agent: a state file stands for the service.
const DEFAULT_ACTIONS: [(&str, &str); 5] = [
    (
        "meta-data",
        r#"cat <<'XML'
<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="Fake" version="1.0">
<parameters>
<parameter name="state" unique="1" required="1"><content type="string"/></parameter>
<parameter name="extra"><content type="string" default=""/></parameter>
</parameters>
<actions><action name="start" timeout="20s"/></actions>
</resource-agent>
XML
exit 0"#,
    ),
    ("validate-all", "exit 0"),
    ("start", "touch \"$OCF_RESKEY_state\"; exit 0"),
    ("stop", "rm -f \"$OCF_RESKEY_state\"; exit 0"),
    ("monitor", "[ -e \"$OCF_RESKEY_state\" ] && exit 0; exit 7"),
];

impl FakeRoot {
    fn new(scratch: &Scratch) -> FakeRoot {
        FakeRoot {
            root: scratch.file("ocf"),
        }
    }

    /// Writes agent `name`, whose actions run `overrides` or the defaults.
    fn agent(&self, name: &str, overrides: &[(&str, &str)]) {
        let mut text = String::from("#!/bin/sh\ncase \"$1\" in\n");
        for (action, default) in DEFAULT_ACTIONS {
            let body = overrides
                .iter()
                .find(|(overridden, _)| *overridden == action)
                .map_or(default, |(_, body)| body);
            text.push_str(&format!("{action})\n{body}\n;;\n"));
        }
        text.push_str("*) exit 3;;\nesac\n");
        let path = self.root.join("resource.d/wolfpack-test").join(name);
        write_executable(&path, &text);
    }

    fn root_param(&self) -> String {
        self.root.to_string_lossy().into_owned()
    }

    /// The parameters of a fake agent: our OCF root, and its state file `file` (returned too).
    fn state_params(&self, scratch: &Scratch, file: &str) -> (PathBuf, Vec<(String, String)>) {
        let state = scratch.file(file);
        let params = vec![
            ("wolfpack_ocf_root".to_string(), self.root_param()),
            ("state".to_string(), state.to_string_lossy().into_owned()),
        ];
        (state, params)
    }
}

/// Borrowed pairs for the monitor client's calls.
fn pairs(owned: &[(String, String)]) -> Vec<(&str, &str)> {
    owned
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect()
}

fn pid_in(path: &Path) -> i32 {
    read_pid(path)
}

#[test]
fn heartbeat_dummy_starts_checks_and_stops() {
    if !require_file(
        "heartbeat_dummy_starts_checks_and_stops",
        &format!("{HEARTBEAT}/Dummy"),
        "resource-agents",
    ) {
        return;
    }
    let scratch = Scratch::new("ocf-dummy");
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let state = scratch.file("dummy.state");
    let state_param = state.to_string_lossy().into_owned();
    let params = [("state", state_param.as_str())];
    assert_eq!(
        start_op(&mut client, "dummy", "ocf:heartbeat:Dummy", &params, None),
        Outcome::Success
    );
    assert!(state.exists(), "Dummy's start creates its state file");
    assert_eq!(transitions_of(&scratch, "dummy"), ["online"]);
    for level in [CheckLevel::LooksAlive, CheckLevel::IsAlive] {
        assert_eq!(
            check_op(&mut client, "dummy", level, None),
            Outcome::Success
        );
    }
    // A second Start of an online resource succeeds without running anything.
    assert_eq!(
        start_op(&mut client, "dummy", "ocf:heartbeat:Dummy", &params, None),
        Outcome::Success
    );

    // The service "dies": monitor answers 7 (not running), and the check says so.
    std::fs::remove_file(&state).expect("remove the state file");
    let reason = reason_of(
        &check_op(&mut client, "dummy", CheckLevel::LooksAlive, None),
        false,
    );
    assert!(reason.contains("exit 7 (not running)"), "{reason}");
    std::fs::write(&state, b"").expect("restore the state file");

    assert_eq!(stop_op(&mut client, "dummy", None), Outcome::Success);
    assert!(!state.exists(), "Dummy's stop removes its state file");
    assert_eq!(transitions_of(&scratch, "dummy"), ["online", "offline"]);
    shut_down(client);
}

#[test]
fn heartbeat_anything_keeps_a_sleep_running_and_stops_it() {
    if !require_file(
        "heartbeat_anything_keeps_a_sleep_running_and_stops_it",
        &format!("{HEARTBEAT}/anything"),
        "resource-agents",
    ) {
        return;
    }
    let scratch = Scratch::new("ocf-anything");
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let pidfile = scratch.file("anything.pid");
    let pidfile_param = pidfile.to_string_lossy().into_owned();
    let params = [
        ("binfile", "/bin/sleep"),
        ("cmdline_options", "1000"),
        ("pidfile", pidfile_param.as_str()),
    ];
    assert_eq!(
        start_op(
            &mut client,
            "sleeper",
            "ocf:heartbeat:anything",
            &params,
            None
        ),
        Outcome::Success
    );
    let pid = pid_in(&pidfile);
    assert!(process_exists(pid), "anything started the sleep");
    // The agent writes the pid file as it forks; the child may still be exec'ing sleep, when
    // its command line reads empty (a flake seen under a loaded CI run).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let command = loop {
        let command = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if command.starts_with("/bin/sleep") || std::time::Instant::now() > deadline {
            break command;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(command.starts_with("/bin/sleep"), "{command:?}");
    assert_eq!(
        check_op(&mut client, "sleeper", CheckLevel::IsAlive, None),
        Outcome::Success
    );
    assert_eq!(stop_op(&mut client, "sleeper", None), Outcome::Success);
    assert!(
        !process_exists(pid),
        "the sleep is gone once the stop is done"
    );
    assert_eq!(transitions_of(&scratch, "sleeper"), ["online", "offline"]);

    // Its meta-data declares binfile required: a Start without it is rejected, naming both.
    let outcome = start_op(&mut client, "nobin", "ocf:heartbeat:anything", &[], None);
    let reason = reason_of(&outcome, true);
    assert!(
        reason.contains("binfile") && reason.contains("ocf:heartbeat:anything"),
        "{reason}"
    );
    assert!(
        transitions_of(&scratch, "nobin").is_empty(),
        "a rejected start logs nothing"
    );
    shut_down(client);
}

#[test]
fn required_parameters_come_from_the_meta_data() {
    let scratch = Scratch::new("ocf-required");
    let fake = FakeRoot::new(&scratch);
    fake.agent("Fake", &[]);
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let root = fake.root_param();
    let outcome = start_op(
        &mut client,
        "fake",
        "ocf:wolfpack-test:Fake",
        &[("wolfpack_ocf_root", &root), ("extra", "x")],
        None,
    );
    let reason = reason_of(&outcome, true);
    assert!(
        reason.contains("'state'") && reason.contains("ocf:wolfpack-test:Fake"),
        "the rejection names the parameter and the agent: {reason}"
    );
    assert!(
        event_log(&scratch).is_empty(),
        "nothing started, nothing logged"
    );

    let state = scratch.file("fake.state");
    let state_param = state.to_string_lossy().into_owned();
    let params = [
        ("wolfpack_ocf_root", root.as_str()),
        ("state", state_param.as_str()),
    ];
    assert_eq!(
        start_op(&mut client, "fake", "ocf:wolfpack-test:Fake", &params, None),
        Outcome::Success
    );
    assert!(state.exists());
    shut_down(client);
    assert!(!state.exists(), "the shutdown stopped it through the agent");
    assert_eq!(transitions_of(&scratch, "fake"), ["online", "offline"]);
}

#[test]
fn a_missing_agent_is_rejected_as_not_installed() {
    let scratch = Scratch::new("ocf-missing");
    let fake = FakeRoot::new(&scratch);
    fake.agent("Fake", &[]);
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let root = fake.root_param();
    let outcome = start_op(
        &mut client,
        "ghost",
        "ocf:wolfpack-test:Foo",
        &[("wolfpack_ocf_root", &root)],
        None,
    );
    let reason = reason_of(&outcome, true);
    assert!(
        reason.starts_with("agent not installed: ocf:wolfpack-test:Foo"),
        "{reason}"
    );
    for kind in [
        "ocf:wolfpack-test",
        "ocf:../x:Fake",
        "ocf:wolfpack-test:../Fake",
        "ocf::Fake",
    ] {
        let outcome = start_op(
            &mut client,
            "ghost",
            kind,
            &[("wolfpack_ocf_root", &root)],
            None,
        );
        assert!(
            matches!(outcome, Outcome::Rejected(_)),
            "{kind}: {outcome:?}"
        );
    }
    assert!(event_log(&scratch).is_empty());
    shut_down(client);
}

#[test]
fn a_hanging_start_gets_sigterm_then_sigkill_and_its_group_dies() {
    let scratch = Scratch::new("ocf-hang");
    let fake = FakeRoot::new(&scratch);
    let pids = scratch.file("hang.pids");
    let terms = scratch.file("hang.terms");
    // The agent ignores SIGTERM (recording it) and leaves a background child in its group.
    let start = format!(
        "trap 'echo term >> {terms}' TERM; sleep 1000 & echo $! >> {pids}; echo $$ >> {pids}; \
         while :; do sleep 1000 & wait $!; done",
        terms = terms.display(),
        pids = pids.display()
    );
    fake.agent("Hang", &[("start", &start)]);
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let (_, owned) = fake.state_params(&scratch, "hang.state");
    let params = pairs(&owned);
    let command = start_kind("hang", "ocf:wolfpack-test:Hang", &params, Some(1_500));
    let (outcome, elapsed_ms) = run_op(
        &mut client,
        &command,
        "hang",
        wolfpack::monitor::Operation::Start,
    );
    assert_eq!(outcome, Outcome::TimedOut);
    assert!(elapsed_ms >= 1_400, "timed out after {elapsed_ms} ms");
    let text = std::fs::read_to_string(&pids).expect("the agent recorded its pids");
    for pid in text
        .lines()
        .map(|line| line.trim().parse::<i32>().expect("pid"))
    {
        assert!(
            !process_exists(pid),
            "process {pid} of the hung agent survived"
        );
    }
    let term_text = std::fs::read_to_string(&terms).unwrap_or_default();
    assert!(term_text.contains("term"), "SIGTERM came before SIGKILL");
    // The cleanup ran the agent's stop before `offline`.
    assert_eq!(transitions_of(&scratch, "hang"), ["online", "offline"]);
    shut_down(client);
}

#[test]
fn exit_codes_outside_the_standard_and_garbage_output_fail_clearly() {
    let scratch = Scratch::new("ocf-exit42");
    let fake = FakeRoot::new(&scratch);
    fake.agent("Exit42", &[("start", "echo 'about to fail' >&2; exit 42")]);
    fake.agent(
        "Noisy",
        &[("start", "printf '\\001\\002\\377\\376 garbage\\033[31m\\n'; head -c 20000 /dev/zero | tr '\\0' x; echo; echo ocf-exit-reason:disk on fire >&2; exit 1")],
    );
    fake.agent(
        "GarbageMeta",
        &[("meta-data", "printf '\\377\\376<<<not xml'; exit 0")],
    );
    fake.agent(
        "BadValidate",
        &[(
            "validate-all",
            "echo 'ocf-exit-reason:missing config' >&2; exit 6",
        )],
    );
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let (_, owned) = fake.state_params(&scratch, "x.state");
    let params = pairs(&owned);

    let reason = reason_of(
        &start_op(
            &mut client,
            "e42",
            "ocf:wolfpack-test:Exit42",
            &params,
            None,
        ),
        false,
    );
    assert!(
        reason.contains("exit 42, outside the OCF standard"),
        "{reason}"
    );
    assert!(
        reason.contains("about to fail"),
        "the output is in the reason: {reason}"
    );
    assert_eq!(transitions_of(&scratch, "e42"), ["online", "offline"]);

    let reason = reason_of(
        &start_op(
            &mut client,
            "noisy",
            "ocf:wolfpack-test:Noisy",
            &params,
            None,
        ),
        false,
    );
    assert!(reason.contains("exit 1 (generic error)"), "{reason}");
    assert!(
        reason.contains("disk on fire"),
        "the agent's exit reason is quoted: {reason}"
    );
    assert!(
        !reason.chars().any(char::is_control),
        "no control characters: {reason:?}"
    );
    let log = std::fs::read(scratch.file("noisy.log")).expect("the resource log");
    assert!(
        log.len() <= 4096 + 200,
        "the captured output is bounded: {} bytes",
        log.len()
    );

    let reason = reason_of(
        &start_op(
            &mut client,
            "gm",
            "ocf:wolfpack-test:GarbageMeta",
            &params,
            None,
        ),
        true,
    );
    assert!(reason.contains("not OCF meta-data"), "{reason}");

    let reason = reason_of(
        &start_op(
            &mut client,
            "bv",
            "ocf:wolfpack-test:BadValidate",
            &params,
            None,
        ),
        true,
    );
    assert!(
        reason.contains("validate-all: exit 6 (not configured)")
            && reason.contains("missing config"),
        "{reason}"
    );
    assert!(transitions_of(&scratch, "gm").is_empty() && transitions_of(&scratch, "bv").is_empty());
    shut_down(client);
}

#[test]
fn parameters_arrive_verbatim_in_a_clean_environment() {
    let scratch = Scratch::new("ocf-env");
    let fake = FakeRoot::new(&scratch);
    let record = scratch.file("env.out");
    let level = scratch.file("level.out");
    let start = format!(
        "env > {record}; printf '%s' \"$OCF_RESKEY_extra\" > {record}.value; touch \"$OCF_RESKEY_state\"",
        record = record.display()
    );
    let monitor = format!(
        "echo \"$OCF_CHECK_LEVEL $OCF_RESKEY_CRM_meta_interval\" >> {}; [ -e \"$OCF_RESKEY_state\" ] && exit 0; exit 7",
        level.display()
    );
    fake.agent("Env", &[("start", &start), ("monitor", &monitor)]);
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let root = fake.root_param();
    let state = scratch.file("env.state");
    let state_param = state.to_string_lossy().into_owned();
    let canary = scratch.file("injected");
    let nasty = format!(
        "$(touch {c}); `touch {c}` ; touch {c} | x && y || z 'q' \"d\" \\ * ? ~ $HOME\nline2",
        c = canary.display()
    );
    let params = [
        ("wolfpack_ocf_root", root.as_str()),
        ("wolfpack_is_alive_interval_ms", "30000"),
        ("state", state_param.as_str()),
        ("extra", nasty.as_str()),
    ];
    assert_eq!(
        start_op(
            &mut client,
            "env-test",
            "ocf:wolfpack-test:Env",
            &params,
            Some(7_000)
        ),
        Outcome::Success
    );
    let value = std::fs::read_to_string(format!("{}.value", record.display())).expect("value");
    assert_eq!(value, nasty, "the parameter arrives byte for byte");
    assert!(!canary.exists(), "no shell interpreted the parameter");
    let environment = std::fs::read_to_string(&record).expect("env");
    let variable = |name: &str| {
        environment
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    assert_eq!(
        variable("OCF_RESOURCE_INSTANCE").as_deref(),
        Some("env-test")
    );
    assert_eq!(variable("OCF_ROOT").as_deref(), Some(root.as_str()));
    assert_eq!(variable("OCF_RESOURCE_TYPE").as_deref(), Some("Env"));
    assert_eq!(
        variable("OCF_RESOURCE_PROVIDER").as_deref(),
        Some("wolfpack-test")
    );
    assert_eq!(
        variable("OCF_RESKEY_state").as_deref(),
        Some(state_param.as_str())
    );
    let timeout: u64 = variable("OCF_RESKEY_CRM_meta_timeout")
        .expect("timeout")
        .parse()
        .expect("ms");
    assert!(
        (6_000..=7_000).contains(&timeout),
        "the start's timeout in ms: {timeout}"
    );
    assert_eq!(
        variable("OCF_RESKEY_CRM_meta_interval").as_deref(),
        Some("0")
    );
    assert!(
        variable("OCF_RESKEY_wolfpack_ocf_root").is_none(),
        "monitor parameters stay out"
    );
    for leaked in ["HOME", "CARGO", "RUST_LOG", "USER"] {
        assert!(
            variable(leaked).is_none() && !environment.contains(&format!("\n{leaked}_")),
            "{leaked} leaked into the agent's environment:\n{environment}"
        );
    }

    assert_eq!(
        check_op(&mut client, "env-test", CheckLevel::IsAlive, None),
        Outcome::Success
    );
    assert_eq!(
        check_op(&mut client, "env-test", CheckLevel::LooksAlive, None),
        Outcome::Success
    );
    let levels = std::fs::read_to_string(&level).expect("levels");
    let lines: Vec<&str> = levels.lines().collect();
    // The probe after start, then IsAlive (level 10, its interval), then LooksAlive (0).
    assert_eq!(lines, ["0 0", "10 30000", "0 10000"], "{levels}");
    shut_down(client);
}

#[test]
fn a_stop_the_agent_does_not_confirm_fails_and_offline_waits_for_the_cleanup() {
    let scratch = Scratch::new("ocf-unconfirmed");
    let fake = FakeRoot::new(&scratch);
    let stuck = scratch.file("stuck");
    // stop exits 0 but monitor keeps answering "running" while the file `stuck` exists.
    let monitor = format!(
        "[ -e {} ] && exit 0; [ -e \"$OCF_RESKEY_state\" ] && exit 0; exit 7",
        stuck.display()
    );
    fake.agent("Sticky", &[("monitor", &monitor)]);
    let mut client = spawn_monitor(&scratch, 5_000, None);
    let (_, owned) = fake.state_params(&scratch, "sticky.state");
    let params = pairs(&owned);
    assert_eq!(
        start_op(
            &mut client,
            "sticky",
            "ocf:wolfpack-test:Sticky",
            &params,
            None
        ),
        Outcome::Success
    );
    std::fs::write(&stuck, b"").expect("make it stick");
    let reason = unconfirmed_reason_of(&stop_op(&mut client, "sticky", None));
    assert!(reason.contains("not reported stopped"), "{reason}");
    assert_eq!(
        transitions_of(&scratch, "sticky"),
        ["online"],
        "no offline line while the agent says it runs"
    );
    std::fs::remove_file(&stuck).expect("unstick");
    wait_pinging(&mut client, "the cleanup confirms the stop", || {
        transitions_of(&scratch, "sticky") == ["online", "offline"]
    });
    std::thread::sleep(Duration::from_millis(50));
    shut_down(client);
}

#[test]
fn the_dead_man_fence_stops_an_ocf_resource_through_its_agent() {
    let scratch = Scratch::new("ocf-fence");
    let fake = FakeRoot::new(&scratch);
    let pids = scratch.file("daemon.pid");
    // The agent leaves a daemon in its process group, as `anything` does.
    let start = format!(
        "touch \"$OCF_RESKEY_state\"; sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > {}",
        pids.display()
    );
    fake.agent("Fenced", &[("start", &start)]);
    let mut client = spawn_monitor(&scratch, 1_000, None);
    let (state, owned) = fake.state_params(&scratch, "fenced.state");
    let params = pairs(&owned);
    assert_eq!(
        start_op(
            &mut client,
            "fenced",
            "ocf:wolfpack-test:Fenced",
            &params,
            None
        ),
        Outcome::Success
    );
    let daemon = read_pid(&pids);
    assert!(process_exists(daemon));
    // Silence: the monitor fences after 1 s, runs the agent's stop and exits 1.
    assert_eq!(wait_exit(&mut client), Some(1));
    assert!(!state.exists(), "the agent's stop ran");
    assert!(
        !process_exists(daemon),
        "the daemon in the agent's group is gone"
    );
    assert_eq!(transitions_of(&scratch, "fenced"), ["online", "offline"]);
}

#[test]
fn every_action_gets_pacemakers_operation_variables_and_runs_in_root() {
    let scratch = Scratch::new("ocf-meta-env");
    let fake = FakeRoot::new(&scratch);
    let record = scratch.file("actions");
    // Every action appends "ACTION|cwd|name|interval|on_node|timeout|level|InstanceName".
    let line = format!(
        "echo \"$1|$(pwd)|$OCF_RESKEY_CRM_meta_name|$OCF_RESKEY_CRM_meta_interval|\
         $OCF_RESKEY_CRM_meta_on_node|$OCF_RESKEY_CRM_meta_timeout|$OCF_CHECK_LEVEL|\
         $OCF_RESKEY_InstanceName\" >> {}",
        record.display()
    );
    let with_line = |body: &str| format!("{line}; {body}");
    let overrides: Vec<(&str, String)> = DEFAULT_ACTIONS
        .iter()
        .map(|(action, body)| (*action, with_line(body)))
        .collect();
    let overrides: Vec<(&str, &str)> = overrides
        .iter()
        .map(|(action, body)| (*action, body.as_str()))
        .collect();
    fake.agent("Meta", &overrides);
    let mut config = wolfpack::monitor::MonitorConfig::new(2, 5_000, scratch.file("events.log"));
    config.node_name = Some("alpha".to_string());
    let mut client =
        wolfpack::monitor::MonitorClient::spawn(Path::new(env!("CARGO_BIN_EXE_wolfpack")), config)
            .expect("spawn monitor");
    let (_, mut owned) = fake.state_params(&scratch, "meta.state");
    // What the group runner sends for a resource checked every 4 s and 40 s.
    owned.push(("wolfpack_looks_alive_interval_ms".into(), "4000".into()));
    owned.push(("wolfpack_is_alive_interval_ms".into(), "40000".into()));
    owned.push(("InstanceName".into(), "HA1_ASCS00".into()));
    let params = pairs(&owned);
    let kind = "ocf:wolfpack-test:Meta";
    assert_eq!(
        start_op(&mut client, "meta", kind, &params, Some(7_000)),
        Outcome::Success
    );
    for (level, timeout_ms) in [
        (CheckLevel::LooksAlive, 3_000),
        (CheckLevel::IsAlive, 6_000),
    ] {
        assert_eq!(
            check_op(&mut client, "meta", level, Some(timeout_ms)),
            Outcome::Success
        );
    }
    assert_eq!(stop_op(&mut client, "meta", Some(5_000)), Outcome::Success);
    shut_down(client);

    let text = std::fs::read_to_string(&record).expect("the agent recorded its actions");
    let rows: Vec<Vec<&str>> = text.lines().map(|row| row.split('|').collect()).collect();
    let actions: Vec<&str> = rows.iter().map(|row| row[0]).collect();
    assert_eq!(
        actions,
        [
            "meta-data",
            "validate-all",
            "start",
            "monitor",
            "monitor",
            "monitor",
            "stop",
            "monitor"
        ],
        "{text}"
    );
    // (interval, timeout range, level) of each action, in order.
    let expected: [(&str, std::ops::RangeInclusive<u64>, &str); 8] = [
        ("0", 1..=7_000, ""),
        ("0", 1..=7_000, ""),
        ("0", 1..=7_000, ""),
        ("0", 1..=7_000, "0"),
        ("4000", 3_000..=3_000, "0"),
        ("40000", 6_000..=6_000, "10"),
        ("0", 1..=5_000, ""),
        ("0", 1..=5_000, "0"),
    ];
    for (row, (interval, timeout, level)) in rows.iter().zip(expected) {
        let [action, directory, name, given_interval, node, given_timeout, given_level, instance] =
            row[..]
        else {
            panic!("a malformed row: {row:?}");
        };
        assert_eq!(directory, "/", "{action} runs in /");
        assert_eq!(name, action, "CRM_meta_name");
        assert_eq!(given_interval, interval, "{action}: CRM_meta_interval");
        assert_eq!(node, "alpha", "{action}: CRM_meta_on_node");
        let given_timeout: u64 = given_timeout.parse().expect("a timeout in ms");
        assert!(
            timeout.contains(&given_timeout),
            "{action}: {given_timeout}"
        );
        assert_eq!(given_level, level, "{action}: OCF_CHECK_LEVEL");
        assert_eq!(instance, "HA1_ASCS00", "{action}: an upper-case parameter");
    }
}
