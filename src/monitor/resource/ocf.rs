//! The `ocf:PROVIDER:AGENT` resource type: unmodified OCF resource agents (the Open Cluster
//! Framework's resource agent API, as Pacemaker runs them; Debian's `resource-agents` package
//! ships about a hundred) from `$OCF_ROOT/resource.d/PROVIDER/AGENT`.
//!
//! Parameters: every parameter `key` (`[A-Za-z0-9_]`, spelled as the agent's meta-data spells
//! it: SAPInstance's `InstanceName`) becomes `OCF_RESKEY_key` for the agent, except these,
//! which are the monitor's own (the prefix `wolfpack_` is reserved):
//! - `wolfpack_ocf_root`: the OCF root (default /usr/lib/ocf; tests point it at a temporary one);
//! - `wolfpack_looks_alive_interval_ms`, `wolfpack_is_alive_interval_ms`: the intervals the
//!   daemon checks at (the group runner sets them from the resource's `looksalive` and
//!   `isalive`), passed to `monitor` as OCF_RESKEY_CRM_meta_interval (default 10000 and
//!   60000; 0 means a probe to agents, so it is used only for the monitors that verify a start
//!   or a stop);
//! - `wolfpack_node_name`: this node's name in the node table (the monitor's server sets it
//!   from `--node-name`), passed as OCF_RESKEY_CRM_meta_on_node.
//!
//! The prefix `CRM_meta_` is refused too: those variables are the cluster's to set.
//!
//! Environment of every action: exactly PATH, OCF_ROOT, OCF_RA_VERSION_MAJOR/MINOR (1.0),
//! OCF_RESOURCE_INSTANCE (the resource name), OCF_RESOURCE_TYPE, OCF_RESOURCE_PROVIDER,
//! OCF_RESKEY_CRM_meta_name (the action: meta-data, validate-all, start, stop, monitor),
//! OCF_RESKEY_CRM_meta_timeout (the operation's timeout in ms), OCF_RESKEY_CRM_meta_interval
//! (the check's interval in ms for LooksAlive and IsAlive, else 0),
//! OCF_RESKEY_CRM_meta_on_node, OCF_CHECK_LEVEL (monitor only) and the OCF_RESKEY_*
//! parameters; the working directory is `/` (`children.rs`). Values are passed verbatim in
//! the environment; no shell ever sees them.
//!
//! Operations (each action a step of `engine.rs`, with its exit code read per the OCF standard:
//! 0 success, 1 generic error, 2 invalid argument, 3 unimplemented, 4 insufficient privileges,
//! 5 not installed, 6 not configured, 7 not running, 8 running master, 9 failed master; any
//! other code is an error that says it is outside the standard):
//! - admit (before the `online` line; a failure rejects the `Start`): `meta-data`, whose
//!   `<parameter name=".." required="1">` elements must all be given; then `validate-all`
//!   (0 passes; 3, unimplemented, passes too).
//! - start: `start` (0), then `monitor` as a probe (interval 0, OCF_CHECK_LEVEL 0): 0 or 8
//!   passes; 7 means the start did not work.
//! - stop: `stop` (0), then a probe that must answer 7; anything the agent left in its process
//!   groups is then killed (see `engine.rs`).
//! - LooksAlive: `monitor` with OCF_CHECK_LEVEL=0; IsAlive: OCF_CHECK_LEVEL=10. 0 or 8 passes.
//!
//! A missing agent file rejects the `Start` at once ("agent not installed: ocf:P:A").
//! Parameters the meta-data does not declare are not refused here: `ctl resource add|update`
//! refuses them (unless forced) where the administrator can correct them (`undeclared`).
use super::engine::{Driver, Engine, Keep, Next, Op, Step, StepResult};
use super::{find_program, Settings};
use crate::monitor::constants::{META_DATA_BYTES_MAX, OCF_ROOT_DEFAULT, PROGRAM_PATH};
use crate::monitor::protocol::CheckLevel;
use std::path::PathBuf;
use std::time::Duration;

/// OCF exit codes.
pub const OCF_SUCCESS: i32 = 0;
pub const OCF_ERR_UNIMPLEMENTED: i32 = 3;
pub const OCF_NOT_RUNNING: i32 = 7;
pub const OCF_RUNNING_MASTER: i32 = 8;

const PARAM_ROOT: &str = "wolfpack_ocf_root";
/// The parameter the group runner gives LooksAlive's interval in (ms).
pub const PARAM_LOOKS_ALIVE_INTERVAL: &str = "wolfpack_looks_alive_interval_ms";
/// The parameter the group runner gives IsAlive's interval in (ms).
pub const PARAM_IS_ALIVE_INTERVAL: &str = "wolfpack_is_alive_interval_ms";
/// The parameter the monitor's server gives this node's name in.
pub const PARAM_NODE_NAME: &str = "wolfpack_node_name";
/// Parameters with this prefix would collide with the variables the cluster sets.
const CLUSTER_PREFIX: &str = "CRM_meta_";
const LOOKS_ALIVE_INTERVAL_MS_DEFAULT: u64 = 10_000;
const IS_ALIVE_INTERVAL_MS_DEFAULT: u64 = 60_000;

/// What an OCF exit code means.
pub fn meaning(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => "success",
        1 => "generic error",
        2 => "invalid argument",
        3 => "unimplemented",
        4 => "insufficient privileges",
        5 => "not installed",
        6 => "not configured",
        7 => "not running",
        8 => "running master",
        9 => "failed master",
        _ => return None,
    })
}

/// Whether `name` may be an OCF provider or agent name (it becomes a path component).
fn is_component(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'))
}

/// Where agent `provider`/`agent` lives under `root`.
pub fn agent_path(root: &std::path::Path, provider: &str, agent: &str) -> PathBuf {
    root.join("resource.d").join(provider).join(agent)
}

/// A parameter an agent's meta-data declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterInfo {
    pub name: String,
    pub required: bool,
}

/// The parameters declared by an agent's meta-data: every `<parameter name="..">` element and
/// whether it says `required="1"` (or "true"). A minimal parser: comments are skipped, entities
/// in names decoded; fails when there is no `<resource-agent` element (the output is not OCF
/// meta-data) or a `<parameter` tag has no name.
pub fn parse_meta_data(xml: &str) -> Result<Vec<ParameterInfo>, String> {
    let text = strip_comments(xml);
    if !text.contains("<resource-agent") {
        return Err("no <resource-agent> element".to_string());
    }
    let mut parameters = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("<parameter") {
        rest = &rest[at + "<parameter".len()..];
        // `<parameters>` is the enclosing list, not an element of it.
        if !rest.starts_with(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/') {
            continue;
        }
        let end = rest.find('>').ok_or("a <parameter> tag is not closed")?;
        let attributes = parse_attributes(&rest[..end]);
        rest = &rest[end..];
        let name = attributes
            .iter()
            .find(|(key, _)| key == "name")
            .map(|(_, value)| value.clone())
            .filter(|name| !name.is_empty())
            .ok_or("a <parameter> element has no name")?;
        let required = attributes
            .iter()
            .any(|(key, value)| key == "required" && matches!(value.trim(), "1" | "true" | "yes"));
        parameters.push(ParameterInfo { name, required });
    }
    Ok(parameters)
}

/// The keys of `given` that `declared` (an agent's meta-data) does not declare, each with the
/// declared name it differs from only in case, if one does (`instancename` → `InstanceName`).
/// The monitor's own `wolfpack_` parameters are never the agent's to declare.
pub fn undeclared<'declared, 'given>(
    declared: &'declared [ParameterInfo],
    given: impl IntoIterator<Item = &'given str>,
) -> Vec<(&'given str, Option<&'declared str>)> {
    given
        .into_iter()
        .filter(|key| !key.starts_with("wolfpack_"))
        .filter(|key| !declared.iter().any(|parameter| parameter.name == *key))
        .map(|key| {
            let spelled = declared
                .iter()
                .find(|parameter| parameter.name.eq_ignore_ascii_case(key))
                .map(|parameter| parameter.name.as_str());
            (key, spelled)
        })
        .collect()
}

fn strip_comments(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        rest = match rest[start..].find("-->") {
            Some(end) => &rest[start + end + 3..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// `key="value"` pairs of a tag's inside (single or double quotes).
fn parse_attributes(tag: &str) -> Vec<(String, String)> {
    let mut attributes = Vec::new();
    let mut rest = tag.trim_start();
    while let Some(equals) = rest.find('=') {
        let key = rest[..equals].trim().to_string();
        let after = rest[equals + 1..].trim_start();
        let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            break;
        };
        let Some(close) = after[1..].find(quote) else {
            break;
        };
        attributes.push((key, decode_entities(&after[1..1 + close])));
        rest = after[1 + close + 1..].trim_start();
    }
    attributes
}

fn decode_entities(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The text of the agent's `ocf-exit-reason:` line (ocf_exit_reason), if it printed one.
fn exit_reason(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let line = text.lines().rev().find_map(|line| {
        line.split_once("ocf-exit-reason:")
            .map(|(_, reason)| reason)
    })?;
    super::engine::excerpt(line.as_bytes())
}

/// Which action is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    MetaData,
    ValidateAll,
    Start,
    StartProbe,
    Stop,
    StopProbe,
    Monitor,
}

/// The driver of one OCF resource.
pub struct OcfDriver {
    kind: String,
    provider: String,
    agent: String,
    root: PathBuf,
    path: PathBuf,
    resource: String,
    /// The agent's parameters (the `wolfpack_` ones taken out).
    params: Vec<(String, String)>,
    looks_alive_interval_ms: u64,
    is_alive_interval_ms: u64,
    /// OCF_RESKEY_CRM_meta_on_node.
    node_name: String,
    state_dir: Option<PathBuf>,
    action: Action,
    timeout_ms: u128,
}

/// An OCF resource's kind and parameters, checked without touching the system (whether the
/// agent is installed is for the node that runs it), so the catalog applies the same rules
/// when an administrator adds a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcfParams<'a> {
    pub provider: &'a str,
    pub agent: &'a str,
    /// `wolfpack_ocf_root`, else OCF_ROOT_DEFAULT.
    pub root: PathBuf,
    pub looks_alive_interval_ms: u64,
    pub is_alive_interval_ms: u64,
    /// `wolfpack_node_name`, if given.
    pub node_name: Option<String>,
    /// The agent's own parameters (the `wolfpack_` ones taken out).
    pub agent_params: Vec<(String, String)>,
}

/// Checks `ocf:PROVIDER:AGENT` and the monitor's own `wolfpack_` parameters.
pub fn check_params<'a>(
    kind: &'a str,
    params: &[(String, String)],
) -> Result<OcfParams<'a>, String> {
    let parts: Vec<&str> = kind.split(':').collect();
    let ["ocf", provider, agent] = parts[..] else {
        return Err(format!("'{kind}' is not ocf:PROVIDER:AGENT"));
    };
    if !is_component(provider) || !is_component(agent) {
        return Err(format!("'{kind}' is not ocf:PROVIDER:AGENT"));
    }
    let mut checked = OcfParams {
        provider,
        agent,
        root: PathBuf::from(OCF_ROOT_DEFAULT),
        looks_alive_interval_ms: LOOKS_ALIVE_INTERVAL_MS_DEFAULT,
        is_alive_interval_ms: IS_ALIVE_INTERVAL_MS_DEFAULT,
        node_name: None,
        agent_params: Vec::new(),
    };
    for (key, value) in params {
        let milliseconds = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{kind}: {key} '{value}' is not a whole number"))
        };
        match key.as_str() {
            PARAM_ROOT => {
                checked.root = PathBuf::from(value);
                if !checked.root.is_absolute() {
                    return Err(format!("{kind}: {PARAM_ROOT} must be an absolute path"));
                }
            }
            PARAM_LOOKS_ALIVE_INTERVAL => checked.looks_alive_interval_ms = milliseconds()?,
            PARAM_IS_ALIVE_INTERVAL => checked.is_alive_interval_ms = milliseconds()?,
            PARAM_NODE_NAME => checked.node_name = Some(value.clone()),
            other if other.starts_with("wolfpack_") => {
                return Err(format!("{kind}: unknown parameter '{other}'"))
            }
            other if other.starts_with(CLUSTER_PREFIX) => {
                return Err(format!(
                    "{kind}: parameter '{other}' is not allowed: OCF_RESKEY_{CLUSTER_PREFIX}* \
                     are the cluster's (interval, name, on_node and timeout are set for every \
                     action)"
                ))
            }
            _ => checked.agent_params.push((key.clone(), value.clone())),
        }
    }
    Ok(checked)
}

/// Gives an OCF resource's parameters this node's name (OCF_RESKEY_CRM_meta_on_node),
/// replacing one given.
pub fn set_node_name(params: &mut Vec<(String, String)>, name: &str) {
    params.retain(|(key, _)| key != PARAM_NODE_NAME);
    params.push((PARAM_NODE_NAME.to_string(), name.to_string()));
}

/// Makes an `ocf:PROVIDER:AGENT` resource; rejects a malformed kind, a missing agent, bad
/// monitor parameters.
pub fn new(
    kind: &str,
    params: &[(String, String)],
    settings: Settings,
) -> Result<Engine<OcfDriver>, String> {
    let OcfParams {
        provider,
        agent,
        root,
        looks_alive_interval_ms,
        is_alive_interval_ms,
        node_name,
        agent_params,
    } = check_params(kind, params)?;
    let path = agent_path(&root, provider, agent);
    if !path.exists() {
        return Err(format!(
            "agent not installed: {kind} (no {})",
            path.display()
        ));
    }
    if find_program(&path.to_string_lossy()).is_none() {
        return Err(format!("agent not executable: {kind} ({})", path.display()));
    }
    let driver = OcfDriver {
        kind: kind.to_string(),
        provider: provider.to_string(),
        agent: agent.to_string(),
        root,
        path,
        resource: settings.resource.clone(),
        state_dir: settings.ocf_state_dir.clone(),
        params: agent_params,
        looks_alive_interval_ms,
        is_alive_interval_ms,
        // Without a name (a monitor started without --node-name), the node id stands for it.
        node_name: node_name.unwrap_or_else(|| settings.node_id.to_string()),
        action: Action::MetaData,
        timeout_ms: 0,
    };
    Ok(Engine::new(driver, settings))
}

impl OcfDriver {
    fn step(&mut self, action: Action, interval_ms: u64, check_level: Option<u8>) -> Next {
        self.action = action;
        let word = match action {
            Action::MetaData => "meta-data",
            Action::ValidateAll => "validate-all",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::StartProbe | Action::StopProbe | Action::Monitor => "monitor",
        };
        let mut environment = vec![
            ("PATH".to_string(), PROGRAM_PATH.to_string()),
            (
                "OCF_ROOT".to_string(),
                self.root.to_string_lossy().into_owned(),
            ),
            ("OCF_RA_VERSION_MAJOR".to_string(), "1".to_string()),
            ("OCF_RA_VERSION_MINOR".to_string(), "0".to_string()),
            ("OCF_RESOURCE_INSTANCE".to_string(), self.resource.clone()),
            ("OCF_RESOURCE_TYPE".to_string(), self.agent.clone()),
            ("OCF_RESOURCE_PROVIDER".to_string(), self.provider.clone()),
            (
                "OCF_RESKEY_CRM_meta_timeout".to_string(),
                self.timeout_ms.to_string(),
            ),
            (
                "OCF_RESKEY_CRM_meta_interval".to_string(),
                interval_ms.to_string(),
            ),
            ("OCF_RESKEY_CRM_meta_name".to_string(), word.to_string()),
            (
                "OCF_RESKEY_CRM_meta_on_node".to_string(),
                self.node_name.clone(),
            ),
        ];
        if let Some(level) = check_level {
            environment.push(("OCF_CHECK_LEVEL".to_string(), level.to_string()));
        }
        if let Some(directory) = &self.state_dir {
            let directory = directory.to_string_lossy().into_owned();
            environment.push(("HA_RSCTMP".to_string(), directory.clone()));
            environment.push(("HA_VARRUN".to_string(), format!("{directory}/")));
        }
        for (key, value) in &self.params {
            environment.push((format!("OCF_RESKEY_{key}"), value.clone()));
        }
        let what = match action {
            Action::StartProbe => "monitor (after start)",
            Action::StopProbe => "monitor (after stop)",
            _ => word,
        };
        let mut step = Step::new(what, self.path.clone(), vec![word.to_string()], environment);
        if action == Action::MetaData {
            step.keep = Keep::Head(META_DATA_BYTES_MAX);
        }
        Next::Run(step)
    }

    /// "ocf:P:A start: exit 1 (generic error); reason: ..." for a failed action.
    fn explain(&self, what: &str, result: &StepResult) -> String {
        let status = match result.code() {
            Some(code) => match meaning(code) {
                Some(meaning) => format!("exit {code} ({meaning})"),
                None => format!("exit {code}, outside the OCF standard (0-9)"),
            },
            None => result.describe(),
        };
        let detail = match exit_reason(&result.output) {
            Some(reason) => format!("; reason: {reason}"),
            None => result.quote(),
        };
        format!("{} {what}: {status}{detail}", self.kind)
    }

    fn check_required(&self, result: &StepResult) -> Result<(), String> {
        if result.code() != Some(OCF_SUCCESS) {
            return Err(self.explain("meta-data", result));
        }
        let xml = String::from_utf8_lossy(&result.output);
        let parameters = parse_meta_data(&xml).map_err(|error| {
            format!(
                "{}: meta-data is not OCF meta-data ({error}){}",
                self.kind,
                result.quote()
            )
        })?;
        let missing: Vec<&str> = parameters
            .iter()
            .filter(|parameter| parameter.required)
            .map(|parameter| parameter.name.as_str())
            .filter(|name| !self.params.iter().any(|(key, _)| key == name))
            .collect();
        match missing.as_slice() {
            [] => Ok(()),
            [name] => Err(format!(
                "{}: the required parameter '{name}' is missing",
                self.kind
            )),
            names => Err(format!(
                "{}: the required parameters '{}' are missing",
                self.kind,
                names.join("', '")
            )),
        }
    }
}

impl Driver for OcfDriver {
    fn begin(&mut self, op: Op, timeout: Duration) -> Next {
        self.timeout_ms = timeout.as_millis();
        match op {
            Op::Admit => self.step(Action::MetaData, 0, None),
            Op::Start => self.step(Action::Start, 0, None),
            Op::Stop => self.step(Action::Stop, 0, None),
            Op::Check(CheckLevel::LooksAlive) => {
                self.step(Action::Monitor, self.looks_alive_interval_ms, Some(0))
            }
            Op::Check(CheckLevel::IsAlive) => {
                self.step(Action::Monitor, self.is_alive_interval_ms, Some(10))
            }
        }
    }

    fn step_done(&mut self, result: StepResult) -> Next {
        let code = result.code();
        let running = matches!(code, Some(OCF_SUCCESS | OCF_RUNNING_MASTER));
        match self.action {
            Action::MetaData => match self.check_required(&result) {
                Ok(()) => self.step(Action::ValidateAll, 0, None),
                Err(reason) => Next::Done(Err(reason)),
            },
            Action::ValidateAll => match code {
                Some(OCF_SUCCESS | OCF_ERR_UNIMPLEMENTED) => Next::Done(Ok(())),
                _ => Next::Done(Err(self.explain("validate-all", &result))),
            },
            Action::Start => match code {
                Some(OCF_SUCCESS) => self.step(Action::StartProbe, 0, Some(0)),
                _ => Next::Done(Err(self.explain("start", &result))),
            },
            Action::StartProbe if running => Next::Done(Ok(())),
            Action::StartProbe => Next::Done(Err(format!(
                "{}; the start had succeeded",
                self.explain("monitor after start", &result)
            ))),
            Action::Stop => match code {
                Some(OCF_SUCCESS) => self.step(Action::StopProbe, 0, Some(0)),
                _ => Next::Done(Err(self.explain("stop", &result))),
            },
            Action::StopProbe => match code {
                Some(OCF_NOT_RUNNING) => Next::Done(Ok(())),
                _ => Next::Done(Err(format!(
                    "{}; the stop had succeeded, but it is not reported stopped (7)",
                    self.explain("monitor after stop", &result)
                ))),
            },
            Action::Monitor if running => Next::Done(Ok(())),
            Action::Monitor => Next::Done(Err(self.explain("monitor", &result))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_data_parameters_and_required_flags_are_read() {
        let xml = r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="x" version="1">
<!-- <parameter name="commented" required="1"/> -->
<parameters>
<parameter name="binfile" required="1" unique="0">
<content type="string"/></parameter>
<parameter unique='0' name='opt'/>
<parameter name="also" required = "true"><shortdesc>a &lt;b&gt;</shortdesc></parameter>
</parameters></resource-agent>"#;
        let parameters = parse_meta_data(xml).expect("parse");
        let names: Vec<(&str, bool)> = parameters
            .iter()
            .map(|parameter| (parameter.name.as_str(), parameter.required))
            .collect();
        assert_eq!(names, [("binfile", true), ("opt", false), ("also", true)]);
    }

    #[test]
    fn undeclared_parameters_are_named_with_the_spelling_meant() {
        let declared: Vec<ParameterInfo> = ["InstanceName", "status10url"]
            .iter()
            .map(|name| ParameterInfo {
                name: name.to_string(),
                required: false,
            })
            .collect();
        let given = [
            "status10url",
            "statusurl",
            "instancename",
            "wolfpack_ocf_root",
        ];
        assert_eq!(
            undeclared(&declared, given),
            [("statusurl", None), ("instancename", Some("InstanceName"))]
        );
        assert!(undeclared(&declared, ["InstanceName"]).is_empty());
    }

    #[test]
    fn garbage_is_not_meta_data() {
        assert!(parse_meta_data("\u{1}\u{2} garbage <parameter").is_err());
        assert!(parse_meta_data("<resource-agent><parameter required=\"1\"/>").is_err());
        assert!(parse_meta_data("<resource-agent><parameter name=\"x\"").is_err());
    }

    #[test]
    fn exit_codes_have_their_standard_meaning() {
        assert_eq!(meaning(7), Some("not running"));
        assert_eq!(meaning(42), None);
    }
}
