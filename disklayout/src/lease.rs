//! The quorum lease and the per-resource leases (FORMAT.md §6): one body, two record types.
use crate::error::{DecodeError, EncodeError};
use crate::fields::{check_counter, check_string, Reader, Writer};
use crate::Record;

/// The name field's size; the name itself is at most one byte less.
pub const LEASE_NAME_BYTES_MAX: usize = 48;
/// The name the quorum lease always carries.
pub const QUORUM_LEASE_NAME: &str = "quorum";

/// Who holds a disk lease and who challenges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The holder's node id, or 0 when nobody holds it.
    pub owner: u8,
    /// The holder's incarnation.
    pub owner_incarnation: u64,
    /// The membership epoch in which the holder took or last renewed the lease.
    pub owner_epoch: u64,
    /// The challenger's node id, or 0.
    pub challenger: u8,
    /// The challenger's incarnation, or 0.
    pub challenger_incarnation: u64,
    /// `quorum` for the quorum lease; the resource's name for a resource lease.
    pub name: String,
}

/// The quorum lease (magic `WPQL`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumLease(pub Lease);

/// A per-resource lease (magic `WPRL`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceLease(pub Lease);

const LEASE_BODY_BYTES: usize = 80;

impl Lease {
    fn validate(&self) -> Result<(), EncodeError> {
        for (field, node_id) in [("owner", self.owner), ("challenger", self.challenger)] {
            if node_id != 0 && !crate::is_node_id(node_id) {
                return Err(EncodeError::field(
                    field,
                    format!("{node_id} is neither 0 nor in 1..=64"),
                ));
            }
        }
        check_counter("owner_incarnation", self.owner_incarnation)?;
        check_counter("owner_epoch", self.owner_epoch)?;
        check_counter("challenger_incarnation", self.challenger_incarnation)?;
        check_string(&self.name, LEASE_NAME_BYTES_MAX, "name")
    }

    fn encode_body(&self, body: &mut [u8]) {
        let mut writer = Writer::new(body);
        writer.u8(self.owner);
        writer.u8(self.challenger);
        writer.reserved(6);
        writer.u64(self.owner_incarnation);
        writer.u64(self.owner_epoch);
        writer.u64(self.challenger_incarnation);
        writer.string(&self.name, LEASE_NAME_BYTES_MAX);
        writer.finish();
    }

    fn decode_body(body: &[u8]) -> Result<Lease, DecodeError> {
        let mut reader = Reader::new(body);
        let owner = reader.u8("owner")?;
        let challenger = reader.u8("challenger")?;
        for (offset, field, node_id) in [(32, "owner", owner), (33, "challenger", challenger)] {
            if node_id != 0 && !crate::is_node_id(node_id) {
                return Err(DecodeError::InvalidField {
                    offset,
                    field,
                    problem: "neither 0 nor in 1..=64",
                });
            }
        }
        reader.reserved(6)?;
        let owner_incarnation = reader.counter("owner_incarnation")?;
        let owner_epoch = reader.counter("owner_epoch")?;
        let challenger_incarnation = reader.counter("challenger_incarnation")?;
        let name = reader.string(LEASE_NAME_BYTES_MAX, "name")?;
        reader.finish()?;
        Ok(Lease {
            owner,
            owner_incarnation,
            owner_epoch,
            challenger,
            challenger_incarnation,
            name,
        })
    }
}

impl Record for QuorumLease {
    const MAGIC: [u8; 4] = *b"WPQL";
    const BODY_BYTES: Option<usize> = Some(LEASE_BODY_BYTES);

    fn validate(&self) -> Result<(), EncodeError> {
        self.0.validate()?;
        if self.0.name != QUORUM_LEASE_NAME {
            return Err(EncodeError::field(
                "name",
                "the quorum lease is named \"quorum\"",
            ));
        }
        Ok(())
    }

    fn encode_body(&self, body: &mut [u8]) {
        self.0.encode_body(body)
    }

    fn decode_body(body: &[u8]) -> Result<QuorumLease, DecodeError> {
        let lease = Lease::decode_body(body)?;
        if lease.name != QUORUM_LEASE_NAME {
            return Err(DecodeError::InvalidField {
                offset: 64,
                field: "name",
                problem: "is not \"quorum\"",
            });
        }
        Ok(QuorumLease(lease))
    }
}

impl Record for ResourceLease {
    const MAGIC: [u8; 4] = *b"WPRL";
    const BODY_BYTES: Option<usize> = Some(LEASE_BODY_BYTES);

    fn validate(&self) -> Result<(), EncodeError> {
        self.0.validate()
    }

    fn encode_body(&self, body: &mut [u8]) {
        self.0.encode_body(body)
    }

    fn decode_body(body: &[u8]) -> Result<ResourceLease, DecodeError> {
        Lease::decode_body(body).map(ResourceLease)
    }
}
