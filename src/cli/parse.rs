//! Parsers for flag values: sizes, node specifications, numbers. Each error names the flag.
use super::UsageError;
use disklayout::{NodeEntry, ADDRESSES_MAX};
use std::net::SocketAddr;

/// Parses a size in bytes with an optional binary suffix: `67108864`, `64M`, `1G`, `512K`.
pub fn size_bytes(flag: &str, text: &str) -> Result<u64, UsageError> {
    let fail = || {
        UsageError(format!(
            "--{flag} '{text}' is not a size (e.g. 67108864, 64M, 1G)"
        ))
    };
    let (digits, multiplier) = match text.char_indices().last() {
        Some((at, 'K' | 'k')) => (&text[..at], 1u64 << 10),
        Some((at, 'M' | 'm')) => (&text[..at], 1 << 20),
        Some((at, 'G' | 'g')) => (&text[..at], 1 << 30),
        Some((at, 'T' | 't')) => (&text[..at], 1 << 40),
        _ => (text, 1),
    };
    let number: u64 = digits.parse().map_err(|_| fail())?;
    number.checked_mul(multiplier).ok_or_else(fail)
}

/// Parses an unsigned number for `flag`.
pub fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, UsageError> {
    text.parse()
        .map_err(|_| UsageError(format!("--{flag} '{text}' is not a whole number in range")))
}

/// Parses `ID=NAME@ADDR:PORT[,ADDR:PORT...]`: a node id, its name, and one address per network.
pub fn node_spec(text: &str) -> Result<NodeEntry, UsageError> {
    let fail = |why: &str| {
        UsageError(format!(
            "--node '{text}': {why} (expected ID=NAME@ADDR:PORT[,ADDR:PORT...])"
        ))
    };
    let (id, rest) = text.split_once('=').ok_or_else(|| fail("no '='"))?;
    let (name, addresses) = rest.split_once('@').ok_or_else(|| fail("no '@'"))?;
    let node_id: u8 = id.parse().map_err(|_| fail("the id is not a number"))?;
    if !disklayout::is_node_id(node_id) {
        return Err(fail("the id must be 1 to 64"));
    }
    if name.is_empty() || name.len() >= disklayout::NODE_NAME_BYTES_MAX {
        return Err(fail("the name must be 1 to 31 bytes"));
    }
    let addresses: Vec<SocketAddr> = addresses
        .split(',')
        .map(|address| {
            address
                .parse()
                .map_err(|_| fail(&format!("'{address}' is not ADDR:PORT")))
        })
        .collect::<Result<_, _>>()?;
    if addresses.len() > ADDRESSES_MAX {
        return Err(fail("at most 8 addresses (networks)"));
    }
    if addresses.iter().any(|address| address.port() == 0) {
        return Err(fail("port 0 cannot be listened on"));
    }
    Ok(NodeEntry {
        node_id,
        name: name.to_string(),
        addresses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(size_bytes("size", "4096").ok(), Some(4096));
        assert_eq!(size_bytes("size", "64M").ok(), Some(64 << 20));
        assert_eq!(size_bytes("size", "1g").ok(), Some(1 << 30));
        assert!(size_bytes("size", "").is_err());
        assert!(size_bytes("size", "M").is_err());
        assert!(size_bytes("size", "12X").is_err());
        assert!(size_bytes("size", "99999999999T").is_err());
        assert!(size_bytes("size", "-1").unwrap_err().0.contains("--size"));
    }

    #[test]
    fn node_specs_parse_every_network() {
        let node = node_spec("3=gamma@198.18.0.3:7400,[2001:db8::3]:7401").expect("valid");
        assert_eq!(node.node_id, 3);
        assert_eq!(node.name, "gamma");
        assert_eq!(node.addresses.len(), 2);
        assert_eq!(node.addresses[1].port(), 7401);
    }

    #[test]
    fn bad_node_specs_say_why() {
        for (text, why) in [
            ("alpha@1.2.3.4:1", "no '='"),
            ("1=alpha", "no '@'"),
            ("x=alpha@1.2.3.4:1", "not a number"),
            ("65=alpha@1.2.3.4:1", "1 to 64"),
            ("1=@1.2.3.4:1", "1 to 31 bytes"),
            ("1=alpha@1.2.3.4", "not ADDR:PORT"),
            ("1=alpha@1.2.3.4:0", "port 0"),
        ] {
            let error = node_spec(text).expect_err(text).0;
            assert!(error.contains(why), "{text}: {error}");
            assert!(error.contains("--node"), "{error}");
        }
    }
}
