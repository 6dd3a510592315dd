//! Checkpoints (FORMAT.md §9): once half the ring is in use since the newest checkpoint, the
//! locker writes the replicated state into the other slot, payload first, then the header; the
//! header landing is what truncates the log before the checkpoint's position.

use super::CheckpointKnown;
use crate::core::disk_records::{self, CheckpointHeader, Sealed, BLOCK_SIZE};
use crate::core::node::{Node, Purpose};
use crate::core::Event;

#[derive(Debug)]
pub(crate) struct CheckpointJob {
    pub generation: u64,
    pub slot: usize,
    pub sequence: u64,
    pub log_position: u64,
    pub payload: Vec<u8>,
    pub payload_writes_left: u64,
    pub header_in_flight: bool,
    pub failed: bool,
}

/// Which write of a checkpoint finished.
#[derive(Clone, Copy, Debug)]
pub(crate) enum CheckpointWrite {
    Payload,
    Header,
}

impl Node {
    /// Starts a checkpoint when half the ring is used (only right after a delivered block, when
    /// the replica matches the log exactly up to `applied_position`).
    pub(crate) fn checkpoint_maybe(&mut self) {
        let ring = self.config().geometry.log_blocks();
        let known = self.gum.checkpoint;
        let Some(locker) = self.gum.locker.as_ref() else {
            return;
        };
        if !locker.ready() || locker.checkpoint_job.is_some() || !locker.flights.is_empty() {
            return;
        }
        let log_position = self.gum.applied_position + 1;
        if locker.next_position != log_position
            || log_position.saturating_sub(known.log_position) < ring / 2
            || self.gum.replica.sequence <= known.sequence
        {
            return;
        }
        let payload = self.gum.replica.snapshot_bytes();
        let slot = if known.generation == 0 {
            0
        } else {
            1 - known.slot
        };
        let region = self.config().geometry.checkpoint_region(slot);
        let blocks = (payload.len() as u64).div_ceil(BLOCK_SIZE as u64);
        if blocks > region.blocks - 1 {
            self.emit(Event::GumTrouble {
                what: "the database no longer fits a checkpoint slot; the log will fill",
            });
            return;
        }
        // Checkpoints only move forward in the log, and the header waits for at least one
        // payload write (a replica snapshot is never empty).
        debug_assert!(known.generation == 0 || log_position > known.log_position);
        debug_assert!(blocks >= 1, "an empty checkpoint payload");
        let job = CheckpointJob {
            generation: known.generation + 1,
            slot,
            sequence: self.gum.replica.sequence,
            log_position,
            payload_writes_left: blocks,
            payload,
            header_in_flight: false,
            failed: false,
        };
        let chunks: Vec<Box<[u8; BLOCK_SIZE]>> = job
            .payload
            .chunks(BLOCK_SIZE)
            .map(|chunk| {
                let mut block = Box::new([0u8; BLOCK_SIZE]);
                block[..chunk.len()].copy_from_slice(chunk);
                block
            })
            .collect();
        if let Some(locker) = self.gum.locker.as_mut() {
            locker.checkpoint_job = Some(job);
        }
        for (index, block) in chunks.into_iter().enumerate() {
            let offset = region.block_offset(1 + index as u64);
            self.gum.log_writes_in_flight += 1;
            self.disk_write_block(
                Purpose::GumCheckpointWrite {
                    what: CheckpointWrite::Payload,
                },
                offset,
                block,
            );
        }
        self.checkpoint_header_when_ready();
    }

    pub(crate) fn on_checkpoint_written(&mut self, what: CheckpointWrite, ok: bool) {
        debug_assert!(
            self.gum.log_writes_in_flight > 0,
            "a checkpoint write completes once"
        );
        self.gum.log_writes_in_flight = self.gum.log_writes_in_flight.saturating_sub(1);
        self.answer_sync();
        let Some(job) = self.checkpoint_job() else {
            return;
        };
        job.failed |= !ok;
        // FORMAT.md §9: the payload first, then the header; the header landing truncates the
        // log, so it may be in flight only once every payload block landed.
        debug_assert!(match what {
            CheckpointWrite::Payload => job.payload_writes_left > 0 && !job.header_in_flight,
            CheckpointWrite::Header => job.payload_writes_left == 0 && job.header_in_flight,
        });
        match what {
            CheckpointWrite::Payload => {
                job.payload_writes_left -= 1;
                self.checkpoint_header_when_ready();
            }
            CheckpointWrite::Header => {
                let Some(job) = self
                    .gum
                    .locker
                    .as_mut()
                    .and_then(|locker| locker.checkpoint_job.take())
                else {
                    return;
                };
                if !job.failed {
                    self.gum.checkpoint = CheckpointKnown {
                        generation: job.generation,
                        slot: job.slot,
                        sequence: job.sequence,
                        log_position: job.log_position,
                    };
                    self.emit(Event::GumCheckpoint {
                        sequence: job.sequence,
                        log_position: job.log_position,
                    });
                    self.locker_write();
                }
            }
        }
    }

    /// The checkpoint this locker is writing, if any.
    fn checkpoint_job(&mut self) -> Option<&mut CheckpointJob> {
        let locker = self.gum.locker.as_mut()?;
        // Only a ready locker checkpoints, and a locker never becomes not ready again.
        debug_assert!(locker.checkpoint_job.is_none() || locker.ready());
        locker.checkpoint_job.as_mut()
    }

    fn checkpoint_header_when_ready(&mut self) {
        let cluster_id = self.config().cluster_id;
        let geometry = self.config().geometry;
        let Some(job) = self.checkpoint_job() else {
            return;
        };
        if job.payload_writes_left > 0 || job.header_in_flight {
            return;
        }
        if job.failed {
            // Try again later from the then current state.
            if let Some(locker) = self.gum.locker.as_mut() {
                locker.checkpoint_job = None;
            }
            return;
        }
        job.header_in_flight = true;
        let (job_sequence, job_position) = (job.sequence, job.log_position);
        // The header claims no more than is applied and written: its sequence is the replica's
        // at the start, and its position is one the locker numbered already.
        debug_assert!(self.gum.locker.as_ref().is_some_and(|locker| {
            job_position <= locker.next_position && job_sequence <= self.gum.replica.sequence
        }));
        let Some(job) = self.checkpoint_job() else {
            return;
        };
        let sealed = Sealed {
            cluster_id,
            sequence: job.generation,
            record: CheckpointHeader {
                database_sequence: job.sequence,
                log_position: job.log_position,
                payload_bytes: job.payload.len() as u64,
                payload_crc32: disk_records::payload_crc32(&job.payload),
            },
        };
        let offset = geometry.checkpoint_offset(job.slot);
        self.gum.log_writes_in_flight += 1;
        self.disk_write(
            Purpose::GumCheckpointWrite {
                what: CheckpointWrite::Header,
            },
            offset,
            &sealed,
        );
    }
}
