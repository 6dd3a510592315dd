//! The `filesystem` resource type: a filesystem mounted on a directory (DESIGN.md §1: a
//! shared-disk filesystem; the daemon holds the resource's disk lease around it, not this
//! module).
//!
//! Parameters: `device` (required: a block device such as /dev/sdb1, or another mount source),
//! `directory` (required: an existing absolute directory, not /), `fstype` (required, e.g.
//! ext4), `options` (optional: mount options, comma-separated, no spaces), `force_unmount`
//! (optional, `true` by default: kill the filesystem's users when `umount` finds it busy, as
//! the Filesystem OCF agent does; `false` makes a busy filesystem fail the stop).
//!
//! "Mounted" means: the last /proc/self/mountinfo entry at `directory` (the visible mount) is
//! this device (a block device is matched by its major:minor, anything else by the source
//! string) — so a filesystem mounted over ours, or ours mounted elsewhere, does not count.
//!
//! - start: already mounted → adopted; another filesystem on the directory → fails; else
//!   `mount -t FSTYPE [-o OPTIONS] -- DEVICE DIRECTORY`, online once mounted.
//! - stop: not mounted → done; else `umount -- DIRECTORY`, up to UMOUNT_TRIES times
//!   UMOUNT_RETRY_MS apart, with `fuser -M -k -m DIRECTORY` (SIGKILL to every process using the
//!   filesystem; `-M` refuses anything but a mount point) before each retry when
//!   `force_unmount` is on. Never a lazy unmount: the stop succeeds only once the filesystem is
//!   really gone from the mount table, so nothing can still write to the shared disk.
//! - LooksAlive: mounted (reads mountinfo; no program runs). IsAlive: mounted, and a child
//!   writes, fsyncs, reads back and removes `DIRECTORY/.wolfpack-check-RESOURCE` (with `ro` in
//!   the options it lists the directory instead). A hung disk hangs only that child, which the
//!   check timeout kills.
use super::engine::{Driver, Engine, Next, Op, Step, StepResult};
use super::{find_program, param, plain_environment, reject_unknown, Settings};
use crate::monitor::constants::{UMOUNT_RETRY_MS, UMOUNT_TRIES};
use crate::monitor::protocol::CheckLevel;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
use std::time::Duration;

const KNOWN: [&str; 5] = ["device", "directory", "fstype", "options", "force_unmount"];
/// IsAlive's probe: $1 the file, $2 a nonce. Arguments are positional, never interpreted.
const PROBE_SCRIPT: &str = "printf '%s\\n' \"$2\" > \"$1\" && sync \"$1\" && \
     IFS= read -r line < \"$1\" && rm -f \"$1\" && [ \"$line\" = \"$2\" ]";

/// What the mount table says about the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
enum MountState {
    Absent,
    /// Ours, and the visible mount.
    Mounted,
    /// Ours, with another filesystem over it.
    Covered,
    /// Something else (its source and type).
    Other(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Mount,
    Umount,
    KillUsers,
    Probe,
}

/// The driver of one `filesystem` resource.
pub struct FilesystemDriver {
    device: String,
    /// The block device's (major, minor), when it is one.
    device_number: Option<(u64, u64)>,
    directory: PathBuf,
    fstype: String,
    options: Option<String>,
    force_unmount: bool,
    mount: PathBuf,
    umount: PathBuf,
    fuser: Option<PathBuf>,
    resource: String,
    action: Action,
    umount_tries: u32,
}

fn is_word(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('-')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Linux's dev_t encoding (glibc's gnu_dev_major/minor).
fn split_device_number(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// The parameters of a `filesystem` resource as given, checked without touching the system
/// (whether the directory and the device exist is for the node that mounts it), so the
/// catalog applies the same rules when an administrator adds a resource.
pub struct FilesystemParams<'a> {
    pub device: &'a str,
    pub directory: &'a str,
    pub fstype: &'a str,
    pub options: Option<&'a str>,
    pub force_unmount: bool,
}

/// Checks a `filesystem` resource's parameters (see [`FilesystemParams`]).
pub fn check_params(params: &[(String, String)]) -> Result<FilesystemParams<'_>, String> {
    reject_unknown("filesystem", params, &KNOWN)?;
    let required = |key: &str| {
        param(params, key)
            .filter(|value| is_word(value))
            .ok_or_else(|| format!("filesystem: the parameter '{key}' is required (one word, not starting with '-')"))
    };
    let device = required("device")?;
    let directory = required("directory")?;
    let fstype = required("fstype")?;
    if !fstype
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'+' | b'-'))
    {
        return Err(format!("filesystem: '{fstype}' is not a filesystem type"));
    }
    let options = match param(params, "options") {
        None => None,
        Some(options) if is_word(options) => Some(options),
        Some(options) => {
            return Err(format!(
                "filesystem: options '{options}' must be one comma-separated word"
            ))
        }
    };
    let force_unmount = match param(params, "force_unmount") {
        None | Some("true" | "yes" | "1") => true,
        Some("false" | "no" | "0") => false,
        Some(other) => {
            return Err(format!(
                "filesystem: force_unmount '{other}' is neither true nor false"
            ))
        }
    };
    if !std::path::Path::new(directory).is_absolute() {
        return Err(format!(
            "filesystem: directory '{directory}' is not an absolute path"
        ));
    }
    if directory.trim_end_matches('/').is_empty() {
        return Err("filesystem: the directory cannot be /".to_string());
    }
    Ok(FilesystemParams {
        device,
        directory,
        fstype,
        options,
        force_unmount,
    })
}

/// Makes a `filesystem` resource; rejects bad parameters and missing mount tools.
pub fn new(
    params: &[(String, String)],
    settings: Settings,
) -> Result<Engine<FilesystemDriver>, String> {
    let FilesystemParams {
        device,
        directory,
        fstype,
        options,
        force_unmount,
    } = check_params(params)?;
    let given = PathBuf::from(directory);
    let directory = given
        .canonicalize()
        .ok()
        .filter(|path| path.is_dir())
        .ok_or_else(|| format!("filesystem: directory '{directory}' does not exist"))?;
    if directory == std::path::Path::new("/") {
        return Err("filesystem: the directory cannot be /".to_string());
    }
    let device_number = std::fs::metadata(device)
        .ok()
        .filter(|meta| meta.file_type().is_block_device())
        .map(|meta| split_device_number(meta.rdev()));
    let tool = |name: &str| {
        find_program(name)
            .ok_or_else(|| format!("filesystem: '{name}' (util-linux) is not installed"))
    };
    let driver = FilesystemDriver {
        device: device.to_string(),
        device_number,
        directory,
        fstype: fstype.to_string(),
        options: options.map(str::to_string),
        force_unmount,
        mount: tool("mount")?,
        umount: tool("umount")?,
        fuser: find_program("fuser"),
        resource: settings.resource.clone(),
        action: Action::Mount,
        umount_tries: 0,
    };
    Ok(Engine::new(driver, settings))
}

/// Decodes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\'
            && index + 3 < bytes.len()
            && bytes[index + 1..index + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[index + 1..index + 4]
                .iter()
                .fold(0u32, |value, digit| value * 8 + u32::from(digit - b'0'));
            out.push(value as u8);
            index += 4;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One mountinfo line's fields that matter here.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MountEntry {
    device_number: (u64, u64),
    mount_point: String,
    fstype: String,
    source: String,
}

fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let separator = fields.iter().position(|field| *field == "-")?;
            let (major, minor) = fields.get(2)?.split_once(':')?;
            Some(MountEntry {
                device_number: (major.parse().ok()?, minor.parse().ok()?),
                mount_point: unescape(fields.get(4)?),
                fstype: fields.get(separator + 1)?.to_string(),
                source: unescape(fields.get(separator + 2)?),
            })
        })
        .collect()
}

impl FilesystemDriver {
    fn is_ours(&self, entry: &MountEntry) -> bool {
        match self.device_number {
            Some(number) => entry.device_number == number,
            None => entry.source == self.device,
        }
    }

    fn state(&self) -> Result<MountState, String> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|error| format!("filesystem: cannot read /proc/self/mountinfo: {error}"))?;
        let directory = self.directory.to_string_lossy();
        let here: Vec<MountEntry> = parse_mountinfo(&text)
            .into_iter()
            .filter(|entry| entry.mount_point == directory)
            .collect();
        Ok(match here.last() {
            None => MountState::Absent,
            Some(top) if self.is_ours(top) => MountState::Mounted,
            Some(_) if here.iter().any(|entry| self.is_ours(entry)) => MountState::Covered,
            Some(top) => MountState::Other(format!("{} ({})", top.source, top.fstype)),
        })
    }

    fn here(&self) -> String {
        format!("{} on {}", self.device, self.directory.display())
    }

    fn step(&mut self, action: Action, delay: Duration) -> Next {
        self.action = action;
        let directory = self.directory.to_string_lossy().into_owned();
        let (what, program, args): (&str, PathBuf, Vec<String>) = match action {
            Action::Mount => {
                let mut args = vec!["-t".to_string(), self.fstype.clone()];
                if let Some(options) = &self.options {
                    args.extend(["-o".to_string(), options.clone()]);
                }
                args.extend(["--".to_string(), self.device.clone(), directory]);
                ("mount", self.mount.clone(), args)
            }
            Action::Umount => {
                self.umount_tries += 1;
                let args = vec!["--".to_string(), directory];
                ("umount", self.umount.clone(), args)
            }
            Action::KillUsers => {
                let Some(fuser) = self.fuser.clone() else {
                    return self.step(Action::Umount, delay);
                };
                let args = ["-M", "-k", "-m", &directory].map(str::to_string).to_vec();
                ("fuser -M -k -m (kill the filesystem's users)", fuser, args)
            }
            Action::Probe => {
                let read_only = self
                    .options
                    .as_deref()
                    .is_some_and(|options| options.split(',').any(|option| option == "ro"));
                if read_only {
                    let args = vec!["-A".to_string(), directory];
                    ("ls (read-only probe)", PathBuf::from("/bin/ls"), args)
                } else {
                    let file = self
                        .directory
                        .join(format!(".wolfpack-check-{}", self.resource));
                    let nonce = format!(
                        "{}-{}",
                        std::process::id(),
                        crate::monitor::event_log::monotonic_micros()
                    );
                    let args = vec![
                        "-c".to_string(),
                        PROBE_SCRIPT.to_string(),
                        "wolfpack-probe".to_string(),
                        file.to_string_lossy().into_owned(),
                        nonce,
                    ];
                    ("write-read probe", PathBuf::from("/bin/sh"), args)
                }
            }
        };
        let mut step = Step::new(what, program, args, plain_environment());
        step.delay = delay;
        Next::Run(step)
    }

    fn begin_unmount(&mut self) -> Next {
        self.umount_tries = 0;
        self.step(Action::Umount, Duration::ZERO)
    }
}

impl Driver for FilesystemDriver {
    fn begin(&mut self, op: Op, _timeout: Duration) -> Next {
        let state = match self.state() {
            Ok(state) => state,
            Err(reason) => return Next::Done(Err(reason)),
        };
        match (op, state) {
            (Op::Admit, _) => Next::Done(Ok(())),
            (Op::Start, MountState::Mounted) => {
                log::info!("filesystem: {} is already mounted: adopted", self.here());
                Next::Done(Ok(()))
            }
            (Op::Start, MountState::Absent) => self.step(Action::Mount, Duration::ZERO),
            (Op::Start, MountState::Covered) => Next::Done(Err(format!(
                "filesystem: {} is mounted, but covered by another mount",
                self.here()
            ))),
            (Op::Start, MountState::Other(other)) => Next::Done(Err(format!(
                "filesystem: {} already has {other} mounted on it",
                self.directory.display()
            ))),
            (Op::Stop, MountState::Absent | MountState::Other(_)) => Next::Done(Ok(())),
            (Op::Stop, MountState::Covered) => Next::Done(Err(format!(
                "filesystem: {} is covered by another mount: unmount that first",
                self.here()
            ))),
            (Op::Stop, MountState::Mounted) => self.begin_unmount(),
            (Op::Check(level), MountState::Mounted) => match level {
                CheckLevel::LooksAlive => Next::Done(Ok(())),
                CheckLevel::IsAlive => self.step(Action::Probe, Duration::ZERO),
            },
            (Op::Check(_), state) => Next::Done(Err(format!(
                "filesystem: {} is not mounted ({state:?})",
                self.here()
            ))),
        }
    }

    fn step_done(&mut self, result: StepResult) -> Next {
        let state = match self.state() {
            Ok(state) => state,
            Err(reason) => return Next::Done(Err(reason)),
        };
        let retry = Duration::from_millis(UMOUNT_RETRY_MS);
        match self.action {
            Action::Mount => match state {
                MountState::Mounted => Next::Done(Ok(())),
                _ => Next::Done(Err(format!(
                    "filesystem: mount {}: {}{}",
                    self.here(),
                    result.describe(),
                    result.quote()
                ))),
            },
            Action::Umount => match state {
                MountState::Absent | MountState::Other(_) => Next::Done(Ok(())),
                MountState::Mounted if self.umount_tries < UMOUNT_TRIES => {
                    match self.force_unmount {
                        true => self.step(Action::KillUsers, Duration::ZERO),
                        false => self.step(Action::Umount, retry),
                    }
                }
                _ => Next::Done(Err(format!(
                    "filesystem: umount {} failed {} times: {}{}",
                    self.directory.display(),
                    self.umount_tries,
                    result.describe(),
                    result.quote()
                ))),
            },
            // fuser exits 1 when nobody used the filesystem: either way, umount again.
            Action::KillUsers => match state {
                MountState::Mounted => self.step(Action::Umount, retry),
                MountState::Absent | MountState::Other(_) => Next::Done(Ok(())),
                MountState::Covered => Next::Done(Err(format!(
                    "filesystem: {} became covered by another mount",
                    self.here()
                ))),
            },
            Action::Probe => match crate::monitor::children::succeeded(result.status) {
                true => Next::Done(Ok(())),
                false => Next::Done(Err(format!(
                    "filesystem: cannot write and read back a file in {}: {}{}",
                    self.directory.display(),
                    result.describe(),
                    result.quote()
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_are_parsed_with_escapes() {
        let text = "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/root rw\n\
                    22 1 0:21 / /proc rw - proc proc rw\n";
        let entries = parse_mountinfo(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].mount_point, "/mnt two");
        assert_eq!(entries[0].device_number, (98, 0));
        assert_eq!(entries[0].fstype, "ext3");
        assert_eq!(entries[0].source, "/dev/root");
        assert_eq!(entries[1].fstype, "proc");
    }

    #[test]
    fn device_numbers_split_like_glibc() {
        assert_eq!(split_device_number(0x0703), (7, 3));
        assert_eq!(
            split_device_number((259 << 8) | 0x12 | (0x1 << 20)),
            (259, 0x112)
        );
    }
}
