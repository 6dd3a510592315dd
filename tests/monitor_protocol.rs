//! The daemon–monitor codec: every valid message survives encode → frame → decode unchanged;
//! random bytes, random frames and every truncation never panic the decoder; limits are
//! enforced on both sides.
use proptest::prelude::*;
use wolfpack::monitor::codec::{
    decode_command, decode_event, encode_command, encode_event, FrameReader,
};
use wolfpack::monitor::constants::{DEPENDS_MAX, FRAME_BYTES_MAX, PARAMS_MAX, REASON_BYTES_MAX};
use wolfpack::monitor::{CheckLevel, CodecError, Command, Event, Operation, Outcome};

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}"
}

fn level() -> impl Strategy<Value = CheckLevel> {
    prop_oneof![Just(CheckLevel::LooksAlive), Just(CheckLevel::IsAlive)]
}

fn command() -> impl Strategy<Value = Command> {
    let params = proptest::collection::btree_map("[a-z0-9_]{1,64}", ".{0,200}", 0..8)
        .prop_map(|params| params.into_iter().collect::<Vec<_>>());
    // Distinct names in any order (the order is kept, though it means nothing).
    let depends = proptest::collection::btree_set(name(), 0..8)
        .prop_map(|names| names.into_iter().collect::<Vec<_>>())
        .prop_shuffle();
    prop_oneof![
        any::<u64>().prop_map(|sequence| Command::Ping { sequence }),
        (
            name(),
            "[a-z:A-Z0-9]{1,64}",
            params,
            depends,
            any::<Option<u32>>()
        )
            .prop_map(
                |(resource, kind, params, depends, timeout_ms)| Command::Start {
                    resource,
                    kind,
                    params,
                    depends,
                    timeout_ms
                }
            ),
        (name(), any::<Option<u32>>()).prop_map(|(resource, timeout_ms)| Command::Stop {
            resource,
            timeout_ms
        }),
        (name(), level(), any::<Option<u32>>()).prop_map(|(resource, level, timeout_ms)| {
            Command::Check {
                resource,
                level,
                timeout_ms,
            }
        }),
        Just(Command::StopAll),
        Just(Command::Shutdown),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    let operation = prop_oneof![
        Just(Operation::Start),
        Just(Operation::Stop),
        level().prop_map(Operation::Check)
    ];
    let outcome = prop_oneof![
        Just(Outcome::Success),
        ".{0,100}".prop_map(Outcome::Failed),
        Just(Outcome::TimedOut),
        ".{0,100}".prop_map(Outcome::Rejected),
        ".{0,100}".prop_map(Outcome::OfflineNotConfirmed),
    ];
    prop_oneof![
        any::<u64>().prop_map(|sequence| Event::Pong { sequence }),
        (name(), operation, outcome, any::<u64>()).prop_map(
            |(resource, operation, outcome, elapsed_ms)| {
                Event::Done {
                    resource,
                    operation,
                    outcome,
                    elapsed_ms,
                }
            }
        ),
        (name(), ".{0,100}", any::<bool>()).prop_map(|(resource, reason, offline_confirmed)| {
            Event::ResourceFailed {
                resource,
                reason,
                offline_confirmed,
            }
        }),
        Just(Event::AllStopped),
    ]
}

/// Feeds `bytes` to a frame reader in pieces of `piece` bytes and returns the bodies.
fn bodies(bytes: &[u8], piece: usize) -> Vec<Vec<u8>> {
    let mut reader = FrameReader::default();
    let mut found = Vec::new();
    for chunk in bytes.chunks(piece.max(1)) {
        reader.extend(chunk);
        while let Some(body) = reader.next_body().expect("valid frames") {
            found.push(body);
        }
    }
    found
}

proptest! {
    #[test]
    fn commands_round_trip(commands in proptest::collection::vec(command(), 1..8), piece in 1usize..64) {
        let mut stream = Vec::new();
        for command in &commands {
            encode_command(command, &mut stream).expect("valid command encodes");
        }
        let decoded: Vec<Command> = bodies(&stream, piece)
            .iter()
            .map(|body| decode_command(body).expect("decodes"))
            .collect();
        prop_assert_eq!(decoded, commands);
    }

    #[test]
    fn events_round_trip(events in proptest::collection::vec(event(), 1..8), piece in 1usize..64) {
        let mut stream = Vec::new();
        for event in &events {
            encode_event(event, &mut stream).expect("valid event encodes");
        }
        let decoded: Vec<Event> = bodies(&stream, piece)
            .iter()
            .map(|body| decode_event(body).expect("decodes"))
            .collect();
        prop_assert_eq!(decoded, events);
    }

    #[test]
    fn random_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_command(&bytes);
        let _ = decode_event(&bytes);
        let mut reader = FrameReader::default();
        reader.extend(&bytes);
        while let Ok(Some(body)) = reader.next_body() {
            let _ = decode_command(&body);
            let _ = decode_event(&body);
        }
    }

    #[test]
    fn every_truncation_or_extension_is_refused(command in command(), extra in any::<u8>()) {
        let mut frame = Vec::new();
        encode_command(&command, &mut frame).expect("encodes");
        let body = &frame[4..];
        for length in 0..body.len() {
            prop_assert!(decode_command(&body[..length]).is_err());
        }
        let mut longer = body.to_vec();
        longer.push(extra);
        prop_assert_eq!(decode_command(&longer), Err(CodecError::TrailingBytes));
    }
}

#[test]
fn bad_frame_lengths_are_refused() {
    for length in [0, FRAME_BYTES_MAX + 1, u32::MAX] {
        let mut reader = FrameReader::default();
        reader.extend(&length.to_be_bytes());
        assert_eq!(reader.next_body(), Err(CodecError::BadFrameLength(length)));
    }
}

#[test]
fn names_and_limits_are_enforced_when_encoding() {
    let mut out = Vec::new();
    for resource in ["", ".hidden", "a/b", "web server", &"x".repeat(65)] {
        let stop = Command::Stop {
            resource: resource.to_string(),
            timeout_ms: None,
        };
        assert_eq!(
            encode_command(&stop, &mut out),
            Err(CodecError::InvalidName),
            "{resource:?}"
        );
    }
    let params = (0..=PARAMS_MAX)
        .map(|index| (format!("k{index}"), String::new()))
        .collect();
    let start = Command::Start {
        resource: "web".into(),
        kind: "process".into(),
        params,
        depends: vec![],
        timeout_ms: None,
    };
    assert!(encode_command(&start, &mut out).is_err());
    // A key becomes part of an environment variable name: A-Z, a-z, 0-9 and '_' only.
    for bad in ["com-mand", "a b", "", "é", &"k".repeat(65)] {
        let start = Command::Start {
            resource: "web".into(),
            kind: "process".into(),
            params: vec![(bad.to_string(), String::new())],
            depends: vec![],
            timeout_ms: None,
        };
        assert_eq!(
            encode_command(&start, &mut out),
            Err(CodecError::InvalidParamKey),
            "{bad:?}"
        );
        assert!(out.is_empty(), "a refused command writes nothing");
    }
    // As an agent's meta-data spells it: SAPInstance's InstanceName.
    let start = Command::Start {
        resource: "sap".into(),
        kind: "ocf:heartbeat:SAPInstance".into(),
        params: vec![("InstanceName".to_string(), "HA1_ASCS00".to_string())],
        depends: vec![],
        timeout_ms: None,
    };
    assert_eq!(encode_command(&start, &mut out), Ok(()));
}

#[test]
fn long_reasons_are_cut_at_a_character_boundary() {
    let reason = "é".repeat(REASON_BYTES_MAX);
    let mut out = Vec::new();
    encode_event(
        &Event::ResourceFailed {
            resource: "web".into(),
            reason,
            offline_confirmed: true,
        },
        &mut out,
    )
    .expect("encodes");
    let Ok(Event::ResourceFailed { reason, .. }) = decode_event(&out[4..]) else {
        panic!("decodes")
    };
    assert!(reason.len() <= REASON_BYTES_MAX && reason.chars().all(|c| c == 'é'));
}

#[test]
fn a_long_reason_keeps_its_offline_not_confirmed_ending_across_the_cut() {
    use wolfpack::monitor::protocol::OFFLINE_NOT_CONFIRMED;
    let long = "x".repeat(2 * REASON_BYTES_MAX);
    let mut out = Vec::new();
    encode_event(
        &Event::ResourceFailed {
            resource: "web".into(),
            reason: format!("{long}; {OFFLINE_NOT_CONFIRMED}"),
            offline_confirmed: false,
        },
        &mut out,
    )
    .expect("encodes");
    let Ok(Event::ResourceFailed {
        reason,
        offline_confirmed,
        ..
    }) = decode_event(&out[4..])
    else {
        panic!("decodes")
    };
    assert!(reason.len() <= REASON_BYTES_MAX, "{}", reason.len());
    assert!(
        !offline_confirmed,
        "the flag, not the text, carries the fact"
    );
    assert!(reason.ends_with(OFFLINE_NOT_CONFIRMED), "{reason}");
    // The same for a `Done` answered `OfflineNotConfirmed`, whatever its text ended in.
    let mut out = Vec::new();
    let done = Event::Done {
        resource: "web".into(),
        operation: Operation::Stop,
        outcome: Outcome::OfflineNotConfirmed(long.clone()),
        elapsed_ms: 1,
    };
    encode_event(&done, &mut out).expect("encodes");
    let Ok(Event::Done {
        outcome: Outcome::OfflineNotConfirmed(reason),
        ..
    }) = decode_event(&out[4..])
    else {
        panic!("decodes")
    };
    assert!(reason.len() <= REASON_BYTES_MAX, "{}", reason.len());
    assert!(reason.ends_with(OFFLINE_NOT_CONFIRMED), "{reason}");
}

#[test]
fn a_flag_byte_other_than_0_or_1_is_a_protocol_error() {
    let mut out = Vec::new();
    let failed = Event::ResourceFailed {
        resource: "web".into(),
        reason: "exit code 7".into(),
        offline_confirmed: true,
    };
    encode_event(&failed, &mut out).expect("encodes");
    let body = &out[4..];
    assert_eq!(body.last(), Some(&1), "the flag is the last byte");
    assert_eq!(decode_event(body), Ok(failed));
    let mut bad = body.to_vec();
    for byte in [2u8, 0xff] {
        *bad.last_mut().expect("not empty") = byte;
        assert_eq!(decode_event(&bad), Err(CodecError::UnknownTag(byte)));
    }
    // A `ResourceFailed` without the flag (the layout before it) is refused too.
    assert_eq!(
        decode_event(&body[..body.len() - 1]),
        Err(CodecError::Truncated)
    );
}

/// A `Start` of `web` needing `depends`.
fn start_needing(depends: &[&str]) -> Command {
    Command::Start {
        resource: "web".into(),
        kind: "process".into(),
        params: vec![],
        depends: depends.iter().map(|needed| needed.to_string()).collect(),
        timeout_ms: Some(1),
    }
}

/// The body of a `Start` of `web` (no parameters, no timeout) whose dependencies go on the
/// wire as `count`, then `names`, whatever they say.
fn start_body_with(count: u16, names: &[&[u8]]) -> Vec<u8> {
    let mut body = vec![2, 0, 3];
    body.extend_from_slice(b"web");
    body.extend_from_slice(&[0, 7]);
    body.extend_from_slice(b"process");
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&count.to_be_bytes());
    for name in names {
        body.extend_from_slice(&(name.len() as u16).to_be_bytes());
        body.extend_from_slice(name);
    }
    body.push(0);
    body
}

#[test]
fn dependencies_are_at_most_depends_max_distinct_resource_names_on_both_sides() {
    let many: Vec<String> = (0..=DEPENDS_MAX).map(|index| format!("r{index}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    let refusals = [
        (
            start_needing(&many),
            CodecError::LimitExceeded("dependencies"),
        ),
        (
            start_needing(&["db", "db"]),
            CodecError::DuplicateDependency,
        ),
        (start_needing(&["db", "a/b"]), CodecError::InvalidName),
        (start_needing(&[".hidden"]), CodecError::InvalidName),
    ];
    for (start, error) in refusals {
        assert_eq!(encode_command(&start, &mut out), Err(error), "{start:?}");
    }
    assert!(out.is_empty(), "a refused command writes nothing");
    let most = start_needing(&many[..DEPENDS_MAX]);
    encode_command(&most, &mut out).expect("DEPENDS_MAX dependencies encode");
    assert_eq!(decode_command(&out[4..]), Ok(most));

    // The decoder, on bodies no encoder writes.
    let fine = start_body_with(2, &[b"db", b"ip"]);
    assert_eq!(
        decode_command(&fine),
        Ok(Command::Start {
            resource: "web".into(),
            kind: "process".into(),
            params: vec![],
            depends: vec!["db".into(), "ip".into()],
            timeout_ms: None,
        })
    );
    let over = DEPENDS_MAX as u16 + 1;
    let cases: [(Vec<u8>, CodecError); 6] = [
        (
            start_body_with(over, &[]),
            CodecError::LimitExceeded("dependencies"),
        ),
        // A count the frame cannot hold is refused for the limit, before anything is read.
        (
            start_body_with(u16::MAX, &[]),
            CodecError::LimitExceeded("dependencies"),
        ),
        (start_body_with(3, &[b"db", b"ip"]), CodecError::Truncated),
        (
            start_body_with(2, &[b"db", b"db"]),
            CodecError::DuplicateDependency,
        ),
        (start_body_with(1, &[b"a/b"]), CodecError::InvalidName),
        (start_body_with(1, &[b""]), CodecError::InvalidName),
    ];
    for (body, error) in cases {
        assert_eq!(decode_command(&body), Err(error), "{body:?}");
    }
    let not_utf8 = start_body_with(1, &[&[0xff]]);
    assert_eq!(decode_command(&not_utf8), Err(CodecError::NotUtf8));
    // A `Start` of the layout before dependencies: its timeout byte is read as half a count.
    let mut older = start_body_with(0, &[]);
    older.truncate(older.len() - 3);
    older.push(0);
    assert_eq!(decode_command(&older), Err(CodecError::Truncated));
}
