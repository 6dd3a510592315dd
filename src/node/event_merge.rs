//! `ctl events`: this node's events and those the peers sent, merged in wall-clock order on this
//! node's clock. Each peer's wall clock is corrected by the time service's estimate of its skew
//! (its clock minus ours, one-way transit included: well below a millisecond on a LAN); a peer
//! without an estimate is merged uncorrected, and the header line says which.
//!
//! The merge keeps each node's own order (its sequence numbers) even if its wall clock stepped
//! backwards, and among nodes takes the earliest corrected wall clock first (ties: lower node
//! id), so one node's history is never shuffled by another's.
use super::event_exchange::{CollectedEvents, PeerEvents};
use super::event_record::{corrected_wall_ms, EventRecord};
use std::fmt::Write;

/// One node's events and the correction its wall clock gets.
pub struct Source<'records> {
    pub node: u8,
    /// Added to its wall clock: minus its skew; 0 for this node.
    pub correction_ms: i64,
    /// In its sequence order.
    pub records: Vec<&'records EventRecord>,
}

/// Every source's records in merged order, each with its source's correction.
pub fn merge<'records>(sources: &[Source<'records>]) -> Vec<(&'records EventRecord, i64)> {
    let mut next = vec![0usize; sources.len()];
    let total = sources.iter().map(|source| source.records.len()).sum();
    let mut merged = Vec::with_capacity(total);
    loop {
        let earliest = sources
            .iter()
            .zip(&next)
            .enumerate()
            .filter_map(|(index, (source, &at))| {
                let record = source.records.get(at)?;
                let wall = corrected_wall_ms(record.wall_ms, source.correction_ms);
                Some(((wall, source.node), index, *record))
            })
            .min_by_key(|(key, _, _)| *key);
        let Some((_, index, record)) = earliest else {
            return merged;
        };
        next[index] += 1;
        merged.push((record, sources[index].correction_ms));
    }
}

/// The answer to `ctl events`: a header line (text: starting `# `; JSON: an object with
/// `merged_on`), then one line per event. `skew_ms_of` is the time service's estimate of a
/// peer's clock minus ours.
pub fn render<'records>(
    own_node: u8,
    own_records: impl Iterator<Item = &'records EventRecord>,
    collected: &'records CollectedEvents,
    skew_ms_of: impl Fn(u8) -> Option<i64>,
) -> String {
    let mut sources = vec![Source {
        node: own_node,
        correction_ms: 0,
        records: own_records.collect(),
    }];
    let answered: Vec<&PeerEvents> = collected.peers.iter().filter(|p| p.answered).collect();
    let silent: Vec<u8> = collected
        .peers
        .iter()
        .filter(|peer| !peer.answered)
        .map(|peer| peer.node)
        .collect();
    let incomplete: Vec<u8> = answered
        .iter()
        .filter(|peer| !peer.complete)
        .map(|peer| peer.node)
        .collect();
    let corrections: Vec<(u8, Option<i64>)> = answered
        .iter()
        .map(|peer| (peer.node, skew_ms_of(peer.node).map(|skew| -skew)))
        .collect();
    for (peer, (_, correction)) in answered.iter().zip(&corrections) {
        sources.push(Source {
            node: peer.node,
            correction_ms: correction.unwrap_or(0),
            records: peer.records.iter().collect(),
        });
    }
    let mut out = match collected.json {
        true => json_header(own_node, &sources, &silent, &incomplete, &corrections),
        false => text_header(own_node, &silent, &incomplete, &corrections),
    };
    for (record, correction_ms) in merge(&sources) {
        out.push_str(&record.line(correction_ms, collected.json));
    }
    out
}

fn text_header(
    own_node: u8,
    silent: &[u8],
    incomplete: &[u8],
    corrections: &[(u8, Option<i64>)],
) -> String {
    let mut header = format!("# events merged by wall clock on node {own_node}'s clock; answered: node {own_node} (this node)");
    for (node, correction) in corrections {
        let _ = match correction {
            Some(correction) => write!(header, ", node {node} (corrected by {correction:+} ms)"),
            None => write!(header, ", node {node} (no clock estimate, uncorrected)"),
        };
    }
    if !incomplete.is_empty() {
        let _ = write!(header, "; incomplete: {}", nodes_text(incomplete));
    }
    let _ = match silent.is_empty() {
        true => write!(header, "; every configured node answered"),
        false => write!(header, "; did not answer: {}", nodes_text(silent)),
    };
    header.push('\n');
    header
}

fn json_header(
    own_node: u8,
    sources: &[Source],
    silent: &[u8],
    incomplete: &[u8],
    corrections: &[(u8, Option<i64>)],
) -> String {
    let list = |ids: &mut dyn Iterator<Item = u8>| {
        ids.map(|id| id.to_string()).collect::<Vec<_>>().join(",")
    };
    let corrections: Vec<String> = corrections
        .iter()
        .map(|(node, correction)| {
            let correction = correction.map_or("null".to_string(), |c| c.to_string());
            format!("{{\"node\":{node},\"correction_ms\":{correction}}}")
        })
        .collect();
    format!(
        "{{\"merged_on\":{own_node},\"answered\":[{}],\"not_answered\":[{}],\"incomplete\":[{}],\"corrections\":[{}]}}\n",
        list(&mut sources.iter().map(|source| source.node)),
        list(&mut silent.iter().copied()),
        list(&mut incomplete.iter().copied()),
        corrections.join(",")
    )
}

fn nodes_text(ids: &[u8]) -> String {
    let ids: Vec<String> = ids.iter().map(|id| format!("node {id}")).collect();
    ids.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::event_record::EventKind;
    use mio::Token;

    fn record(node: u8, sequence: u64, wall_ms: u64) -> EventRecord {
        EventRecord {
            node,
            sequence,
            epoch: 1,
            monotonic_us: sequence,
            wall_ms,
            kind: EventKind::Membership,
            group: None,
            resource: None,
            text: format!("n{node}s{sequence}"),
        }
    }

    fn order(merged: &[(&EventRecord, i64)]) -> Vec<String> {
        merged
            .iter()
            .map(|(record, _)| record.text.clone())
            .collect()
    }

    #[test]
    fn skews_are_corrected_before_ordering() {
        // Node 2's clock runs 500 ms ahead of ours: its event at 1400 happened at our 900.
        let own = [record(1, 1, 1000), record(1, 2, 2000)];
        let ahead = [record(2, 1, 1400), record(2, 2, 2600)];
        let merged = merge(&[
            Source {
                node: 1,
                correction_ms: 0,
                records: own.iter().collect(),
            },
            Source {
                node: 2,
                correction_ms: -500,
                records: ahead.iter().collect(),
            },
        ]);
        assert_eq!(order(&merged), ["n2s1", "n1s1", "n1s2", "n2s2"]);
        assert_eq!(merged[0].1, -500);
    }

    #[test]
    fn a_clock_stepping_back_never_reorders_its_own_node() {
        let own = [record(1, 1, 1000), record(1, 2, 3000)];
        // Node 3's wall clock stepped back between its two events.
        let stepped = [record(3, 1, 2000), record(3, 2, 1500)];
        let merged = merge(&[
            Source {
                node: 1,
                correction_ms: 0,
                records: own.iter().collect(),
            },
            Source {
                node: 3,
                correction_ms: 0,
                records: stepped.iter().collect(),
            },
        ]);
        assert_eq!(order(&merged), ["n1s1", "n3s1", "n3s2", "n1s2"]);
    }

    #[test]
    fn ties_go_to_the_lower_node_and_every_record_appears_once() {
        let a = [record(2, 1, 100), record(2, 2, 100)];
        let b = [record(1, 1, 100)];
        let merged = merge(&[
            Source {
                node: 2,
                correction_ms: 0,
                records: a.iter().collect(),
            },
            Source {
                node: 1,
                correction_ms: 0,
                records: b.iter().collect(),
            },
        ]);
        assert_eq!(order(&merged), ["n1s1", "n2s1", "n2s2"]);
    }

    #[test]
    fn the_header_names_who_answered_the_corrections_and_who_did_not() {
        let own = [record(1, 1, 2000)];
        let collected = CollectedEvents {
            connection: Token(1),
            json: false,
            own_newest: 1,
            peers: vec![
                PeerEvents {
                    node: 2,
                    answered: true,
                    complete: true,
                    records: vec![record(2, 1, 2010)],
                },
                PeerEvents {
                    node: 3,
                    answered: true,
                    complete: false,
                    records: vec![record(3, 4, 1000)],
                },
                PeerEvents {
                    node: 4,
                    answered: false,
                    complete: false,
                    records: Vec::new(),
                },
            ],
        };
        let skew = |node: u8| (node == 2).then_some(20);
        let text = render(1, own.iter(), &collected, skew);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("# "), "{text}");
        assert!(lines[0].contains("node 2 (corrected by -20 ms)"), "{text}");
        assert!(lines[0].contains("node 3 (no clock estimate"), "{text}");
        assert!(lines[0].contains("incomplete: node 3"), "{text}");
        assert!(lines[0].contains("did not answer: node 4"), "{text}");
        // Node 2's 2010 is our 1990: before our own 2000.
        let texts: Vec<&str> = lines[1..]
            .iter()
            .map(|line| line.rsplit(' ').next().unwrap_or_default())
            .collect();
        assert_eq!(texts, ["n3s4", "n2s1", "n1s1"]);
        let json_collected = CollectedEvents {
            json: true,
            ..collected
        };
        let json = render(1, own.iter(), &json_collected, skew);
        let mut lines = json.lines();
        let header: serde_json::Value =
            serde_json::from_str(lines.next().unwrap_or_default()).expect("JSON header");
        assert_eq!(header["merged_on"], 1);
        assert_eq!(header["answered"], serde_json::json!([1, 2, 3]));
        assert_eq!(header["not_answered"], serde_json::json!([4]));
        assert_eq!(header["corrections"][0]["correction_ms"], -20);
        assert!(header["corrections"][1]["correction_ms"].is_null());
        let events: Vec<serde_json::Value> = lines
            .map(|line| serde_json::from_str(line).expect("JSON event"))
            .collect();
        assert_eq!(events.len(), 3);
        assert_eq!(events[1]["wall_ms"], 1990);
    }
}
