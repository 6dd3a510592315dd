//! Keys of the cluster database: '/'-separated paths under a fixed set of namespaces.
//!
//! Segments are lower-case on purpose: resource and group names reach the database from
//! people, and `Web` next to `web` would be two keys that a person reads as one. The command
//! line can lower-case or refuse a name; the database never guesses.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Most segments in a path.
pub const PATH_DEPTH_MAX: usize = 8;
/// Most bytes in one segment.
pub const SEGMENT_BYTES_MAX: usize = 64;
/// Most bytes in a whole path, separators included (its length is one byte in the encodings).
pub const PATH_BYTES_MAX: usize = 255;

/// The top-level namespaces; a path starts with one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Namespace {
    Cluster,
    Nodes,
    Groups,
    Resources,
    Properties,
}

impl Namespace {
    pub const ALL: [Namespace; 5] = [
        Namespace::Cluster,
        Namespace::Nodes,
        Namespace::Groups,
        Namespace::Resources,
        Namespace::Properties,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Namespace::Cluster => "cluster",
            Namespace::Nodes => "nodes",
            Namespace::Groups => "groups",
            Namespace::Resources => "resources",
            Namespace::Properties => "properties",
        }
    }

    fn from_name(name: &str) -> Option<Namespace> {
        Namespace::ALL
            .into_iter()
            .find(|namespace| namespace.name() == name)
    }
}

/// Why a string is not a path. Segment numbers count from 1, as a person reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathError {
    Empty,
    TooLong {
        bytes: usize,
    },
    TooDeep {
        depth: usize,
    },
    /// A leading, trailing or doubled '/'.
    EmptySegment {
        segment: usize,
    },
    SegmentTooLong {
        segment: usize,
        bytes: usize,
    },
    /// `.` and `..` read as directory navigation, which the database does not have.
    DotSegment {
        segment: usize,
    },
    /// A byte outside [a-z0-9._-]; `byte` is the raw byte (a UTF-8 lead byte for non-ASCII).
    BadCharacter {
        segment: usize,
        byte: u8,
    },
    UnknownNamespace {
        found: String,
    },
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Empty => write!(f, "the path is empty"),
            PathError::TooLong { bytes } => {
                write!(f, "the path is {bytes} bytes; at most {PATH_BYTES_MAX} allowed")
            }
            PathError::TooDeep { depth } => write!(
                f,
                "the path has {depth} segments; at most {PATH_DEPTH_MAX} allowed"
            ),
            PathError::EmptySegment { segment } => write!(
                f,
                "segment {segment} is empty (a leading, trailing or doubled '/')"
            ),
            PathError::SegmentTooLong { segment, bytes } => write!(
                f,
                "segment {segment} is {bytes} bytes; at most {SEGMENT_BYTES_MAX} allowed"
            ),
            PathError::DotSegment { segment } => {
                write!(f, "segment {segment} is '.' or '..', which are not names")
            }
            PathError::BadCharacter { segment, byte } => {
                let shown = match byte.is_ascii_graphic() {
                    true => format!("'{}'", *byte as char),
                    false => format!("byte {byte:#04x}"),
                };
                write!(
                    f,
                    "segment {segment} contains {shown}; only a-z, 0-9, '.', '_' and '-' are allowed"
                )
            }
            PathError::UnknownNamespace { found } => write!(
                f,
                "'{found}' is not a namespace; a path starts with cluster, nodes, groups, resources or properties"
            ),
        }
    }
}

impl std::error::Error for PathError {}

/// A valid key: 1 to 8 segments of 1 to 64 bytes of [a-z0-9._-], at most 255 bytes in all,
/// the first segment a [`Namespace`].
///
/// Ordered segment by segment (`a` < `a/b` < `a-c`), so a key's subtree is one contiguous range
/// right after it: listing a prefix is a range scan, and a snapshot in key order lists every
/// subtree together.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Path {
    text: String,
    namespace: Namespace,
}

impl Path {
    pub fn parse(text: &str) -> Result<Path, PathError> {
        let namespace = Path::check(text.as_bytes())?;
        Ok(Path {
            text: text.to_string(),
            namespace,
        })
    }

    /// Parses a path from untrusted bytes without assuming they are UTF-8 (the checked
    /// alphabet is ASCII, so a valid path always is).
    pub fn from_bytes(bytes: &[u8]) -> Result<Path, PathError> {
        let namespace = Path::check(bytes)?;
        Ok(Path {
            text: bytes.iter().map(|&byte| char::from(byte)).collect(),
            namespace,
        })
    }

    /// Checks every rule and returns the namespace the path starts with.
    fn check(bytes: &[u8]) -> Result<Namespace, PathError> {
        if bytes.is_empty() {
            return Err(PathError::Empty);
        }
        if bytes.len() > PATH_BYTES_MAX {
            return Err(PathError::TooLong { bytes: bytes.len() });
        }
        let depth = bytes.split(|&byte| byte == b'/').count();
        if depth > PATH_DEPTH_MAX {
            return Err(PathError::TooDeep { depth });
        }
        for (index, segment_bytes) in bytes.split(|&byte| byte == b'/').enumerate() {
            let segment = index + 1;
            if segment_bytes.is_empty() {
                return Err(PathError::EmptySegment { segment });
            }
            if segment_bytes.len() > SEGMENT_BYTES_MAX {
                return Err(PathError::SegmentTooLong {
                    segment,
                    bytes: segment_bytes.len(),
                });
            }
            if let Some(&byte) = segment_bytes.iter().find(|&&byte| !is_segment_byte(byte)) {
                return Err(PathError::BadCharacter { segment, byte });
            }
            if segment_bytes == b"." || segment_bytes == b".." {
                return Err(PathError::DotSegment { segment });
            }
        }
        let first = bytes.split(|&byte| byte == b'/').next().unwrap_or_default();
        let first = String::from_utf8_lossy(first);
        Namespace::from_name(&first).ok_or_else(|| PathError::UnknownNamespace {
            found: first.into_owned(),
        })
    }

    /// A path one segment deeper.
    pub fn child(&self, segment: &str) -> Result<Path, PathError> {
        Path::parse(&format!("{}/{segment}", self.text))
    }

    /// The path one segment up, `None` for a namespace.
    pub fn parent(&self) -> Option<Path> {
        self.text.rfind('/').map(|slash| Path {
            text: self.text[..slash].to_string(),
            namespace: self.namespace,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn namespace(&self) -> Namespace {
        self.namespace
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.text.split('/')
    }

    pub fn depth(&self) -> usize {
        self.segments().count()
    }

    /// Whether `self` is `ancestor` or lies under it (whole segments: `groups/web` is not under
    /// `groups/we`).
    pub fn is_within(&self, ancestor: &Path) -> bool {
        match self.text.strip_prefix(ancestor.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    fn ordering_bytes(&self) -> impl Iterator<Item = u8> + '_ {
        // '/' sorts below every segment byte ('-' and '.' are below it in ASCII), which makes
        // byte order equal segment-by-segment order.
        self.text
            .bytes()
            .map(|byte| if byte == b'/' { 0 } else { byte })
    }
}

fn is_segment_byte(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'.' | b'_' | b'-')
}

impl Ord for Path {
    fn cmp(&self, other: &Path) -> Ordering {
        self.ordering_bytes().cmp(other.ordering_bytes())
    }
}

impl PartialOrd for Path {
    fn partial_cmp(&self, other: &Path) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for Path {
    type Err = PathError;
    fn from_str(text: &str) -> Result<Path, PathError> {
        Path::parse(text)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> Path {
        Path::parse(text).expect("a valid path")
    }

    #[test]
    fn accepts_every_namespace_and_the_whole_alphabet() {
        for namespace in Namespace::ALL {
            assert_eq!(path(namespace.name()).namespace(), namespace);
        }
        let key = path("resources/web-1/ocf_agent.v2/0");
        assert_eq!(key.depth(), 4);
        assert_eq!(key.namespace(), Namespace::Resources);
    }

    #[test]
    fn each_rule_is_reported_by_name() {
        let cases = [
            ("", PathError::Empty),
            ("/groups", PathError::EmptySegment { segment: 1 }),
            ("groups/", PathError::EmptySegment { segment: 2 }),
            ("groups//web", PathError::EmptySegment { segment: 2 }),
            (
                "groups/Web",
                PathError::BadCharacter {
                    segment: 2,
                    byte: b'W',
                },
            ),
            (
                "groups/w b",
                PathError::BadCharacter {
                    segment: 2,
                    byte: b' ',
                },
            ),
            (
                "groups/é",
                PathError::BadCharacter {
                    segment: 2,
                    byte: 0xc3,
                },
            ),
            ("groups/..", PathError::DotSegment { segment: 2 }),
            ("groups/.", PathError::DotSegment { segment: 2 }),
            (
                "users/x",
                PathError::UnknownNamespace {
                    found: "users".into(),
                },
            ),
            (
                "Groups",
                PathError::BadCharacter {
                    segment: 1,
                    byte: b'G',
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Path::parse(text), Err(expected), "{text:?}");
        }
        let long_segment = format!("groups/{}", "a".repeat(65));
        assert_eq!(
            Path::parse(&long_segment),
            Err(PathError::SegmentTooLong {
                segment: 2,
                bytes: 65
            })
        );
        assert!(Path::parse(&format!("groups/{}", "a".repeat(64))).is_ok());
        let deep = format!("groups{}", "/a".repeat(8));
        assert_eq!(Path::parse(&deep), Err(PathError::TooDeep { depth: 9 }));
        assert!(Path::parse(&format!("groups{}", "/a".repeat(7))).is_ok());
        let long = format!("groups/{}", vec!["a".repeat(60); 5].join("/"));
        assert_eq!(long.len(), 311);
        assert_eq!(Path::parse(&long), Err(PathError::TooLong { bytes: 311 }));
    }

    #[test]
    fn errors_read_as_sentences() {
        let error = Path::parse("groups/Web").unwrap_err();
        assert_eq!(
            error.to_string(),
            "segment 2 contains 'W'; only a-z, 0-9, '.', '_' and '-' are allowed"
        );
        let error = Path::parse("users").unwrap_err();
        assert!(error.to_string().starts_with("'users' is not a namespace"));
    }

    #[test]
    fn orders_segment_by_segment_so_subtrees_are_contiguous() {
        let mut keys = [
            path("groups/a-c"),
            path("groups/a/b"),
            path("groups/a"),
            path("groups/a.b"),
            path("groups/a/b/c"),
            path("groups/a0"),
        ];
        keys.sort();
        let sorted: Vec<&str> = keys.iter().map(Path::as_str).collect();
        assert_eq!(
            sorted,
            [
                "groups/a",
                "groups/a/b",
                "groups/a/b/c",
                "groups/a-c",
                "groups/a.b",
                "groups/a0"
            ]
        );
    }

    #[test]
    fn within_means_whole_segments() {
        assert!(path("groups/web/x").is_within(&path("groups/web")));
        assert!(path("groups/web").is_within(&path("groups/web")));
        assert!(!path("groups/webs").is_within(&path("groups/web")));
        assert!(!path("groups").is_within(&path("groups/web")));
        assert_eq!(path("groups/web/x").parent(), Some(path("groups/web")));
        assert_eq!(path("groups").parent(), None);
        assert_eq!(path("groups").child("web"), Ok(path("groups/web")));
        assert!(path("groups").child("a/B").is_err());
    }

    #[test]
    fn from_bytes_refuses_non_ascii_without_panicking() {
        assert!(Path::from_bytes(&[0xff, 0xfe]).is_err());
        assert_eq!(Path::from_bytes(b"nodes/1"), Ok(path("nodes/1")));
    }
}
