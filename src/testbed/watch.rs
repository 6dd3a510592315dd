//! Following the prober's samples while it runs (it writes them line by line): what a test
//! needs to wait, with a generous deadline, until the client got an answer from a given node,
//! instead of sleeping a guessed time and checking afterwards.
use super::bed::{sleep_ms, Bed};
use super::samples::{self, Sample};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Reads a samples file incrementally: each `refresh` parses only what was appended.
pub struct SampleTail {
    path: PathBuf,
    offset: u64,
    /// A line still being written (no newline yet).
    partial: String,
    pub samples: Vec<Sample>,
}

impl SampleTail {
    pub fn new(path: PathBuf) -> SampleTail {
        SampleTail {
            path,
            offset: 0,
            partial: String::new(),
            samples: Vec::new(),
        }
    }

    /// Parses what was appended since the last call (nothing, if the file is not there yet).
    pub fn refresh(&mut self) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        let mut appended = String::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err()
            || file.read_to_string(&mut appended).is_err()
        {
            return;
        }
        self.offset += appended.len() as u64;
        self.partial.push_str(&appended);
        let Some(last_newline) = self.partial.rfind('\n') else {
            return;
        };
        let complete: String = self.partial.drain(..=last_newline).collect();
        let (parsed, _) = samples::parse(&complete);
        self.samples.extend(parsed);
    }

    /// The first user-path answer of `group` by `name` that started at or after `since_us`.
    pub fn first_answer(&self, group: u8, name: &str, since_us: u64) -> Option<&Sample> {
        self.samples.iter().find(|sample| {
            sample.group == group
                && sample.path == "user"
                && sample.start_us >= since_us
                && sample.answer.as_deref() == Ok(name)
        })
    }
}

impl Bed {
    /// The prober's samples file.
    pub fn samples_path(&self) -> PathBuf {
        self.dir.join("probe.samples")
    }

    /// Waits until the client, as a user, got an answer for `group` from node `node` in a
    /// probe started at or after `since_us`; returns that probe's start (µs).
    pub fn wait_client_answered_by(
        &mut self,
        group: u8,
        node: u8,
        since_us: u64,
        deadline: Duration,
    ) -> Result<u64, String> {
        let name = format!("n{node}");
        let until = Instant::now() + deadline;
        let mut tail = SampleTail::new(self.samples_path());
        loop {
            tail.refresh();
            if let Some(sample) = tail.first_answer(group, &name, since_us) {
                return Ok(sample.start_us);
            }
            if Instant::now() > until {
                return Err(format!(
                    "timed out after {} s waiting for the client to get an answer from {name} \
                     (files in {})",
                    deadline.as_secs(),
                    self.dir.display()
                ));
            }
            sleep_ms(100)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_tail_parses_only_complete_new_lines() {
        let dir = std::env::temp_dir().join(format!("wp-watch-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("probe.samples");
        let mut file = std::fs::File::create(&path).unwrap();
        let mut tail = SampleTail::new(path.clone());
        tail.refresh();
        assert!(tail.samples.is_empty());
        write!(file, "0 100 200 1 user n1\n1 10100 10200 1 us").unwrap();
        tail.refresh();
        assert_eq!(tail.samples.len(), 1);
        writeln!(file, "er n2").unwrap();
        tail.refresh();
        assert_eq!(tail.samples.len(), 2);
        assert_eq!(tail.first_answer(1, "n2", 0).map(|s| s.round), Some(1));
        assert!(tail.first_answer(1, "n1", 5_000).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
