//! The `script` resource type: three commands an administrator provides.
//!
//! Parameters (all three required): `start`, `stop`, `status`. Each is a program and its
//! arguments split on whitespace, with no shell and no quoting: `/usr/local/bin/app --port 80`
//! runs that program with two arguments, and `$HOME`, `;`, `|` or quotes reach it as they are.
//! A command that needs a shell, or an argument with a space, belongs in a script file. A
//! program without '/' is looked up in PROGRAM_PATH when the `Start` arrives (not found:
//! Rejected).
//!
//! Environment: exactly PATH, LC_ALL=C, WOLFPACK_RESOURCE (the resource name) and
//! WOLFPACK_NODE_ID. Output goes to the resource's log (see `engine.rs`).
//!
//! - start: `start` must exit 0, then `status` must exit 0.
//! - stop: `stop` must exit 0, then `status` must exit non-zero (stopped); what the commands
//!   left in their process groups is then killed.
//! - LooksAlive and IsAlive: `status` exits 0 = running.
use super::engine::{Driver, Engine, Next, Op, Step, StepResult};
use super::{find_program, param, plain_environment, reject_unknown, Settings};
use crate::monitor::children::succeeded;
use std::path::PathBuf;
use std::time::Duration;

const KNOWN: [&str; 3] = ["start", "stop", "status"];

/// A command: the program found and its arguments.
#[derive(Clone, Debug)]
struct Argv {
    program: PathBuf,
    args: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Start,
    StartStatus,
    Stop,
    StopStatus,
    Status,
}

/// The driver of one `script` resource.
pub struct ScriptDriver {
    start: Argv,
    stop: Argv,
    status: Argv,
    environment: Vec<(String, String)>,
    action: Action,
}

/// The parameter rules of `script`, touching nothing (programs are looked up only when the
/// resource starts, on the node that starts it): the catalog applies them when an
/// administrator adds a resource.
pub fn check_params(params: &[(String, String)]) -> Result<(), String> {
    reject_unknown("script", params, &KNOWN)?;
    for key in KNOWN {
        command_words(params, key)?;
    }
    Ok(())
}

/// The words of command `key`, at least one.
fn command_words<'a>(
    params: &'a [(String, String)],
    key: &str,
) -> Result<std::str::SplitWhitespace<'a>, String> {
    let text =
        param(params, key).ok_or_else(|| format!("script: the parameter '{key}' is required"))?;
    let words = text.split_whitespace();
    if words.clone().next().is_none() {
        return Err(format!("script: the parameter '{key}' is empty"));
    }
    Ok(words)
}

/// Makes a `script` resource; rejects missing or unknown parameters and programs not found.
pub fn new(
    params: &[(String, String)],
    settings: Settings,
) -> Result<Engine<ScriptDriver>, String> {
    check_params(params)?;
    let argv = |key: &str| -> Result<Argv, String> {
        let mut words = command_words(params, key)?.map(str::to_string);
        let first = words.next().unwrap_or_default();
        let program = find_program(&first).ok_or_else(|| {
            format!("script: '{key}': no executable '{first}' (a path, or a name in PATH)")
        })?;
        Ok(Argv {
            program,
            args: words.collect(),
        })
    };
    let mut environment = plain_environment();
    environment.push(("WOLFPACK_RESOURCE".to_string(), settings.resource.clone()));
    environment.push(("WOLFPACK_NODE_ID".to_string(), settings.node_id.to_string()));
    let driver = ScriptDriver {
        start: argv("start")?,
        stop: argv("stop")?,
        status: argv("status")?,
        environment,
        action: Action::Status,
    };
    Ok(Engine::new(driver, settings))
}

impl ScriptDriver {
    fn run(&mut self, action: Action) -> Next {
        self.action = action;
        let (what, argv) = match action {
            Action::Start => ("start", &self.start),
            Action::Stop => ("stop", &self.stop),
            Action::StartStatus => ("status (after start)", &self.status),
            Action::StopStatus => ("status (after stop)", &self.status),
            Action::Status => ("status", &self.status),
        };
        Next::Run(Step::new(
            what,
            argv.program.clone(),
            argv.args.clone(),
            self.environment.clone(),
        ))
    }
}

fn failed(what: &str, result: &StepResult) -> Next {
    Next::Done(Err(format!(
        "script {what}: {}{}",
        result.describe(),
        result.quote()
    )))
}

impl Driver for ScriptDriver {
    fn begin(&mut self, op: Op, _timeout: Duration) -> Next {
        match op {
            Op::Admit => Next::Done(Ok(())),
            Op::Start => self.run(Action::Start),
            Op::Stop => self.run(Action::Stop),
            Op::Check(_) => self.run(Action::Status),
        }
    }

    fn step_done(&mut self, result: StepResult) -> Next {
        let passed = succeeded(result.status);
        match (self.action, passed) {
            (Action::Start, true) => self.run(Action::StartStatus),
            (Action::Start, false) => failed("start", &result),
            (Action::StartStatus, true) => Next::Done(Ok(())),
            (Action::StartStatus, false) => {
                failed("status after a successful start (not running)", &result)
            }
            (Action::Stop, true) => self.run(Action::StopStatus),
            (Action::Stop, false) => failed("stop", &result),
            (Action::StopStatus, false) => Next::Done(Ok(())),
            (Action::StopStatus, true) => Next::Done(Err(
                "script status after a successful stop: exit 0, still running".to_string(),
            )),
            (Action::Status, true) => Next::Done(Ok(())),
            (Action::Status, false) => failed("status (not running)", &result),
        }
    }
}
