//! The frame: wire version 1 of every UDP datagram nodes exchange. A fixed 36-byte header, an
//! opaque payload, and a 16-byte MAC tag over header and payload. Every integer is little-endian.
//!
//! ```text
//!  0       4   5   6   7   8   9   10      12                              20
//!  +-------+---+---+---+---+---+---+-------+-------------------------------+
//!  | magic |ver|knd|snd|rcv|net|rsv|payload| cluster id                    |
//!  | WLFP  |   |   |   |   |   | 0 |length |                               |
//!  +-------+---+---+---+---+---+---+-------+-------------------------------+
//! 20                              28                              36
//!  +-------------------------------+-------------------------------+
//!  | sender incarnation            | sequence                      |
//!  +-------------------------------+-------------------------------+
//! 36                                   36 + payload length
//!  +-------------------------------------+-------------------------+
//!  | payload (0..=1348 bytes, opaque)    | tag (16 bytes)          |
//!  +-------------------------------------+-------------------------+
//! ```
//!
//! | offset | size | field              | meaning                                             |
//! |-------:|-----:|--------------------|-----------------------------------------------------|
//! | 0      | 4    | magic              | ASCII `WLFP`; anything else is not a wolfpack frame |
//! | 4      | 1    | version            | [`WIRE_VERSION`] (1)                                |
//! | 5      | 1    | kind               | message kind, opaque to this layer                  |
//! | 6      | 1    | sender             | sender node id, 1..=64                              |
//! | 7      | 1    | receiver           | receiver node id, 1..=64, or 0 for every node       |
//! | 8      | 1    | network            | index of the network it was sent on, 0..=7          |
//! | 9      | 1    | reserved           | zero                                                |
//! | 10     | 2    | payload length     | bytes of payload, at most [`PAYLOAD_BYTES_MAX`]     |
//! | 12     | 8    | cluster id         | the shared disk's cluster id                        |
//! | 20     | 8    | sender incarnation | new for every start of the sender's process         |
//! | 28     | 8    | sequence           | strictly increasing per sender incarnation          |
//! | 36     | n    | payload            | the message                                         |
//! | 36 + n | 16   | tag                | keyed BLAKE3 of bytes 0..36 + n, first 16 bytes     |
//!
//! Invariants: a datagram's length is exactly 36 + payload length + 16, never more than
//! [`FRAME_BYTES_MAX`]; the tag covers every header byte, so no field (receiver and network
//! included) can be changed, and a frame cannot be redirected to another node or network,
//! without the key. This file only lays bytes out and checks their shape; [`super::Opener`]
//! decides whether to trust them.
use super::DropReason;
use byteorder::{ByteOrder, LittleEndian};

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"WLFP";
/// The version of this layout. A frame of any other version is dropped as `bad_version`.
pub const WIRE_VERSION: u8 = 1;
/// Bytes of the fixed header, before the payload.
pub const HEADER_BYTES: usize = 36;
/// Bytes of the MAC tag after the payload.
pub const TAG_BYTES: usize = 16;
/// The largest datagram. An Ethernet MTU of 1500 bytes leaves 1452 for UDP over IPv6 (40-byte
/// IP header, 8-byte UDP header) and 1472 over IPv4; 1400 leaves 52 bytes more for one layer of
/// encapsulation (VLAN, PPPoE, GRE, VXLAN or an IPsec tunnel) so a frame is never fragmented:
/// a lost fragment loses the whole datagram, and IPv6 routers do not fragment at all.
pub const FRAME_BYTES_MAX: usize = 1400;
/// The largest payload: what [`FRAME_BYTES_MAX`] leaves after header and tag (1348 bytes).
pub const PAYLOAD_BYTES_MAX: usize = FRAME_BYTES_MAX - HEADER_BYTES - TAG_BYTES;
/// How many networks a node may be on: one address per network in the node table.
pub const NETWORKS_MAX: usize = disklayout::ADDRESSES_MAX;
/// The receiver id that addresses every node.
pub const EVERY_NODE: u8 = 0;

const _: () = assert!(PAYLOAD_BYTES_MAX <= u16::MAX as usize);
const _: () = assert!(HEADER_BYTES + PAYLOAD_BYTES_MAX + TAG_BYTES == FRAME_BYTES_MAX);

const OFFSET_VERSION: usize = 4;
const OFFSET_KIND: usize = 5;
const OFFSET_SENDER: usize = 6;
const OFFSET_RECEIVER: usize = 7;
const OFFSET_NETWORK: usize = 8;
const OFFSET_RESERVED: usize = 9;
const OFFSET_PAYLOAD_LENGTH: usize = 10;
const OFFSET_CLUSTER_ID: usize = 12;
const OFFSET_INCARNATION: usize = 20;
const OFFSET_SEQUENCE: usize = 28;

/// Every header field but magic, version and payload length, which follow from the layout and
/// the payload. Nothing in a `Header` decoded from a datagram is trusted before its tag is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The message kind; the layers above give it meaning.
    pub kind: u8,
    /// The cluster id of the shared disk.
    pub cluster_id: u64,
    /// The sending node, 1..=64.
    pub sender: u8,
    /// The receiving node, 1..=64, or [`EVERY_NODE`].
    pub receiver: u8,
    /// The index of the network the frame was sent on, below [`NETWORKS_MAX`].
    pub network: u8,
    /// The sender's incarnation: new for every start of its process.
    pub incarnation: u64,
    /// The sender's sequence number, strictly increasing within one incarnation.
    pub sequence: u64,
}

/// A frame whose tag, cluster, receiver, sender, incarnation and sequence were all accepted by
/// [`super::Opener::open`]. Its payload borrows the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'datagram> {
    /// The authenticated header.
    pub header: Header,
    /// The payload, at most [`PAYLOAD_BYTES_MAX`] bytes.
    pub payload: &'datagram [u8],
}

/// Writes the header of a frame carrying `payload_bytes` bytes of payload into `out`.
///
/// # Panics
/// When `payload_bytes` exceeds [`PAYLOAD_BYTES_MAX`]: the caller builds its payloads.
pub(super) fn encode_header(header: &Header, payload_bytes: usize, out: &mut [u8; HEADER_BYTES]) {
    assert!(
        payload_bytes <= PAYLOAD_BYTES_MAX,
        "payload of {payload_bytes} bytes"
    );
    out[..OFFSET_VERSION].copy_from_slice(&MAGIC);
    out[OFFSET_VERSION] = WIRE_VERSION;
    out[OFFSET_KIND] = header.kind;
    out[OFFSET_SENDER] = header.sender;
    out[OFFSET_RECEIVER] = header.receiver;
    out[OFFSET_NETWORK] = header.network;
    out[OFFSET_RESERVED] = 0;
    LittleEndian::write_u16(&mut out[OFFSET_PAYLOAD_LENGTH..], payload_bytes as u16);
    LittleEndian::write_u64(&mut out[OFFSET_CLUSTER_ID..], header.cluster_id);
    LittleEndian::write_u64(&mut out[OFFSET_INCARNATION..], header.incarnation);
    LittleEndian::write_u64(&mut out[OFFSET_SEQUENCE..], header.sequence);
}

/// The parts of a datagram whose shape is right: its header, the bytes the tag covers, the
/// payload and the tag. Nothing here is authenticated yet.
pub(super) struct Parsed<'datagram> {
    pub header: Header,
    /// Header and payload: the bytes the tag covers.
    pub covered: &'datagram [u8],
    pub payload: &'datagram [u8],
    pub tag: &'datagram [u8; TAG_BYTES],
}

/// Checks a datagram's shape, in this order: long enough for a header and a tag (`bad_length`),
/// magic (`bad_magic`), version (`bad_version`), reserved byte and network index
/// (`bad_header`), payload length against the limit and the datagram's length (`bad_length`).
/// Never panics, whatever the bytes.
pub(super) fn parse(datagram: &[u8]) -> Result<Parsed<'_>, DropReason> {
    if datagram.len() < HEADER_BYTES + TAG_BYTES || datagram.len() > FRAME_BYTES_MAX {
        return Err(DropReason::BadLength);
    }
    if datagram[..OFFSET_VERSION] != MAGIC {
        return Err(DropReason::BadMagic);
    }
    if datagram[OFFSET_VERSION] != WIRE_VERSION {
        return Err(DropReason::BadVersion);
    }
    if datagram[OFFSET_RESERVED] != 0 || usize::from(datagram[OFFSET_NETWORK]) >= NETWORKS_MAX {
        return Err(DropReason::BadHeader);
    }
    let payload_bytes = usize::from(LittleEndian::read_u16(&datagram[OFFSET_PAYLOAD_LENGTH..]));
    if payload_bytes > PAYLOAD_BYTES_MAX
        || datagram.len() != HEADER_BYTES + payload_bytes + TAG_BYTES
    {
        return Err(DropReason::BadLength);
    }
    let (covered, tag) = datagram.split_at(HEADER_BYTES + payload_bytes);
    let tag: &[u8; TAG_BYTES] = tag.try_into().map_err(|_| DropReason::BadLength)?;
    let header = Header {
        kind: datagram[OFFSET_KIND],
        cluster_id: LittleEndian::read_u64(&datagram[OFFSET_CLUSTER_ID..]),
        sender: datagram[OFFSET_SENDER],
        receiver: datagram[OFFSET_RECEIVER],
        network: datagram[OFFSET_NETWORK],
        incarnation: LittleEndian::read_u64(&datagram[OFFSET_INCARNATION..]),
        sequence: LittleEndian::read_u64(&datagram[OFFSET_SEQUENCE..]),
    };
    Ok(Parsed {
        header,
        covered,
        payload: &covered[HEADER_BYTES..],
        tag,
    })
}

/// The header a datagram claims, without checking its tag: for a frame `Opener` refused after
/// its tag verified (`other_cluster`), this is authentic; otherwise only for a log line.
pub fn claimed_header(datagram: &[u8]) -> Option<Header> {
    parse(datagram).ok().map(|parsed| parsed.header)
}

/// The cluster id a datagram claims, without checking its tag: for a log line that helps tell
/// a neighbouring cluster with another key from a forger. Never use it to decide anything.
pub fn claimed_cluster_id(datagram: &[u8]) -> Option<u64> {
    parse(datagram).ok().map(|parsed| parsed.header.cluster_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            kind: 9,
            cluster_id: 0x0102_0304_0506_0708,
            sender: 3,
            receiver: 0,
            network: 1,
            incarnation: 0x1112_1314_1516_1718,
            sequence: 0x2122_2324_2526_2728,
        }
    }

    #[test]
    fn the_header_sits_where_the_diagram_says() {
        let mut bytes = [0u8; HEADER_BYTES];
        encode_header(&header(), 0x0142, &mut bytes);
        assert_eq!(&bytes[0..4], b"WLFP");
        assert_eq!(bytes[4..10], [1, 9, 3, 0, 1, 0]);
        assert_eq!(bytes[10..12], [0x42, 0x01]);
        assert_eq!(bytes[12], 0x08);
        assert_eq!(bytes[19], 0x01);
        assert_eq!(bytes[20], 0x18);
        assert_eq!(bytes[28], 0x28);
        assert_eq!(bytes[35], 0x21);
    }

    #[test]
    fn parse_reads_back_what_encode_wrote() {
        let mut datagram = vec![0u8; HEADER_BYTES];
        let mut bytes = [0u8; HEADER_BYTES];
        encode_header(&header(), 5, &mut bytes);
        datagram.copy_from_slice(&bytes);
        datagram.extend_from_slice(b"hello");
        datagram.extend_from_slice(&[0xAA; TAG_BYTES]);
        let parsed = parse(&datagram).expect("well formed");
        assert_eq!(parsed.header, header());
        assert_eq!(parsed.payload, b"hello");
        assert_eq!(parsed.covered.len(), HEADER_BYTES + 5);
        assert_eq!(parsed.tag, &[0xAA; TAG_BYTES]);
        assert_eq!(claimed_cluster_id(&datagram), Some(0x0102_0304_0506_0708));
    }

    #[test]
    fn parse_names_what_is_wrong() {
        let mut bytes = [0u8; HEADER_BYTES];
        encode_header(&header(), 0, &mut bytes);
        let good: Vec<u8> = [&bytes[..], &[0u8; TAG_BYTES]].concat();
        assert!(parse(&good).is_ok());
        let broken = |at: usize, value: u8| {
            let mut datagram = good.clone();
            datagram[at] = value;
            parse(&datagram).err()
        };
        assert_eq!(
            parse(&good[..good.len() - 1]).err(),
            Some(DropReason::BadLength)
        );
        assert_eq!(
            parse(&[good.clone(), vec![0]].concat()).err(),
            Some(DropReason::BadLength)
        );
        assert_eq!(broken(0, b'X'), Some(DropReason::BadMagic));
        assert_eq!(broken(4, 2), Some(DropReason::BadVersion));
        assert_eq!(broken(8, NETWORKS_MAX as u8), Some(DropReason::BadHeader));
        assert_eq!(broken(9, 1), Some(DropReason::BadHeader));
        assert_eq!(broken(10, 1), Some(DropReason::BadLength));
        assert_eq!(
            parse(&vec![0u8; FRAME_BYTES_MAX + 1]).err(),
            Some(DropReason::BadLength)
        );
    }

    #[test]
    #[should_panic(expected = "payload of 1349 bytes")]
    fn encoding_refuses_an_oversized_payload() {
        encode_header(&header(), PAYLOAD_BYTES_MAX + 1, &mut [0u8; HEADER_BYTES]);
    }
}
