//! The shared-disk worker thread: the event loop hands it block reads and writes, and it wakes
//! the loop through a `mio::Waker` when they are done, so a stalled disk never delays a
//! heartbeat.
//!
//! Group commit: the worker drains every request queued while it was busy, performs them in
//! order, flushes once if any was a write, and only then reports them done. A write is reported
//! done only when durable, which is what the core assumes of `DiskWrite`.
//!
//! Fault injection (`ctl fault disk-stall MS`, only on a node started with
//! `--allow-fault-injection`): while a stall is set, every batch waits that long before it
//! runs, as on a disk that stopped answering; clearing it releases a waiting batch at once.
use crate::disk::storage::Storage;
use disklayout::{Block, BLOCK_SIZE};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The most requests one batch takes, so completions flow even under a flood of writes.
const BATCH_REQUESTS_MAX: usize = 256;
/// How often a stalled batch looks whether its stall was changed or cleared.
const STALL_CHECK_INTERVAL: Duration = Duration::from_millis(5);

/// A block operation for the worker.
#[derive(Debug)]
pub enum DiskRequest {
    /// Read the block at the offset.
    Read { op: u64, offset_bytes: u64 },
    /// Write the block at the offset, durably.
    Write {
        op: u64,
        offset_bytes: u64,
        block: Box<Block>,
    },
}

/// A finished operation: the block read (or echoed back for a write), or the error's text.
#[derive(Debug)]
pub struct DiskCompletion {
    pub op: u64,
    pub result: Result<Box<Block>, String>,
    /// From the start of the batch that carried it to the end of its flush.
    pub latency_us: u64,
}

/// The event loop's handle on the worker. Dropping it stops the worker after its current batch.
pub struct DiskWorker {
    requests: Option<mpsc::Sender<DiskRequest>>,
    completions: mpsc::Receiver<DiskCompletion>,
    thread: Option<thread::JoinHandle<()>>,
    /// The injected stall in ms (0: none), shared with the worker thread.
    stall_ms: Arc<AtomicU64>,
}

impl DiskWorker {
    /// Starts the worker on `storage`; it wakes `waker` whenever completions are ready.
    pub fn spawn(storage: Box<dyn Storage>, waker: Arc<mio::Waker>) -> std::io::Result<DiskWorker> {
        let (request_sender, request_receiver) = mpsc::channel();
        let (completion_sender, completion_receiver) = mpsc::channel();
        let stall_ms = Arc::new(AtomicU64::new(0));
        let worker_stall_ms = stall_ms.clone();
        let thread = thread::Builder::new()
            .name("wolfpack-disk".into())
            .spawn(move || {
                run(
                    storage,
                    request_receiver,
                    completion_sender,
                    waker,
                    &worker_stall_ms,
                )
            })?;
        Ok(DiskWorker {
            requests: Some(request_sender),
            completions: completion_receiver,
            thread: Some(thread),
            stall_ms,
        })
    }

    /// Fault injection: from now on every batch waits `stall_ms` before it runs (0 clears the
    /// stall, and a batch waiting for it runs at once).
    pub fn set_stall_ms(&self, stall_ms: u64) {
        self.stall_ms.store(stall_ms, Ordering::Relaxed);
    }

    /// The injected stall in ms (0: none).
    pub fn stall_ms(&self) -> u64 {
        self.stall_ms.load(Ordering::Relaxed)
    }

    /// Queues a request. Returns false when the worker has stopped (it panicked: a bug).
    pub fn submit(&self, request: DiskRequest) -> bool {
        self.requests
            .as_ref()
            .is_some_and(|requests| requests.send(request).is_ok())
    }

    /// The next finished operation, if any; call until `None` after every wake-up.
    pub fn try_completion(&self) -> Option<DiskCompletion> {
        self.completions.try_recv().ok()
    }
}

impl Drop for DiskWorker {
    fn drop(&mut self) {
        // A stalled batch must not hold up the daemon's exit.
        self.set_stall_ms(0);
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    mut storage: Box<dyn Storage>,
    requests: mpsc::Receiver<DiskRequest>,
    completions: mpsc::Sender<DiskCompletion>,
    waker: Arc<mio::Waker>,
    stall_ms: &AtomicU64,
) {
    while let Ok(first) = requests.recv() {
        let started = Instant::now();
        wait_out_stall(stall_ms, started);
        let mut batch = vec![first];
        while batch.len() < BATCH_REQUESTS_MAX {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let mut results: Vec<(u64, Result<Box<Block>, String>)> = batch
            .into_iter()
            .map(|request| match request {
                DiskRequest::Read { op, offset_bytes } => {
                    let mut block = Box::new([0u8; BLOCK_SIZE]);
                    let result = storage.read_at(offset_bytes, &mut block[..]).map(|_| block);
                    (op, result.map_err(|error| error.to_string()))
                }
                DiskRequest::Write {
                    op,
                    offset_bytes,
                    block,
                } => {
                    let result = storage.write_at(offset_bytes, &block[..]).map(|_| block);
                    (op, result.map_err(|error| error.to_string()))
                }
            })
            .collect();
        let wrote = results.iter().any(|(_, result)| result.is_ok());
        if wrote {
            if let Err(error) = storage.flush() {
                // Nothing in this batch may be taken as durable: fail every write with the reason.
                let reason = error.to_string();
                for (_, result) in results.iter_mut() {
                    *result = Err(reason.clone());
                }
            }
        }
        let latency_us = started.elapsed().as_micros() as u64;
        for (op, result) in results {
            if completions
                .send(DiskCompletion {
                    op,
                    result,
                    latency_us,
                })
                .is_err()
            {
                return;
            }
        }
        if waker.wake().is_err() {
            return;
        }
    }
}

/// Waits until the injected stall (re-read as it goes, so a change or a clear takes effect at
/// once) has passed since `since`.
fn wait_out_stall(stall_ms: &AtomicU64, since: Instant) {
    loop {
        let stall = Duration::from_millis(stall_ms.load(Ordering::Relaxed));
        let left = stall.saturating_sub(since.elapsed());
        if left.is_zero() {
            return;
        }
        thread::sleep(left.min(STALL_CHECK_INTERVAL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::storage::MemoryStorage;
    use mio::{Events, Poll, Token};
    use std::time::Duration;

    const WAKER: Token = Token(7);

    fn wait_for(worker: &DiskWorker, poll: &mut Poll, count: usize) -> Vec<DiskCompletion> {
        let mut events = Events::with_capacity(4);
        let mut done = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while done.len() < count {
            assert!(
                Instant::now() < deadline,
                "the worker answered {} of {count}",
                done.len()
            );
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .expect("poll");
            while let Some(completion) = worker.try_completion() {
                done.push(completion);
            }
        }
        done
    }

    #[test]
    fn writes_then_reads_come_back_in_order_and_wake_the_loop() {
        let mut poll = Poll::new().expect("poll");
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER).expect("waker"));
        let worker =
            DiskWorker::spawn(Box::new(MemoryStorage::new(64 * 4096)), waker).expect("spawn");
        let mut block = Box::new([0u8; BLOCK_SIZE]);
        block[0] = 42;
        assert!(worker.submit(DiskRequest::Write {
            op: 1,
            offset_bytes: 8192,
            block
        }));
        assert!(worker.submit(DiskRequest::Read {
            op: 2,
            offset_bytes: 8192
        }));
        let done = wait_for(&worker, &mut poll, 2);
        assert_eq!(done[0].op, 1);
        assert_eq!(done[1].op, 2);
        assert_eq!(done[1].result.as_ref().expect("read")[0], 42);
    }

    #[test]
    fn a_stalled_worker_answers_nothing_until_the_stall_is_cleared() {
        let mut poll = Poll::new().expect("poll");
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER).expect("waker"));
        let worker =
            DiskWorker::spawn(Box::new(MemoryStorage::new(4 * 4096)), waker).expect("spawn");
        // Far longer than this test may take: only clearing the stall can release the read.
        worker.set_stall_ms(3_600_000);
        assert_eq!(worker.stall_ms(), 3_600_000);
        assert!(worker.submit(DiskRequest::Read {
            op: 1,
            offset_bytes: 0
        }));
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_millis(200)))
            .expect("poll");
        assert!(worker.try_completion().is_none(), "answered while stalled");
        worker.set_stall_ms(0);
        let done = wait_for(&worker, &mut poll, 1);
        assert_eq!(done[0].op, 1);
        assert!(done[0].result.is_ok());
    }

    #[test]
    fn errors_come_back_as_text_and_the_worker_goes_on() {
        let mut poll = Poll::new().expect("poll");
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER).expect("waker"));
        let worker =
            DiskWorker::spawn(Box::new(MemoryStorage::new(4 * 4096)), waker).expect("spawn");
        assert!(worker.submit(DiskRequest::Read {
            op: 1,
            offset_bytes: 40960
        }));
        assert!(worker.submit(DiskRequest::Read {
            op: 2,
            offset_bytes: 0
        }));
        let done = wait_for(&worker, &mut poll, 2);
        assert!(done[0]
            .result
            .as_ref()
            .expect_err("out of range")
            .contains("40960"));
        assert!(done[1].result.is_ok());
    }
}
