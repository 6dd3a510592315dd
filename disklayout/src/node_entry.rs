//! A node table entry (FORMAT.md §5): a node's id, name and one address per network.
use crate::error::{DecodeError, EncodeError};
use crate::fields::{check_node_id, check_string, Reader, Writer};
use crate::Record;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The name field's size; the name itself is at most one byte less.
pub const NODE_NAME_BYTES_MAX: usize = 32;
/// The most networks (addresses) a node can have.
pub const ADDRESSES_MAX: usize = 8;
const ADDRESS_ENTRY_BYTES: usize = 24;

/// One configured node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    /// The node's id, 1 to 64.
    pub node_id: u8,
    /// A name for people.
    pub name: String,
    /// The node's UDP address on each network, network 0 first.
    pub addresses: Vec<SocketAddr>,
}

impl Record for NodeEntry {
    const MAGIC: [u8; 4] = *b"WPNE";
    const BODY_BYTES: Option<usize> = Some(40 + ADDRESSES_MAX * ADDRESS_ENTRY_BYTES);

    fn validate(&self) -> Result<(), EncodeError> {
        check_node_id("node_id", self.node_id)?;
        check_string(&self.name, NODE_NAME_BYTES_MAX, "name")?;
        if self.addresses.is_empty() || self.addresses.len() > ADDRESSES_MAX {
            return Err(EncodeError::field(
                "addresses",
                format!("a node has 1 to {ADDRESSES_MAX}"),
            ));
        }
        if self.addresses.iter().any(|address| address.port() == 0) {
            return Err(EncodeError::field(
                "addresses",
                "port 0 is not a port to listen on",
            ));
        }
        // The address entry has no field for it, so encoding would silently drop it.
        if self
            .addresses
            .iter()
            .any(|address| matches!(address, SocketAddr::V6(v6) if v6.flowinfo() != 0))
        {
            return Err(EncodeError::field(
                "addresses",
                "an IPv6 flow label cannot be stored",
            ));
        }
        Ok(())
    }

    fn encode_body(&self, body: &mut [u8]) {
        let mut writer = Writer::new(body);
        writer.u8(self.node_id);
        writer.u8(self.addresses.len() as u8);
        writer.reserved(6);
        writer.string(&self.name, NODE_NAME_BYTES_MAX);
        for address in &self.addresses {
            match address {
                SocketAddr::V4(v4) => {
                    writer.u8(4);
                    writer.reserved(1);
                    writer.u16(v4.port());
                    writer.u32(0);
                    writer.bytes(&v4.ip().octets());
                    writer.reserved(12);
                }
                SocketAddr::V6(v6) => {
                    writer.u8(6);
                    writer.reserved(1);
                    writer.u16(v6.port());
                    writer.u32(v6.scope_id());
                    writer.bytes(&v6.ip().octets());
                }
            }
        }
        writer.reserved((ADDRESSES_MAX - self.addresses.len()) * ADDRESS_ENTRY_BYTES);
        writer.finish();
    }

    fn decode_body(body: &[u8]) -> Result<NodeEntry, DecodeError> {
        let mut reader = Reader::new(body);
        let node_id = reader.node_id("node_id")?;
        let count = reader.u8("address_count")? as usize;
        if count == 0 || count > ADDRESSES_MAX {
            return Err(DecodeError::InvalidField {
                offset: 33,
                field: "address_count",
                problem: "not in 1..=8",
            });
        }
        reader.reserved(6)?;
        let name = reader.string(NODE_NAME_BYTES_MAX, "name")?;
        let mut addresses = Vec::with_capacity(count);
        for _ in 0..count {
            addresses.push(decode_address(&mut reader)?);
        }
        reader.reserved((ADDRESSES_MAX - count) * ADDRESS_ENTRY_BYTES)?;
        reader.finish()?;
        Ok(NodeEntry {
            node_id,
            name,
            addresses,
        })
    }
}

fn decode_address(reader: &mut Reader<'_>) -> Result<SocketAddr, DecodeError> {
    let family_at = reader.offset();
    let family = reader.u8("address_family")?;
    reader.reserved(1)?;
    let port_at = reader.offset();
    let port = reader.u16("port")?;
    if port == 0 {
        return Err(DecodeError::InvalidField {
            offset: port_at,
            field: "port",
            problem: "is 0",
        });
    }
    let scope_at = reader.offset();
    let scope_id = reader.u32("scope_id")?;
    match family {
        4 => {
            if scope_id != 0 {
                return Err(DecodeError::NonZeroReserved { offset: scope_at });
            }
            let octets = reader.bytes(4, "address")?;
            let ip = Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]);
            reader.reserved(12)?;
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        6 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(reader.bytes(16, "address")?);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(octets),
                port,
                0,
                scope_id,
            )))
        }
        _ => Err(DecodeError::InvalidField {
            offset: family_at,
            field: "address_family",
            problem: "is neither 4 nor 6",
        }),
    }
}
