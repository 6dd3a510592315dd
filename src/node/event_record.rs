//! One entry of the event log: what happened, on which node, in which epoch, at which instant
//! by both clocks, and how `ctl events` prints it.
//!
//! Text line (`ctl events`, `--local`, `--follow`), fields separated by single spaces so a
//! script can split off the first six and keep the text whole:
//!
//! ```text
//! 2025-03-01T10:00:00.123Z node=2 epoch=7 mono_us=5123456789 membership - stabilized epoch 7 members {1,2,3}
//! 2025-03-01T10:00:01.004Z node=2 epoch=7 mono_us=5124337001 resource web/ip online -> failed: exit code 1
//! ```
//!
//! wall time (ISO 8601 UTC, ms; in a merged answer, on the answering node's clock), node,
//! epoch, CLOCK_MONOTONIC µs (of the node that recorded it), category, `group`,
//! `group/resource` or `-`, text.

/// Longest text an entry keeps (bytes): every entry then fits one datagram of the event
/// exchange, and a chatty resource cannot make the ring large.
pub const TEXT_BYTES_MAX: usize = 1024;
/// Longest group or resource name kept (bytes): the catalog's limit.
pub const NAME_BYTES_MAX: usize = 64;
/// The latest wall clock rendered (9999-12-31T23:59:59.999Z): a peer's absurd clock must not
/// overflow the arithmetic.
const WALL_MS_MAX: i64 = 253_402_300_799_999;

/// What an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
    /// Regroup, stabilization, peers lost or stopped, quorum.
    Membership,
    /// The global update manager and the database replica.
    Gum,
    /// A group's state on this node.
    Group,
    /// A resource's state on this node.
    Resource,
    /// The daemon itself: clocks, the network, anything else.
    Node,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Membership,
        EventKind::Gum,
        EventKind::Group,
        EventKind::Resource,
        EventKind::Node,
    ];

    pub fn label(self) -> &'static str {
        match self {
            EventKind::Membership => "membership",
            EventKind::Gum => "gum",
            EventKind::Group => "group",
            EventKind::Resource => "resource",
            EventKind::Node => "node",
        }
    }

    /// Its number on the wire (the event exchange).
    pub fn code(self) -> u8 {
        match self {
            EventKind::Membership => 1,
            EventKind::Gum => 2,
            EventKind::Group => 3,
            EventKind::Resource => 4,
            EventKind::Node => 5,
        }
    }

    pub fn from_code(code: u8) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| kind.code() == code)
    }
}

/// A group's or a resource's state change, as the group runner reports it. States are plain
/// words ("online", "failed", …) so the event log does not depend on the runner's types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub group: String,
    /// `None`: the group itself changed state.
    pub resource: Option<String>,
    pub from: String,
    pub to: String,
    /// Why: the command, the failure, the node lost, …
    pub reason: String,
}

impl Transition {
    /// The entry's text: "online -> failed: exit code 1" (the subject is its own column).
    pub fn text(&self) -> String {
        format!("{} -> {}: {}", self.from, self.to, self.reason)
    }
}

/// One entry of a node's event ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// The node that recorded it.
    pub node: u8,
    /// Per node and incarnation, from 1, without gaps.
    pub sequence: u64,
    /// The core's epoch when it was recorded.
    pub epoch: u64,
    /// CLOCK_MONOTONIC of the recording node, µs.
    pub monotonic_us: u64,
    /// CLOCK_REALTIME of the recording node, ms since the Unix epoch.
    pub wall_ms: u64,
    pub kind: EventKind,
    pub group: Option<String>,
    pub resource: Option<String>,
    pub text: String,
}

impl EventRecord {
    /// The subject column: `group`, `group/resource` or `-`.
    pub fn subject(&self) -> String {
        match (&self.group, &self.resource) {
            (Some(group), Some(resource)) => format!("{group}/{resource}"),
            (Some(group), None) => group.clone(),
            (None, Some(resource)) => format!("-/{resource}"),
            (None, None) => "-".to_string(),
        }
    }

    /// One output line, its wall time moved by `correction_ms` (a peer's skew, see
    /// `event_merge`; 0 for this node's own events).
    pub fn line(&self, correction_ms: i64, json: bool) -> String {
        let shown_ms = corrected_wall_ms(self.wall_ms, correction_ms);
        let wall = iso8601_utc_ms(shown_ms);
        if json {
            let optional = |name: &Option<String>| match name {
                Some(name) => crate::json::quoted(name),
                None => "null".to_string(),
            };
            return format!(
                "{{\"wall\":\"{wall}\",\"wall_ms\":{shown_ms},\"recorded_wall_ms\":{},\"correction_ms\":{correction_ms},\"node\":{},\"sequence\":{},\"epoch\":{},\"monotonic_us\":{},\"category\":\"{}\",\"group\":{},\"resource\":{},\"text\":{}}}\n",
                self.wall_ms,
                self.node,
                self.sequence,
                self.epoch,
                self.monotonic_us,
                self.kind.label(),
                optional(&self.group),
                optional(&self.resource),
                crate::json::quoted(&self.text),
            );
        }
        format!(
            "{wall} node={} epoch={} mono_us={} {} {} {}\n",
            self.node,
            self.epoch,
            self.monotonic_us,
            self.kind.label(),
            self.subject(),
            self.text
        )
    }
}

/// A wall clock moved by a correction, within the renderable range.
pub fn corrected_wall_ms(wall_ms: u64, correction_ms: i64) -> i64 {
    i64::try_from(wall_ms)
        .unwrap_or(WALL_MS_MAX)
        .min(WALL_MS_MAX)
        .saturating_add(correction_ms)
        .clamp(0, WALL_MS_MAX)
}

/// The monotonic µs and the text of a text line (for scripts and benchmarks that time events
/// by CLOCK_MONOTONIC); `None` for a header line or anything else.
pub fn monotonic_and_text(line: &str) -> Option<(u64, &str)> {
    let fields: Vec<&str> = line.splitn(7, ' ').collect();
    let [_, node, _, monotonic, _, _, text] = fields.as_slice() else {
        return None;
    };
    node.strip_prefix("node=")?;
    Some((monotonic.strip_prefix("mono_us=")?.parse().ok()?, text))
}

/// Text as the ring keeps it: one line (control characters become spaces, so a reason with a
/// newline cannot forge a second entry), at most `TEXT_BYTES_MAX` bytes.
pub fn clean_text(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncated(cleaned, TEXT_BYTES_MAX)
}

/// A name as the ring keeps it: one column (whitespace, `/` and control characters become
/// `_`), at most `NAME_BYTES_MAX` bytes.
pub fn clean_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() || c == '/' {
                '_'
            } else {
                c
            }
        })
        .collect();
    truncated(cleaned, NAME_BYTES_MAX)
}

/// Whether text is what `clean_text` returns (a peer's entry must be).
pub fn is_clean_text(text: &str) -> bool {
    text.len() <= TEXT_BYTES_MAX && !text.chars().any(char::is_control)
}

/// Whether a name is what `clean_name` returns (a peer's entry must be).
pub fn is_clean_name(name: &str) -> bool {
    name.len() <= NAME_BYTES_MAX
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
}

fn truncated(mut text: String, bytes_max: usize) -> String {
    if text.len() > bytes_max {
        let mut end = bytes_max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// `ms` since the Unix epoch as ISO 8601 UTC with milliseconds: `2025-03-01T10:00:00.123Z`.
pub fn iso8601_utc_ms(ms: i64) -> String {
    let ms = ms.clamp(0, WALL_MS_MAX);
    let day_ms = 86_400_000;
    let (year, month, day) = civil_from_days(ms / day_ms);
    let in_day = ms % day_ms;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian; Howard Hinnant's
/// `civil_from_days`), for dates from 1970 on.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> EventRecord {
        EventRecord {
            node: 2,
            sequence: 9,
            epoch: 7,
            monotonic_us: 5_123_456_789,
            wall_ms: 1_740_823_200_123,
            kind: EventKind::Resource,
            group: Some("web".into()),
            resource: Some("ip".into()),
            text: "online -> failed: exit \"1\"".into(),
        }
    }

    #[test]
    fn wall_clocks_render_as_iso_8601_utc() {
        assert_eq!(iso8601_utc_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_utc_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            iso8601_utc_ms(1_740_823_200_123),
            "2025-03-01T10:00:00.123Z"
        );
        assert_eq!(
            iso8601_utc_ms(1_735_689_599_999),
            "2024-12-31T23:59:59.999Z"
        );
        assert_eq!(iso8601_utc_ms(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_utc_ms(i64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn a_text_line_has_every_column_and_scripts_can_split_it() {
        let line = record().line(-123, false);
        assert_eq!(
            line,
            "2025-03-01T10:00:00.000Z node=2 epoch=7 mono_us=5123456789 resource web/ip online -> failed: exit \"1\"\n"
        );
        assert_eq!(
            monotonic_and_text(line.trim_end()),
            Some((5_123_456_789, "online -> failed: exit \"1\""))
        );
        assert_eq!(monotonic_and_text("# merged on node 1's clock"), None);
    }

    #[test]
    fn a_json_line_names_both_wall_clocks_and_nulls_missing_names() {
        let mut plain = record();
        plain.group = None;
        plain.resource = None;
        let json: serde_json::Value =
            serde_json::from_str(&plain.line(5, true)).expect("valid JSON");
        assert_eq!(json["wall_ms"], 1_740_823_200_128u64);
        assert_eq!(json["recorded_wall_ms"], 1_740_823_200_123u64);
        assert_eq!(json["correction_ms"], 5);
        assert_eq!(json["category"], "resource");
        assert!(json["group"].is_null() && json["resource"].is_null());
        assert_eq!(json["text"], "online -> failed: exit \"1\"");
    }

    #[test]
    fn text_and_names_are_cleaned_to_one_line_and_bounded() {
        assert_eq!(clean_text("a\nb\tc"), "a b c");
        assert_eq!(clean_name("my group/x"), "my_group_x");
        let long = "é".repeat(TEXT_BYTES_MAX);
        let cleaned = clean_text(&long);
        assert!(cleaned.len() <= TEXT_BYTES_MAX && is_clean_text(&cleaned));
        assert!(is_clean_name(&clean_name(&"n".repeat(200))));
        assert!(!is_clean_text("two\nlines"));
        assert!(!is_clean_name("a b"));
    }

    #[test]
    fn kinds_round_trip_through_their_codes() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(EventKind::from_code(0), None);
    }
}
