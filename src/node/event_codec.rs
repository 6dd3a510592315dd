//! The payloads of the event exchange (frame kind `event_exchange::FRAME_KIND_EVENTS`): a
//! request "your events after sequence S" and replies of several datagrams, each entry encoded
//! compactly. Authentication is the frame layer's; this codec only lays bytes out and refuses,
//! without panicking, anything it did not write.
//!
//! Request (17 bytes): `1`, request id (u64), after sequence (u64).
//!
//! Reply datagram: `2`, request id (u64), oldest kept sequence (u64), newest sequence (u64),
//! last sequence of this page (u64), entry count (u8), then the entries:
//!
//! | field        | encoding                                                  |
//! |--------------|-----------------------------------------------------------|
//! | sequence     | LEB128 varint                                             |
//! | epoch        | LEB128 varint                                             |
//! | monotonic µs | LEB128 varint                                             |
//! | wall ms      | LEB128 varint                                             |
//! | category     | u8 (`EventKind::code`)                                    |
//! | flags        | u8: bit 0 group present, bit 1 resource present; rest 0   |
//! | group        | if present: u8 length (≤ 64), UTF-8                        |
//! | resource     | if present: u8 length (≤ 64), UTF-8                        |
//! | text         | varint length (≤ 1024), UTF-8                              |
//!
//! Integers are little-endian. The recording node is the frame's authenticated sender, so it
//! is not repeated per entry. Every entry fits one datagram (asserted below), so a reply never
//! has to split one.
use super::event_record::{
    is_clean_name, is_clean_text, EventKind, EventRecord, NAME_BYTES_MAX, TEXT_BYTES_MAX,
};
use crate::wire::PAYLOAD_BYTES_MAX;

const TYPE_REQUEST: u8 = 1;
const TYPE_REPLY: u8 = 2;
const REQUEST_BYTES: usize = 1 + 8 + 8;
/// Type, request id, oldest, newest, page end, count.
const REPLY_HEADER_BYTES: usize = 1 + 8 + 8 + 8 + 8 + 1;
const VARINT_BYTES_MAX: usize = 10;
/// The largest encoded entry: four varints, category, flags, two names, text length and text.
const ENTRY_BYTES_MAX: usize =
    4 * VARINT_BYTES_MAX + 1 + 1 + 2 * (1 + NAME_BYTES_MAX) + 2 + TEXT_BYTES_MAX;
/// Entries one datagram may carry (the count is one byte).
const ENTRIES_PER_DATAGRAM_MAX: usize = u8::MAX as usize;
const FLAG_GROUP: u8 = 1;
const FLAG_RESOURCE: u8 = 2;

const _: () = assert!(REPLY_HEADER_BYTES + ENTRY_BYTES_MAX <= PAYLOAD_BYTES_MAX);
const _: () = assert!(NAME_BYTES_MAX <= u8::MAX as usize);
const _: () = assert!(
    TEXT_BYTES_MAX < 1 << 14,
    "a text length is a two-byte varint"
);

/// "Send me your events after sequence `after`."
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRequest {
    pub request_id: u64,
    pub after: u64,
}

/// What every datagram of a reply says about the answering node's ring and the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyHeader {
    pub request_id: u64,
    /// The oldest sequence it still keeps (`newest + 1` when it keeps none).
    pub oldest: u64,
    /// Its newest sequence when it answered.
    pub newest: u64,
    /// The last sequence this page (all datagrams of this answer) carries; the requester asks
    /// for the next page once it holds everything up to here.
    pub page_last: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventReply {
    pub header: ReplyHeader,
    pub records: Vec<EventRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventMessage {
    Request(EventRequest),
    Reply(EventReply),
}

/// Why a payload was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    UnknownType,
    Truncated,
    TrailingBytes,
    VarintOverflow,
    UnknownCategory,
    BadFlags,
    BadName,
    BadText,
    /// Sequences not strictly increasing, or beyond what the header claims.
    Inconsistent,
    /// A sequence or epoch above `disklayout::COUNTER_MAX`, which no ring reaches.
    OutOfRange,
}

pub fn encode_request(request: &EventRequest) -> Vec<u8> {
    let mut out = Vec::with_capacity(REQUEST_BYTES);
    out.push(TYPE_REQUEST);
    out.extend_from_slice(&request.request_id.to_le_bytes());
    out.extend_from_slice(&request.after.to_le_bytes());
    out
}

/// The datagrams of one page of a reply: `records` (sequence order, all after the request's
/// sequence) packed greedily, at most `datagrams_max` datagrams; what does not fit is left for
/// the next request. A page with no records is one datagram (the requester learns `newest`).
pub fn pack_reply(
    request_id: u64,
    oldest: u64,
    newest: u64,
    records: impl Iterator<Item = impl std::borrow::Borrow<EventRecord>>,
    datagrams_max: usize,
) -> Vec<Vec<u8>> {
    // Entries of each datagram, encoded; the header waits for the page's last sequence.
    let mut datagrams: Vec<(Vec<u8>, u8)> = vec![(Vec::new(), 0)];
    let mut page_last = newest;
    let mut entry = Vec::with_capacity(ENTRY_BYTES_MAX);
    for record in records {
        let record = record.borrow();
        entry.clear();
        encode_record(record, &mut entry);
        let Some((body, count)) = datagrams.last_mut() else {
            break;
        };
        let fits = REPLY_HEADER_BYTES + body.len() + entry.len() <= PAYLOAD_BYTES_MAX
            && usize::from(*count) < ENTRIES_PER_DATAGRAM_MAX;
        if fits {
            body.extend_from_slice(&entry);
            *count += 1;
        } else if datagrams.len() < datagrams_max {
            datagrams.push((entry.clone(), 1));
        } else {
            break;
        }
        page_last = record.sequence;
    }
    datagrams
        .into_iter()
        .map(|(body, count)| {
            let mut out = Vec::with_capacity(REPLY_HEADER_BYTES + body.len());
            out.push(TYPE_REPLY);
            for field in [request_id, oldest, newest, page_last] {
                out.extend_from_slice(&field.to_le_bytes());
            }
            out.push(count);
            out.extend_from_slice(&body);
            out
        })
        .collect()
}

fn encode_record(record: &EventRecord, out: &mut Vec<u8>) {
    for value in [
        record.sequence,
        record.epoch,
        record.monotonic_us,
        record.wall_ms,
    ] {
        write_varint(value, out);
    }
    out.push(record.kind.code());
    let flags = if record.group.is_some() {
        FLAG_GROUP
    } else {
        0
    } | if record.resource.is_some() {
        FLAG_RESOURCE
    } else {
        0
    };
    out.push(flags);
    for name in [&record.group, &record.resource].into_iter().flatten() {
        let name = prefix_within(name, NAME_BYTES_MAX);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }
    let text = prefix_within(&record.text, TEXT_BYTES_MAX);
    write_varint(text.len() as u64, out);
    out.extend_from_slice(text.as_bytes());
}

/// The longest prefix of `text` within `bytes_max` bytes (the ring keeps entries within the
/// limits already; this keeps the size bound true whatever a caller built).
fn prefix_within(text: &str, bytes_max: usize) -> &str {
    let mut end = text.len().min(bytes_max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn write_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Decodes a payload from node `sender` (the frame's authenticated sender).
pub fn decode(payload: &[u8], sender: u8) -> Result<EventMessage, Malformed> {
    let mut reader = Reader { bytes: payload };
    let message = match reader.u8()? {
        TYPE_REQUEST => EventMessage::Request(EventRequest {
            request_id: reader.u64()?,
            after: reader.counter()?,
        }),
        TYPE_REPLY => {
            let header = ReplyHeader {
                request_id: reader.u64()?,
                oldest: reader.counter()?,
                newest: reader.counter()?,
                page_last: reader.counter()?,
            };
            if header.oldest == 0
                || header.oldest > header.newest.saturating_add(1)
                || header.page_last > header.newest
            {
                return Err(Malformed::Inconsistent);
            }
            let count = reader.u8()?;
            let mut records = Vec::with_capacity(usize::from(count));
            let mut previous = 0;
            for _ in 0..count {
                let record = reader.record(sender)?;
                if record.sequence <= previous || record.sequence > header.page_last {
                    return Err(Malformed::Inconsistent);
                }
                previous = record.sequence;
                records.push(record);
            }
            EventMessage::Reply(EventReply { header, records })
        }
        _ => return Err(Malformed::UnknownType),
    };
    match reader.bytes.is_empty() {
        true => Ok(message),
        false => Err(Malformed::TrailingBytes),
    }
}

/// Bounds-checked reading from the front of a payload.
struct Reader<'payload> {
    bytes: &'payload [u8],
}

impl<'payload> Reader<'payload> {
    fn take(&mut self, count: usize) -> Result<&'payload [u8], Malformed> {
        if count > self.bytes.len() {
            return Err(Malformed::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        let bytes: [u8; 8] = self.take(8)?.try_into().map_err(|_| Malformed::Truncated)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// A sequence: refused above `COUNTER_MAX`, so the exchange's `frontier + 1` cannot
    /// overflow.
    fn counter(&mut self) -> Result<u64, Malformed> {
        match self.u64()? {
            value if disklayout::is_counter(value) => Ok(value),
            _ => Err(Malformed::OutOfRange),
        }
    }

    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut value = 0u64;
        for index in 0..VARINT_BYTES_MAX {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte holds only the top bit of a u64.
            if index == VARINT_BYTES_MAX - 1 && byte > 1 {
                return Err(Malformed::VarintOverflow);
            }
            value |= bits << (7 * index);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Malformed::VarintOverflow)
    }

    fn text(&mut self, length: usize, is_clean: fn(&str) -> bool) -> Result<String, Malformed> {
        let bytes = self.take(length)?;
        match std::str::from_utf8(bytes) {
            Ok(text) if is_clean(text) => Ok(text.to_string()),
            _ => Err(Malformed::BadText),
        }
    }

    fn name(&mut self) -> Result<String, Malformed> {
        let length = usize::from(self.u8()?);
        if length > NAME_BYTES_MAX {
            return Err(Malformed::BadName);
        }
        self.text(length, is_clean_name)
            .map_err(|_| Malformed::BadName)
    }

    fn record(&mut self, node: u8) -> Result<EventRecord, Malformed> {
        let sequence = self.varint()?;
        let epoch = self.varint()?;
        if !disklayout::is_counter(sequence) || !disklayout::is_counter(epoch) {
            return Err(Malformed::OutOfRange);
        }
        let monotonic_us = self.varint()?;
        let wall_ms = self.varint()?;
        let kind = EventKind::from_code(self.u8()?).ok_or(Malformed::UnknownCategory)?;
        let flags = self.u8()?;
        if flags & !(FLAG_GROUP | FLAG_RESOURCE) != 0 {
            return Err(Malformed::BadFlags);
        }
        let group = match flags & FLAG_GROUP {
            0 => None,
            _ => Some(self.name()?),
        };
        let resource = match flags & FLAG_RESOURCE {
            0 => None,
            _ => Some(self.name()?),
        };
        let length = self.varint()?;
        if length > TEXT_BYTES_MAX as u64 {
            return Err(Malformed::BadText);
        }
        let text = self.text(length as usize, is_clean_text)?;
        Ok(EventRecord {
            node,
            sequence,
            epoch,
            monotonic_us,
            wall_ms,
            kind,
            group,
            resource,
            text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sequence: u64, text: &str) -> EventRecord {
        EventRecord {
            node: 4,
            sequence,
            epoch: 300,
            monotonic_us: u64::MAX,
            wall_ms: 1_740_823_200_123,
            kind: EventKind::Resource,
            group: Some("web".into()),
            resource: sequence.is_multiple_of(2).then(|| "ip".to_string()),
            text: text.to_string(),
        }
    }

    fn reply_of(payload: &[u8]) -> EventReply {
        match decode(payload, 4) {
            Ok(EventMessage::Reply(reply)) => reply,
            other => panic!("not a reply: {other:?}"),
        }
    }

    fn any_record() -> impl proptest::strategy::Strategy<Value = EventRecord> {
        use proptest::prelude::*;
        let name = proptest::option::of("[a-z0-9._-]{0,64}");
        (
            (
                0..=disklayout::COUNTER_MAX,
                0..=disklayout::COUNTER_MAX,
                any::<u64>(),
                any::<u64>(),
            ),
            0usize..EventKind::ALL.len(),
            (name.clone(), name),
            "[^\\p{Cc}]{0,300}",
        )
            .prop_map(
                |((sequence, epoch, monotonic_us, wall_ms), kind, (group, resource), text)| {
                    EventRecord {
                        node: 6,
                        sequence,
                        epoch,
                        monotonic_us,
                        wall_ms,
                        kind: EventKind::ALL[kind],
                        group,
                        resource,
                        text: super::super::event_record::clean_text(&text),
                    }
                },
            )
    }

    proptest::proptest! {
        #[test]
        fn any_record_round_trips(mut records in proptest::collection::vec(any_record(), 0..40)) {
            records.sort_by_key(|record| record.sequence);
            records.dedup_by_key(|record| record.sequence);
            let newest = records.last().map_or(0, |record| record.sequence);
            let mut decoded = Vec::new();
            for datagram in pack_reply(3, 1, newest, records.iter(), usize::MAX) {
                proptest::prop_assert!(datagram.len() <= PAYLOAD_BYTES_MAX);
                match decode(&datagram, 6) {
                    Ok(EventMessage::Reply(reply)) => decoded.extend(reply.records),
                    other => proptest::prop_assert!(false, "{:?}", other),
                }
            }
            proptest::prop_assert_eq!(decoded, records);
        }

        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = decode(&bytes, 1);
        }
    }

    #[test]
    fn a_request_round_trips() {
        let request = EventRequest {
            request_id: u64::MAX - 1,
            after: 77,
        };
        let bytes = encode_request(&request);
        assert_eq!(bytes.len(), REQUEST_BYTES);
        assert_eq!(decode(&bytes, 2), Ok(EventMessage::Request(request)));
    }

    #[test]
    fn replies_round_trip_across_several_datagrams_within_the_payload_limit() {
        let records: Vec<EventRecord> = (1..=300)
            .map(|sequence| record(sequence, &format!("event {sequence} é{}", "x".repeat(40))))
            .collect();
        let datagrams = pack_reply(9, 1, 300, records.iter(), 100);
        assert!(datagrams.len() > 5, "{} datagrams", datagrams.len());
        let mut decoded = Vec::new();
        for datagram in &datagrams {
            assert!(datagram.len() <= PAYLOAD_BYTES_MAX);
            let reply = reply_of(datagram);
            assert_eq!(
                reply.header,
                ReplyHeader {
                    request_id: 9,
                    oldest: 1,
                    newest: 300,
                    page_last: 300
                }
            );
            decoded.extend(reply.records);
        }
        assert_eq!(decoded, records);
    }

    #[test]
    fn a_page_stops_at_its_datagram_budget_and_says_where() {
        let records: Vec<EventRecord> = (1..=300)
            .map(|sequence| record(sequence, &"y".repeat(200)))
            .collect();
        let datagrams = pack_reply(1, 1, 300, records.iter(), 2);
        assert_eq!(datagrams.len(), 2);
        let replies: Vec<EventReply> = datagrams.iter().map(|d| reply_of(d)).collect();
        let carried = replies
            .iter()
            .map(|reply| reply.records.len())
            .sum::<usize>() as u64;
        assert!(replies
            .iter()
            .all(|reply| reply.header.page_last == carried));
        assert_eq!(replies[1].records.last().map(|r| r.sequence), Some(carried));
    }

    #[test]
    fn an_empty_page_tells_the_newest_sequence() {
        let datagrams = pack_reply(5, 8, 7, std::iter::empty::<EventRecord>(), 4);
        assert_eq!(datagrams.len(), 1);
        let reply = reply_of(&datagrams[0]);
        assert!(reply.records.is_empty());
        assert_eq!((reply.header.newest, reply.header.page_last), (7, 7));
    }

    #[test]
    fn the_largest_entry_fits_one_datagram() {
        let mut big = record(disklayout::COUNTER_MAX, &"é".repeat(TEXT_BYTES_MAX));
        big.epoch = disklayout::COUNTER_MAX;
        big.wall_ms = u64::MAX;
        big.monotonic_us = u64::MAX;
        big.group = Some("g".repeat(NAME_BYTES_MAX + 10));
        big.resource = Some("r".repeat(NAME_BYTES_MAX));
        let datagrams = pack_reply(1, 1, disklayout::COUNTER_MAX, [&big].into_iter(), 1);
        assert_eq!(datagrams.len(), 1);
        assert!(datagrams[0].len() <= PAYLOAD_BYTES_MAX);
        let decoded = &reply_of(&datagrams[0]).records[0];
        assert_eq!(decoded.sequence, disklayout::COUNTER_MAX);
        assert_eq!(decoded.group.as_deref().map(str::len), Some(NAME_BYTES_MAX));
        assert!(decoded.text.len() <= TEXT_BYTES_MAX);
    }

    /// Issue 16, finding 4: a reply whose sequences reach u64::MAX made the exchange's
    /// `frontier + 1` overflow (an abort in release); such a reply is now refused as decoded.
    #[test]
    fn sequences_above_the_largest_counter_are_refused() {
        for newest in [disklayout::COUNTER_MAX + 1, u64::MAX - 1, u64::MAX] {
            let datagram = pack_reply(1, 1, newest, [record(newest, "x")].iter(), 1).remove(0);
            assert_eq!(decode(&datagram, 1), Err(Malformed::OutOfRange), "{newest}");
        }
        let mut request = vec![TYPE_REQUEST];
        request.extend_from_slice(&7u64.to_le_bytes());
        request.extend_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(decode(&request, 1), Err(Malformed::OutOfRange));
        let top = disklayout::COUNTER_MAX;
        let datagram = pack_reply(1, 1, top, [record(top, "x")].iter(), 1).remove(0);
        assert!(decode(&datagram, 1).is_ok());
    }

    #[test]
    fn every_truncation_is_refused() {
        let records: Vec<EventRecord> = (1..=3).map(|s| record(s, "text")).collect();
        let datagram = pack_reply(1, 1, 3, records.iter(), 1).remove(0);
        for length in 0..datagram.len() {
            assert!(
                decode(&datagram[..length], 4).is_err(),
                "a truncation to {length} bytes decoded"
            );
        }
        let request = encode_request(&EventRequest {
            request_id: 1,
            after: 2,
        });
        for length in 0..request.len() {
            assert!(decode(&request[..length], 4).is_err());
        }
        assert_eq!(
            decode(&[request.clone(), vec![0]].concat(), 4),
            Err(Malformed::TrailingBytes)
        );
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let length = (next() % 200) as usize;
            let mut bytes: Vec<u8> = (0..length).map(|_| next() as u8).collect();
            if let Some(first) = bytes.first_mut() {
                *first = 1 + (*first % 2);
            }
            let _ = decode(&bytes, 1);
        }
        // Flipping any byte of a valid reply decodes to something valid or is refused.
        let datagram = pack_reply(1, 1, 2, [record(1, "a"), record(2, "b")].iter(), 1).remove(0);
        for at in 0..datagram.len() {
            for value in [0u8, 0x7f, 0x80, 0xff] {
                let mut bytes = datagram.clone();
                bytes[at] = value;
                let _ = decode(&bytes, 1);
            }
        }
    }

    #[test]
    fn specific_lies_are_named() {
        let one = |record: EventRecord, newest: u64| {
            pack_reply(1, 1, newest, [record].iter(), 1).remove(0)
        };
        let good = one(record(2, "ok"), 2);
        assert!(decode(&good, 1).is_ok());
        assert_eq!(decode(&[9], 1), Err(Malformed::UnknownType));
        assert_eq!(decode(&[], 1), Err(Malformed::Truncated));
        let mut bad_text = record(2, "ok");
        bad_text.text = "two\nlines".into();
        assert_eq!(decode(&one(bad_text, 2), 1), Err(Malformed::BadText));
        let mut bad_name = record(2, "ok");
        bad_name.group = Some("a b".into());
        assert_eq!(decode(&one(bad_name, 2), 1), Err(Malformed::BadName));
        // A sequence beyond the newest the header claims.
        let mut beyond = good.clone();
        beyond[17..25].copy_from_slice(&1u64.to_le_bytes());
        beyond[25..33].copy_from_slice(&1u64.to_le_bytes());
        assert_eq!(decode(&beyond, 1), Err(Malformed::Inconsistent));
        // An entry of one-byte varints: its category is byte 4, its flags byte 5.
        let entry = REPLY_HEADER_BYTES;
        let mut shallow = record(2, "ok");
        shallow.epoch = 1;
        shallow.monotonic_us = 1;
        shallow.wall_ms = 1;
        let shallow = one(shallow, 2);
        let mut category = shallow.clone();
        category[entry + 4] = 0;
        assert_eq!(decode(&category, 1), Err(Malformed::UnknownCategory));
        let mut flags = shallow.clone();
        flags[entry + 5] |= 4;
        assert_eq!(decode(&flags, 1), Err(Malformed::BadFlags));
        let mut varint = shallow[..entry].to_vec();
        varint.extend_from_slice(&[0xff; 10]);
        assert_eq!(decode(&varint, 1), Err(Malformed::VarintOverflow));
    }
}
