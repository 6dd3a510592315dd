//! The split-brain check on the monitors' event log: `<µs> node=N resource=R online|offline`
//! (CLOCK_MONOTONIC, shared by every namespace of the host). The monitor writes `online` before
//! it spawns anything and `offline` only after the resource's process groups are gone, so two
//! intervals of one resource on two nodes that intersect mean it may have run twice at once.
use std::collections::BTreeMap;

/// One resource's online interval on one node; `until_us` is `u64::MAX` while still online.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    pub resource: String,
    pub node: u8,
    pub since_us: u64,
    pub until_us: u64,
}

/// What the event log shows.
#[derive(Clone, Debug, Default)]
pub struct OverlapReport {
    pub intervals: Vec<Interval>,
    /// Pairs of intervals of one resource on different nodes that intersect.
    pub overlaps: Vec<(Interval, Interval)>,
    pub unparseable_lines: usize,
}

/// One line of the event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub at: u64,
    pub node: u8,
    pub resource: String,
    pub online: bool,
}

/// `<µs> node=N resource=R online|offline`, or `None`.
pub fn parse_line(line: &str) -> Option<LogLine> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let online = match *fields.get(3)? {
        "online" => true,
        "offline" => false,
        _ => return None,
    };
    Some(LogLine {
        at: fields.first()?.parse().ok()?,
        node: fields.get(1)?.strip_prefix("node=")?.parse().ok()?,
        resource: fields.get(2)?.strip_prefix("resource=")?.to_string(),
        online,
    })
}

/// Reads an event log; see the module doc.
pub fn check(text: &str) -> OverlapReport {
    let mut report = OverlapReport::default();
    let mut open: BTreeMap<(String, u8), u64> = BTreeMap::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let Some(LogLine {
            at,
            node,
            resource,
            online,
        }) = parse_line(line)
        else {
            report.unparseable_lines += 1;
            continue;
        };
        if online {
            open.entry((resource, node)).or_insert(at);
        } else if let Some(since_us) = open.remove(&(resource.clone(), node)) {
            report.intervals.push(Interval {
                resource,
                node,
                since_us,
                until_us: at,
            });
        }
    }
    for ((resource, node), since_us) in open {
        report.intervals.push(Interval {
            resource,
            node,
            since_us,
            until_us: u64::MAX,
        });
    }
    for (index, a) in report.intervals.iter().enumerate() {
        for b in &report.intervals[index + 1..] {
            let intersect = a.since_us < b.until_us && b.since_us < a.until_us;
            if a.resource == b.resource && a.node != b.node && intersect {
                report.overlaps.push((a.clone(), b.clone()));
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlap_check_has_teeth() {
        let clean = "10 node=1 resource=g online\n20 node=1 resource=g offline\n25 node=2 resource=g online\n";
        let report = check(clean);
        assert_eq!((report.intervals.len(), report.overlaps.len()), (2, 0));
        let overlap = "10 node=1 resource=g online\n20 node=2 resource=g online\n30 node=1 resource=g offline\n";
        assert_eq!(check(overlap).overlaps.len(), 1);
        let never_stopped = "10 node=1 resource=g online\n99 node=2 resource=g online\n";
        assert_eq!(check(never_stopped).overlaps.len(), 1);
        let other_resource = "10 node=1 resource=g online\n20 node=2 resource=h online\n";
        assert_eq!(check(other_resource).overlaps.len(), 0);
        assert_eq!(check("garbage\n").unparseable_lines, 1);
    }
}
