//! Reading the prober's samples (format in `probe.rs`): did two nodes answer for one group in
//! the same round, and how long did the user go without an answer.
use std::collections::BTreeMap;

/// One probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub round: u64,
    pub start_us: u64,
    pub end_us: u64,
    pub group: u8,
    /// `user`, or `nN` for the path through node N.
    pub path: String,
    /// The name that answered, or why none did.
    pub answer: Result<String, String>,
}

/// Parses a samples file; unparseable lines (a torn last line) are skipped and counted.
pub fn parse(text: &str) -> (Vec<Sample>, usize) {
    let mut samples = Vec::new();
    let mut skipped = 0;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let sample = (|| {
            let [round, start, end, group, path, result] = fields.as_slice() else {
                return None;
            };
            Some(Sample {
                round: round.parse().ok()?,
                start_us: start.parse().ok()?,
                end_us: end.parse().ok()?,
                group: group.parse().ok()?,
                path: path.to_string(),
                answer: match result.strip_prefix('!') {
                    Some(failure) => Err(failure.to_string()),
                    None => Ok(result.to_string()),
                },
            })
        })();
        match sample {
            Some(sample) => samples.push(sample),
            None => skipped += 1,
        }
    }
    (samples, skipped)
}

/// Two or more different node names answering one group within one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoubleAnswer {
    pub group: u8,
    pub round: u64,
    pub names: Vec<String>,
    /// From the earliest start to the latest end of the answering probes: both nodes served
    /// the group within this span.
    pub span_us: u64,
}

/// Every round in which a group was answered by more than one node name.
pub fn double_answers(samples: &[Sample]) -> Vec<DoubleAnswer> {
    let mut rounds: BTreeMap<(u8, u64), Vec<&Sample>> = BTreeMap::new();
    for sample in samples.iter().filter(|sample| sample.answer.is_ok()) {
        rounds
            .entry((sample.group, sample.round))
            .or_default()
            .push(sample);
    }
    let mut found = Vec::new();
    for ((group, round), answered) in rounds {
        let mut names: Vec<String> = answered
            .iter()
            .filter_map(|sample| sample.answer.clone().ok())
            .collect();
        names.sort();
        names.dedup();
        if names.len() > 1 {
            let start = answered.iter().map(|s| s.start_us).min().unwrap_or(0);
            let end = answered.iter().map(|s| s.end_us).max().unwrap_or(0);
            found.push(DoubleAnswer {
                group,
                round,
                names,
                span_us: end.saturating_sub(start),
            });
        }
    }
    found
}

/// The user's outage of `group` around a fault at `fault_us`: from the end of the last answered
/// probe before the first unanswered one (at or after the probe running at `fault_us`, and
/// starting before `until_us`, when the fault was healed) to the start of the next answered
/// probe. `Some(0)` when no probe in that window went unanswered,
/// `None` when the service never answered again. Resolution: one probe interval (10 ms) plus
/// one probe's duration.
pub fn outage_us(samples: &[Sample], group: u8, fault_us: u64, until_us: u64) -> Option<u64> {
    let user: Vec<&Sample> = samples
        .iter()
        .filter(|sample| sample.group == group && sample.path == "user")
        .collect();
    let first_after = user.iter().position(|sample| sample.end_us >= fault_us)?;
    let first_failure = first_after
        + user[first_after..]
            .iter()
            .position(|sample| sample.answer.is_err() || sample.start_us >= until_us)
            .unwrap_or(user.len() - first_after);
    if first_failure == user.len() || user[first_failure].start_us >= until_us {
        return Some(0);
    }
    let last_good_end = user[..first_failure]
        .iter()
        .rev()
        .find(|sample| sample.answer.is_ok())
        .map_or(fault_us, |sample| sample.end_us);
    let next_good = user[first_failure..]
        .iter()
        .find(|sample| sample.answer.is_ok())?;
    Some(next_good.start_us.saturating_sub(last_good_end))
}

/// Which node answered the user last for `group`.
pub fn last_answer(samples: &[Sample], group: u8) -> Option<String> {
    samples
        .iter()
        .rev()
        .find(|sample| sample.group == group && sample.path == "user")
        .and_then(|sample| sample.answer.clone().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
0 100 200 1 user n1
0 100 150 1 n1 n1
1 10100 10200 1 user !timeout
2 20100 20150 1 user !refused
3 30100 30200 1 user n2
3 30100 30180 1 n2 n2
3 30100 30190 1 n1 n1
torn line
";

    #[test]
    fn parses_and_skips_torn_lines() {
        let (samples, skipped) = parse(TEXT);
        assert_eq!((samples.len(), skipped), (7, 1));
        assert_eq!(samples[2].answer, Err("timeout".to_string()));
    }

    #[test]
    fn two_names_in_one_round_are_found() {
        let (samples, _) = parse(TEXT);
        let found = double_answers(&samples);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].round, 3);
        assert_eq!(found[0].names, vec!["n1".to_string(), "n2".to_string()]);
        assert_eq!(found[0].span_us, 100);
    }

    #[test]
    fn outage_runs_from_last_answer_to_next_answer() {
        let (samples, _) = parse(TEXT);
        assert_eq!(outage_us(&samples, 1, 5_000, u64::MAX), Some(30_100 - 200));
        assert_eq!(outage_us(&samples, 1, 5_000, 9_000), Some(0));
        assert_eq!(outage_us(&samples, 1, 31_000, u64::MAX), None);
        let (clean, _) = parse("0 100 200 1 user n1\n1 10100 10200 1 user n1\n");
        assert_eq!(outage_us(&clean, 1, 0, u64::MAX), Some(0));
    }
}
