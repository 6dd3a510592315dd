//! `ctl fault ...`: faults a test injects into a running node. A production node refuses every
//! one of them: only a node started with `--allow-fault-injection` obeys.
//!
//! - `fault disk-stall MS`: every shared-disk operation of this node waits MS ms before it runs
//!   (the disk worker's stall; see `disk_worker.rs`). Heartbeats go on, since the disk has its
//!   own thread, but the lease cannot be renewed: a stall longer than the lease makes the core
//!   stop its groups, and its monitor fences it, so the others take over.
//! - `fault disk-stall off`: the disk answers again at once.
use super::disk_worker::DiskWorker;

/// The longest stall accepted: a typo must not wedge a node for days.
pub const DISK_STALL_MS_MAX: u64 = 600_000;

/// Answers `fault WORDS...` (the words after `fault`).
pub fn answer(
    allowed: bool,
    node_id: u8,
    disk: &DiskWorker,
    words: &[&str],
) -> Result<String, String> {
    if !allowed {
        return Err(
            "fault injection is disabled on this node (start it with --allow-fault-injection)"
                .into(),
        );
    }
    match words {
        ["disk-stall", "off"] => {
            disk.set_stall_ms(0);
            log::warn!("node={node_id} fault injection: disk stall cleared");
            Ok("disk stall cleared\n".into())
        }
        ["disk-stall", milliseconds] => {
            let stall_ms = parse_stall_ms(milliseconds)?;
            disk.set_stall_ms(stall_ms);
            log::warn!("node={node_id} fault injection: every disk operation waits {stall_ms} ms");
            Ok(format!("every disk operation now waits {stall_ms} ms\n"))
        }
        _ => Err(format!(
            "unknown fault '{}' (expected: disk-stall MS | disk-stall off)",
            words.join(" ")
        )),
    }
}

fn parse_stall_ms(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(stall_ms) if (1..=DISK_STALL_MS_MAX).contains(&stall_ms) => Ok(stall_ms),
        _ => Err(format!(
            "disk-stall '{text}': expected 1 to {DISK_STALL_MS_MAX} (ms) or 'off'"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::storage::MemoryStorage;
    use std::sync::Arc;

    fn worker() -> (mio::Poll, DiskWorker) {
        let poll = mio::Poll::new().expect("poll");
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(1)).expect("waker"));
        let worker = DiskWorker::spawn(Box::new(MemoryStorage::new(4096)), waker).expect("spawn");
        (poll, worker)
    }

    #[test]
    fn a_node_started_without_the_flag_refuses_every_fault() {
        let (_poll, disk) = worker();
        let error = answer(false, 1, &disk, &["disk-stall", "3000"]).expect_err("refused");
        assert!(error.contains("--allow-fault-injection"), "{error}");
        assert_eq!(disk.stall_ms(), 0);
    }

    #[test]
    fn disk_stall_sets_and_clears_the_workers_stall() {
        let (_poll, disk) = worker();
        assert!(answer(true, 1, &disk, &["disk-stall", "3000"]).is_ok());
        assert_eq!(disk.stall_ms(), 3000);
        assert!(answer(true, 1, &disk, &["disk-stall", "off"]).is_ok());
        assert_eq!(disk.stall_ms(), 0);
    }

    #[test]
    fn bad_stalls_and_unknown_faults_are_named() {
        let (_poll, disk) = worker();
        for words in [
            &["disk-stall", "0"][..],
            &["disk-stall", "soon"],
            &["disk-stall", "600001"],
            &["disk-stall"],
            &["cpu-hog", "1"],
            &[],
        ] {
            assert!(answer(true, 1, &disk, words).is_err(), "{words:?}");
        }
        assert_eq!(disk.stall_ms(), 0);
    }
}
