//! Identifiers. Project ids are 32 lowercase hex characters like IAM's;
//! resource ids are UUIDs (v4, as the real service's look random), one type
//! per kind of resource so that two kinds can't be swapped. An id is parsed
//! once, at the edge (a path, a body field, a stored row); below that it is
//! a value that is valid by construction.

use std::fmt;
use std::str::FromStr;

/// The behaviour every resource id type shares.
pub trait ResourceId: Copy + Eq + std::hash::Hash + fmt::Display + Send + Sync + 'static {
    /// A new random id.
    fn random() -> Self;
    /// Parses the canonical text form (36 characters, any case); `None`
    /// when it is not a UUID.
    fn parse(s: &str) -> Option<Self>;
    /// The id's UUID.
    fn uuid(&self) -> uuid::Uuid;
}

macro_rules! resource_id {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new random id.
            pub fn random() -> Self {
                $name(uuid::Uuid::new_v4())
            }
            /// Parses the canonical text form; `None` when it is not a UUID.
            pub fn parse(s: &str) -> Option<Self> {
                parse_uuid(s).map($name)
            }
            /// The id's UUID.
            pub fn uuid(&self) -> uuid::Uuid {
                self.0
            }
            /// The id of a UUID.
            pub fn from_uuid(u: uuid::Uuid) -> Self {
                $name(u)
            }
        }

        impl ResourceId for $name {
            fn random() -> Self {
                $name::random()
            }
            fn parse(s: &str) -> Option<Self> {
                $name::parse(s)
            }
            fn uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $name::parse(s).ok_or_else(|| format!("not a valid {} id (a UUID): {s:?}", $what))
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                $name::parse(other) == Some(*self)
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                $name::parse(other) == Some(*self)
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                $name::parse(other) == Some(*self)
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                other == self
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                other == self
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!("not a valid {} id (a UUID)", $what))
                })
            }
        }
    };
}

resource_id!(
    /// A VPN gateway's id.
    GatewayId,
    "VPN gateway"
);
resource_id!(
    /// A customer gateway's id.
    CustomerGatewayId,
    "customer gateway"
);
resource_id!(
    /// A VPN connection's id.
    ConnectionId,
    "VPN connection"
);
resource_id!(
    /// A connection monitor's id.
    MonitorId,
    "connection monitor"
);
resource_id!(
    /// A vpnmon node's id: new for every `serve` process (an incarnation),
    /// so a restarted node never inherits the lease of its previous life.
    NodeId,
    "node"
);

/// A Cloud Eye alarm rule's id: `al` and 22 letters or digits, as CES
/// shows them (24 characters). It carries a random UUID written in base 62,
/// so it is unique like the resource ids and parses back exactly; a string
/// of the right shape whose value does not fit 128 bits is not an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlarmId(uuid::Uuid);

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl AlarmId {
    /// A new random id.
    pub fn random() -> Self {
        AlarmId(uuid::Uuid::new_v4())
    }
    /// Parses `al` + 22 base-62 digits; `None` otherwise.
    pub fn parse(s: &str) -> Option<Self> {
        let digits = s.strip_prefix("al")?;
        if digits.len() != 22 {
            return None;
        }
        let mut v: u128 = 0;
        for b in digits.bytes() {
            let d = BASE62.iter().position(|c| *c == b)? as u128;
            v = v.checked_mul(62)?.checked_add(d)?;
        }
        Some(AlarmId(uuid::Uuid::from_u128(v)))
    }
    /// The id's UUID.
    pub fn uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for AlarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = self.0.as_u128();
        let mut out = [b'0'; 22];
        for slot in out.iter_mut().rev() {
            *slot = BASE62[(v % 62) as usize];
            v /= 62;
        }
        f.write_str("al")?;
        // Only base-62 digits were written.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl serde::Serialize for AlarmId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AlarmId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        AlarmId::parse(&s).ok_or_else(|| {
            serde::de::Error::custom("not a valid alarm id (al and 22 letters or digits)")
        })
    }
}

fn parse_uuid(s: &str) -> Option<uuid::Uuid> {
    if s.len() != 36 {
        return None;
    }
    uuid::Uuid::parse_str(s).ok()
}

macro_rules! iam_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses an id; `None` when it is not 32 hex characters.
            pub fn parse(s: &str) -> Option<Self> {
                if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Some($name(s.to_ascii_lowercase()))
                } else {
                    None
                }
            }

            /// A new random id.
            pub fn generate() -> Self {
                $name(uuid::Uuid::new_v4().simple().to_string())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s)
                    .ok_or_else(|| serde::de::Error::custom("not an IAM id (32 hex characters)"))
            }
        }
    };
}

iam_id!(
    /// An IAM project id: 32 lowercase hex characters.
    ProjectId
);
iam_id!(
    /// An IAM domain (account) id: 32 lowercase hex characters.
    DomainId
);
iam_id!(
    /// An IAM user id: 32 lowercase hex characters.
    UserId
);

/// A new random resource id (UUID v4, hyphenated).
pub fn new_resource_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Parses a resource id given in a path or body; `None` when it is not a UUID.
/// The canonical (lowercase, hyphenated) form is returned.
pub fn parse_resource_id(s: &str) -> Option<String> {
    parse_uuid(s).map(|u| u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_ids_parse_once_and_print_canonically() {
        let id = MonitorId::parse("CAE286F2-0000-4000-8000-E22416CA1220").unwrap();
        assert_eq!(id.to_string(), "cae286f2-0000-4000-8000-e22416ca1220");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            r#""cae286f2-0000-4000-8000-e22416ca1220""#
        );
        let back: MonitorId =
            serde_json::from_str(r#""cae286f2-0000-4000-8000-e22416ca1220""#).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<MonitorId>(r#""nope""#).is_err());
        assert!(MonitorId::parse("cae286f200004000800e22416ca1220").is_none());
        assert_eq!(id, "cae286f2-0000-4000-8000-e22416ca1220");
        assert!(
            "x".parse::<GatewayId>()
                .unwrap_err()
                .contains("VPN gateway")
        );
    }

    #[test]
    fn alarm_ids_are_al_and_22_base62_digits_and_round_trip() {
        for _ in 0..100 {
            let id = AlarmId::random();
            let s = id.to_string();
            assert_eq!(s.len(), 24, "{s}");
            assert!(s.starts_with("al"));
            assert!(s[2..].bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(AlarmId::parse(&s), Some(id));
        }
        let zero = AlarmId(uuid::Uuid::nil());
        assert_eq!(zero.to_string(), "al0000000000000000000000");
        let max = AlarmId(uuid::Uuid::max());
        assert_eq!(AlarmId::parse(&max.to_string()), Some(max));
        // 22 digits can hold more than 128 bits: those are not ids.
        assert_eq!(AlarmId::parse("alzzzzzzzzzzzzzzzzzzzzzz"), None);
        assert_eq!(AlarmId::parse("al000000000000000000000"), None);
        assert_eq!(AlarmId::parse("xx0000000000000000000000"), None);
        assert_eq!(AlarmId::parse("al00000000000000000000-0"), None);
    }

    #[test]
    fn project_id_must_be_32_hex() {
        assert!(ProjectId::parse("0123456789abcdef0123456789abcdef").is_some());
        assert!(ProjectId::parse("0123456789abcdef0123456789abcde").is_none());
        assert!(ProjectId::parse("0123456789abcdef0123456789abcdeg").is_none());
        assert!(ProjectId::parse("{project_id}").is_none());
    }

    #[test]
    fn resource_id_is_hyphenated_uuid() {
        assert_eq!(
            parse_resource_id("CAE286F2-0000-4000-8000-E22416CA1220").as_deref(),
            Some("cae286f2-0000-4000-8000-e22416ca1220")
        );
        assert!(parse_resource_id("cae286f200004000800e22416ca1220").is_none());
        assert!(parse_resource_id("not-a-uuid").is_none());
    }
}
