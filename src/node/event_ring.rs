//! This node's recent events (the last `EVENTS_KEPT_MAX`), and the admin connections following
//! them (`ctl events --follow`). Each entry gets the node id, the epoch the daemon last set,
//! both clocks and a sequence number, so peers can ask for "everything after S"
//! (`event_exchange`).
use super::event_record::{clean_name, clean_text, EventKind, EventRecord, Transition};
use crate::admin::server::AdminServer;
use mio::{Registry, Token};
use std::collections::VecDeque;

/// How many events a node keeps for `ctl events`.
pub const EVENTS_KEPT_MAX: usize = 1000;

pub struct EventRing {
    node: u8,
    /// The core's epoch, as of the daemon's last `set_epoch`.
    epoch: u64,
    events: VecDeque<EventRecord>,
    /// Following connections: (connection, JSON, last sequence sent).
    followers: Vec<(Token, bool, u64)>,
    /// The sequence of the newest event (0: none yet).
    newest: u64,
}

impl EventRing {
    pub fn new(node: u8) -> EventRing {
        EventRing {
            node,
            epoch: 0,
            events: VecDeque::new(),
            followers: Vec::new(),
            newest: 0,
        }
    }

    /// The epoch later events are recorded in (the daemon sets it before draining the core's
    /// outputs, so an event carries the epoch the core was in when it reported it).
    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// Records a line of text in the category its pusher names.
    pub fn push(&mut self, kind: EventKind, text: String) {
        self.record(kind, None, None, &text);
    }

    /// Records a group's or a resource's state change (the group runner's outputs).
    pub fn push_transition(&mut self, transition: &Transition) {
        let kind = match transition.resource {
            Some(_) => EventKind::Resource,
            None => EventKind::Group,
        };
        self.record(
            kind,
            Some(clean_name(&transition.group)),
            transition.resource.as_deref().map(clean_name),
            &transition.text(),
        );
    }

    fn record(
        &mut self,
        kind: EventKind,
        group: Option<String>,
        resource: Option<String>,
        text: &str,
    ) {
        if self.events.len() == EVENTS_KEPT_MAX {
            self.events.pop_front();
        }
        self.newest += 1;
        self.events.push_back(EventRecord {
            node: self.node,
            sequence: self.newest,
            epoch: self.epoch,
            monotonic_us: crate::monitor::event_log::monotonic_micros(),
            wall_ms: super::time_service::wall_ms(),
            kind,
            group,
            resource,
            text: clean_text(text),
        });
    }

    /// Every kept event, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &EventRecord> {
        self.events.iter()
    }

    /// The kept events up to sequence `last`, oldest first.
    pub fn up_to(&self, last: u64) -> impl Iterator<Item = &EventRecord> {
        self.events
            .iter()
            .take_while(move |event| event.sequence <= last)
    }

    /// The kept events after sequence `after`, oldest first.
    pub fn after(&self, after: u64) -> impl Iterator<Item = &EventRecord> {
        let skip = self
            .events
            .front()
            .map_or(0, |oldest| after.saturating_sub(oldest.sequence - 1));
        self.events
            .iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
    }

    /// The sequence of the oldest kept event (`newest + 1` when none is kept).
    pub fn oldest_sequence(&self) -> u64 {
        self.events
            .front()
            .map_or(self.newest + 1, |oldest| oldest.sequence)
    }

    pub fn newest_sequence(&self) -> u64 {
        self.newest
    }

    /// This node's events as `ctl events --local` shows them.
    pub fn render(&self, json: bool) -> String {
        self.events
            .iter()
            .map(|event| event.line(0, json))
            .collect()
    }

    /// Starts streaming to `connection`: everything kept so far, then every new event.
    pub fn follow(
        &mut self,
        admin: &mut AdminServer,
        registry: &Registry,
        connection: Token,
        json: bool,
    ) {
        admin.stream(registry, connection, &format!("ok\n{}", self.render(json)));
        self.followers.push((connection, json, self.newest));
    }

    pub fn flush_followers(&mut self, admin: &mut AdminServer, registry: &Registry) {
        let newest = self.newest;
        let events = &self.events;
        self.followers.retain_mut(|(connection, json, seen)| {
            if !admin.is_open(*connection) {
                return false;
            }
            let text: String = events
                .iter()
                .filter(|event| event.sequence > *seen)
                .map(|event| event.line(0, *json))
                .collect();
            if !text.is_empty() {
                admin.stream(registry, *connection, &text);
            }
            *seen = newest;
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_carry_node_epoch_sequence_and_category() {
        let mut ring = EventRing::new(3);
        ring.push(EventKind::Node, "first frame sent".into());
        ring.set_epoch(4);
        ring.push(EventKind::Membership, "stabilized epoch 4".into());
        ring.push_transition(&Transition {
            group: "web".into(),
            resource: Some("ip".into()),
            from: "offline".into(),
            to: "online".into(),
            reason: "group placed here".into(),
        });
        let records: Vec<&EventRecord> = ring.records().collect();
        assert_eq!(records.len(), 3);
        assert_eq!((records[0].node, records[0].epoch), (3, 0));
        assert_eq!(records[0].kind, EventKind::Node);
        assert_eq!((records[1].sequence, records[1].epoch), (2, 4));
        assert_eq!(records[2].kind, EventKind::Resource);
        assert_eq!(records[2].subject(), "web/ip");
        assert_eq!(records[2].text, "offline -> online: group placed here");
        assert!(records[0].monotonic_us <= records[2].monotonic_us);
    }

    #[test]
    fn the_category_is_the_pushers_never_guessed_from_the_text() {
        let mut ring = EventRing::new(1);
        ring.push(
            EventKind::Node,
            "resource lease text pushed as a node event".into(),
        );
        ring.push(EventKind::Gum, "group-like wording in a gum event".into());
        let kinds: Vec<EventKind> = ring.records().map(|record| record.kind).collect();
        assert_eq!(kinds, [EventKind::Node, EventKind::Gum]);
    }

    #[test]
    fn after_skips_what_was_seen_and_survives_the_ring_wrapping() {
        let mut ring = EventRing::new(1);
        for index in 0..EVENTS_KEPT_MAX + 10 {
            ring.push(EventKind::Node, format!("event {index}"));
        }
        assert_eq!(ring.newest_sequence(), EVENTS_KEPT_MAX as u64 + 10);
        assert_eq!(ring.oldest_sequence(), 11);
        assert_eq!(ring.after(0).next().map(|e| e.sequence), Some(11));
        assert_eq!(ring.after(500).next().map(|e| e.sequence), Some(501));
        assert_eq!(ring.after(ring.newest_sequence()).count(), 0);
        assert_eq!(ring.after(u64::MAX).count(), 0);
        assert_eq!(ring.up_to(20).map(|e| e.sequence).last(), Some(20));
        assert_eq!(ring.up_to(20).count(), 10);
        assert_eq!(EventRing::new(1).oldest_sequence(), 1);
    }
}
