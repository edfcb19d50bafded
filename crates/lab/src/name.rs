use crate::LabError;
use std::fmt;

/// A lab's name, which is also its network namespace's name: 1 to 15
/// characters from `a-z`, `0-9` and `-` (15 so that it also fits an
/// interface name, should a lab ever grow a veth).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabName(String);

impl LabName {
    pub fn parse(s: &str) -> Result<Self, LabError> {
        let ok = (1..=15).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(LabName(s.to_owned()))
        } else {
            Err(LabError::InvalidName(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LabName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for LabName {
    type Err = LabError;
    fn from_str(s: &str) -> Result<Self, LabError> {
        LabName::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_lowercase_digits_and_dashes_up_to_15_are_accepted() {
        for ok in ["a", "lab-1", "0", "abcdefghijklmno", "--"] {
            assert_eq!(LabName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn empty_long_uppercase_and_path_like_names_are_rejected() {
        for bad in [
            "",
            "abcdefghijklmnop",
            "Lab",
            "lab_1",
            "../x",
            "a/b",
            "lab 1",
            "é",
        ] {
            assert!(
                matches!(LabName::parse(bad), Err(LabError::InvalidName(n)) if n == bad),
                "{bad:?} accepted"
            );
        }
    }
}
