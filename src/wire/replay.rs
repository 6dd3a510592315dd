//! The sliding replay window of one sender incarnation (the ring bitmap of WireGuard, RFC 6479).
//!
//! UDP reorders datagrams, and a node's frames take several networks of different latency, so
//! a frame may arrive after later ones. The window remembers, for the last
//! [`REPLAY_WINDOW_DEPTH`] sequence numbers up to the newest accepted, which were accepted.
//!
//! Invariants: a sequence number is accepted at most once per window; a number more than
//! `REPLAY_WINDOW_DEPTH - 1` behind the newest is refused, seen or not; `newest` only grows.
//! The depth is large because a sender numbers all its frames in one sequence, whichever node
//! and network they go to: a receiver sees gaps, and one burst of a global update to 63 nodes
//! on 8 networks spends about 500 numbers. 1984 numbers cost 256 bytes per sender.
use super::DropReason;

const WORD_BITS: u64 = u64::BITS as u64;
/// Words of the ring. One word is kept as slack so that sliding forward clears whole words.
const RING_WORDS: usize = 32;
/// How far behind the newest sequence number a frame may be and still be accepted once:
/// numbers `newest - (REPLAY_WINDOW_DEPTH - 1) ..= newest` are in the window.
pub const REPLAY_WINDOW_DEPTH: u64 = (RING_WORDS as u64 - 1) * WORD_BITS;

const _: () = assert!(RING_WORDS.is_power_of_two());

/// What one sender incarnation has had accepted.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// The highest sequence number accepted; `None` before the first.
    newest: Option<u64>,
    /// Bit `sequence % (RING_WORDS * 64)` says whether `sequence` was accepted, for sequences
    /// in the window.
    ring: [u64; RING_WORDS],
}

impl Default for ReplayWindow {
    fn default() -> ReplayWindow {
        ReplayWindow {
            newest: None,
            ring: [0; RING_WORDS],
        }
    }
}

fn slot(sequence: u64) -> (usize, u64) {
    let word = (sequence / WORD_BITS) as usize % RING_WORDS;
    (word, 1u64 << (sequence % WORD_BITS))
}

impl ReplayWindow {
    /// Whether `sequence` would be accepted now. Changes nothing.
    pub fn check(&self, sequence: u64) -> Result<(), DropReason> {
        let Some(newest) = self.newest else {
            return Ok(());
        };
        if sequence > newest {
            return Ok(());
        }
        if newest - sequence >= REPLAY_WINDOW_DEPTH {
            return Err(DropReason::TooOld);
        }
        let (word, bit) = slot(sequence);
        match self.ring[word] & bit {
            0 => Ok(()),
            _ => Err(DropReason::Replayed),
        }
    }

    /// Records `sequence` as accepted. Call only after [`ReplayWindow::check`] accepted it and
    /// the frame's tag verified.
    pub fn accept(&mut self, sequence: u64) {
        assert!(self.check(sequence).is_ok(), "sequence {sequence} refused");
        let newest_word = match self.newest {
            None => {
                self.ring = [0; RING_WORDS];
                self.newest = Some(sequence);
                None
            }
            Some(newest) => Some(newest / WORD_BITS),
        };
        if let Some(newest_word) = newest_word {
            let sequence_word = sequence / WORD_BITS;
            if sequence_word > newest_word {
                // Clear the words the window slides over; past a whole ring, all of them.
                let slid_words = (sequence_word - newest_word).min(RING_WORDS as u64);
                for step in 1..=slid_words {
                    self.ring[((newest_word + step) % RING_WORDS as u64) as usize] = 0;
                }
            }
            if self.newest < Some(sequence) {
                self.newest = Some(sequence);
            }
        }
        let (word, bit) = slot(sequence);
        self.ring[word] |= bit;
        debug_assert!(self.check(sequence) == Err(DropReason::Replayed));
    }

    /// The highest sequence number accepted, if any.
    #[cfg(test)]
    pub fn newest(&self) -> Option<u64> {
        self.newest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(window: &mut ReplayWindow, sequence: u64) -> Result<(), DropReason> {
        window.check(sequence)?;
        window.accept(sequence);
        Ok(())
    }

    #[test]
    fn accepts_each_number_once_in_any_order_within_the_window() {
        let mut window = ReplayWindow::default();
        for sequence in [5, 3, 9, 4, 0, 1000, 8, 999] {
            assert_eq!(take(&mut window, sequence), Ok(()), "{sequence}");
            assert_eq!(take(&mut window, sequence), Err(DropReason::Replayed));
        }
        assert_eq!(window.newest(), Some(1000));
        assert_eq!(take(&mut window, 7), Ok(()));
    }

    #[test]
    fn refuses_what_fell_behind_the_window() {
        let mut window = ReplayWindow::default();
        take(&mut window, 10_000).expect("first");
        let oldest_in_window = 10_000 - (REPLAY_WINDOW_DEPTH - 1);
        assert_eq!(window.check(oldest_in_window - 1), Err(DropReason::TooOld));
        assert_eq!(take(&mut window, oldest_in_window), Ok(()));
        assert_eq!(
            take(&mut window, oldest_in_window),
            Err(DropReason::Replayed)
        );
    }

    #[test]
    fn a_long_jump_forgets_everything_behind() {
        let mut window = ReplayWindow::default();
        for sequence in 0..3000 {
            take(&mut window, sequence).expect("in order");
        }
        take(&mut window, 3000 + 10 * REPLAY_WINDOW_DEPTH).expect("jump");
        for behind in 1..REPLAY_WINDOW_DEPTH {
            assert_eq!(
                window.check(3000 + 10 * REPLAY_WINDOW_DEPTH - behind),
                Ok(())
            );
        }
    }

    #[test]
    fn the_last_sequence_number_is_accepted_once() {
        let mut window = ReplayWindow::default();
        assert_eq!(take(&mut window, u64::MAX), Ok(()));
        assert_eq!(take(&mut window, u64::MAX), Err(DropReason::Replayed));
        assert_eq!(take(&mut window, u64::MAX - 1), Ok(()));
    }
}
