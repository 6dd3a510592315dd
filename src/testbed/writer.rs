//! The chaos run's database client: while faults run it writes `properties/chaos/w<N>` through
//! a node chosen by the seed (`ctl update`, over the node's admin socket, which answers only
//! once the update is acknowledged) and remembers what was acknowledged; after the heal it
//! checks that every acknowledged update is on every node (`ctl get`).
use crate::admin::client;
use crate::prng::Prng;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longer than a takeover under faults; an update not answered by then counts as unknown.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
const PAUSE: Duration = Duration::from_millis(50);
const PREFIX: &str = "properties/chaos";

pub struct Writer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<(String, String)>>,
}

/// Starts writing through the nodes behind `sockets` (index = node id - 1).
pub fn start(sockets: Vec<PathBuf>, seed: u64) -> Writer {
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut prng = Prng::new(seed);
        let mut acknowledged = Vec::new();
        let mut serial = 0u64;
        while !stopping.load(Ordering::Relaxed) {
            serial += 1;
            let socket = &sockets[prng.below(sockets.len() as u64) as usize];
            let path = format!("{PREFIX}/w{serial}");
            let value = format!("v{serial}");
            let mut committed = false;
            let answered = client::request(
                socket,
                &["update", &path, &value],
                Some(ANSWER_TIMEOUT),
                |line| {
                    committed |= line.starts_with("committed at sequence");
                    true
                },
            );
            if answered.is_ok() && committed {
                acknowledged.push((path, value));
            }
            std::thread::sleep(PAUSE);
        }
        acknowledged
    });
    Writer { stop, handle }
}

impl Writer {
    /// Stops writing; the acknowledged updates (path, value).
    pub fn stop(self) -> Vec<(String, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// The acknowledged updates missing (or different) on at least one node, after waiting up to
/// `deadline` for lagging nodes to catch up.
pub fn lost(sockets: &[PathBuf], acknowledged: &[(String, String)], deadline: Duration) -> u64 {
    let until = Instant::now() + deadline;
    loop {
        let missing = count_missing(sockets, acknowledged);
        if missing == 0 || Instant::now() > until {
            return missing;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn count_missing(sockets: &[PathBuf], acknowledged: &[(String, String)]) -> u64 {
    let copies: Vec<Vec<(String, String)>> = sockets.iter().map(|socket| read(socket)).collect();
    acknowledged
        .iter()
        .filter(|wanted| !copies.iter().all(|copy| copy.contains(wanted)))
        .count() as u64
}

/// `(path, text value)` of every key under `properties/chaos` as the node reads it.
fn read(socket: &Path) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    let _ = client::request(
        socket,
        &["get", PREFIX],
        Some(Duration::from_secs(5)),
        |line| {
            // `PATH TYPE VERSION VALUE`, the text value in quotes.
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let [path, "text", _, value] = fields.as_slice() {
                entries.push((path.to_string(), value.trim_matches('"').to_string()));
            }
            true
        },
    );
    entries
}
