//! `wolfpack testbed cleanup`: what a run left behind when its testbed process itself was
//! killed (SIGKILL skips every teardown). A run is stale when the PID in its directory's
//! `owner.pid` no longer exists; only such runs' namespaces, cgroups and directories are
//! removed, and processes only by the PIDs found in those runs' cgroups.
use super::host;

pub fn stale_runs() -> Result<(), String> {
    let mut prefixes: Vec<String> = host::namespaces()
        .iter()
        .filter(|name| name.starts_with("wp-"))
        .filter_map(|name| name.get(..7).map(str::to_string))
        .collect();
    prefixes.sort();
    prefixes.dedup();
    for prefix in prefixes {
        let dir = std::env::temp_dir().join(&prefix);
        let owner: Option<i32> = std::fs::read_to_string(dir.join("owner.pid"))
            .ok()
            .and_then(|text| text.trim().parse().ok());
        if owner.is_some_and(host::alive) {
            println!("{prefix}: its testbed (pid {owner:?}) still runs; left alone");
            continue;
        }
        println!("{prefix}: stale, removing");
        for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/freezer"] {
            let Ok(entries) = std::fs::read_dir(root) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.starts_with(&format!("{prefix}-")) {
                    continue;
                }
                let path = entry.path();
                let _ = std::fs::write(path.join("freezer.state"), "THAWED");
                let _ = std::fs::write(path.join("cgroup.freeze"), "0");
                for _ in 0..100 {
                    let pids: Vec<i32> = std::fs::read_to_string(path.join("cgroup.procs"))
                        .unwrap_or_default()
                        .lines()
                        .filter_map(|line| line.trim().parse().ok())
                        .collect();
                    if pids.is_empty() {
                        break;
                    }
                    for pid in pids {
                        host::signal(pid, libc::SIGKILL);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                let _ = std::fs::remove_dir(&path);
            }
        }
        for namespace in host::namespaces() {
            if namespace.starts_with(&format!("{prefix}-")) {
                host::run("ip", &["netns", "del", &namespace])?;
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
