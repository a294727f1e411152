//! The NHS number: the key of every CP-IS record.
//!
//! An [`NhsNumber`] can only be made by [`NhsNumber::parse`], so a value of this type has passed
//! every check: ten digits, a valid modulus-11 check digit, and not the all-zero placeholder.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A checked NHS number, held as its ten digits (leading zeros matter, so never as an integer).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber(String);

/// Why a string is not an NHS number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    #[error("NHS number is empty")]
    Empty,
    #[error("NHS number may hold only digits, spaces and hyphens; found {0:?}")]
    InvalidCharacter(char),
    #[error("NHS number must have 10 digits; found {0}")]
    WrongLength(usize),
    #[error("NHS number {0} can never be valid: its check digit works out as 10")]
    CheckValueTen(String),
    #[error(
        "NHS number {number} has check digit {found} but its first nine digits need {expected}"
    )]
    CheckDigitMismatch {
        number: String,
        found: u32,
        expected: u32,
    },
    #[error("NHS number 0000000000 is a placeholder some systems use for 'unknown', not a number")]
    AllZeros,
}

impl NhsNumberError {
    /// A stable, machine-readable reason for API error bodies.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::InvalidCharacter(_) => "invalid_character",
            Self::WrongLength(_) => "wrong_length",
            Self::CheckValueTen(_) => "check_value_ten",
            Self::CheckDigitMismatch { .. } => "check_digit_mismatch",
            Self::AllZeros => "placeholder_all_zeros",
        }
    }
}

impl NhsNumber {
    /// Parses an NHS number as systems send it: ten digits, optionally grouped with spaces or
    /// hyphens (`943 476 5919`, `943-476-5919`).
    pub fn parse(input: &str) -> Result<Self, NhsNumberError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(NhsNumberError::Empty);
        }
        let mut digits = String::with_capacity(10);
        for c in trimmed.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' => {}
                other => return Err(NhsNumberError::InvalidCharacter(other)),
            }
        }
        if digits.len() != 10 {
            return Err(NhsNumberError::WrongLength(digits.len()));
        }
        let values: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
        let expected = check_digit(&values[..9])
            .ok_or_else(|| NhsNumberError::CheckValueTen(digits.clone()))?;
        if expected != values[9] {
            return Err(NhsNumberError::CheckDigitMismatch {
                number: digits,
                found: values[9],
                expected,
            });
        }
        // 0000000000 passes the checksum, but systems use it to mean "not known"; accepting it
        // would pool unrelated children under one key.
        if values.iter().all(|&d| d == 0) {
            return Err(NhsNumberError::AllZeros);
        }
        Ok(Self(digits))
    }

    /// The ten digits, as stored and compared.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Numbers from 999 000 0000 to 999 999 9999 pass the check but are never issued: they are
    /// for testing. CP-IS accepts them so that integrators can test end to end.
    pub fn is_test_number(&self) -> bool {
        self.0.starts_with("999")
    }

    /// The `n`-th valid number of a fixed sequence in the test range (999…): test data for
    /// this crate's tests, the end-to-end suite and the throughput example.
    pub fn test_number(n: u32) -> Self {
        (0..)
            .map(|k| format!("999{:06}", n.wrapping_mul(11).wrapping_add(k) % 1_000_000))
            .find_map(|nine| {
                (0..10)
                    .map(|d| format!("{nine}{d}"))
                    .find_map(|candidate| Self::parse(&candidate).ok())
            })
            .expect("every run of eleven nine-digit prefixes has a valid completion")
    }

    /// The number grouped for display: `943 476 5919`.
    pub fn display_grouped(&self) -> String {
        format!("{} {} {}", &self.0[..3], &self.0[3..6], &self.0[6..])
    }
}

/// The modulus-11 check digit of the first nine digits, or `None` when it works out as 10
/// (no valid number has those nine digits).
fn check_digit(first_nine: &[u32]) -> Option<u32> {
    let sum: u32 = first_nine
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| d * w)
        .sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        d => Some(d),
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NhsNumber({})", self.0)
    }
}

impl FromStr for NhsNumber {
    type Err = NhsNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for NhsNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NhsNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_vectors_from_the_domain_facts() {
        for n in ["9434765919", "9876543210", "4010232137", "9990000018"] {
            assert_eq!(NhsNumber::parse(n).unwrap().as_str(), n);
        }
    }

    #[test]
    fn wrong_check_digit_is_rejected_with_the_expected_digit() {
        assert_eq!(
            NhsNumber::parse("9434765918"),
            Err(NhsNumberError::CheckDigitMismatch {
                number: "9434765918".into(),
                found: 8,
                expected: 9
            })
        );
    }

    #[test]
    fn check_value_ten_is_rejected() {
        for n in ["1234567890", "9990000000"] {
            assert_eq!(
                NhsNumber::parse(n),
                Err(NhsNumberError::CheckValueTen(n.into()))
            );
        }
    }

    #[test]
    fn all_zeros_is_rejected_as_a_placeholder() {
        assert_eq!(
            NhsNumber::parse("0000000000"),
            Err(NhsNumberError::AllZeros)
        );
        assert_eq!(
            NhsNumber::parse("000 000 0000"),
            Err(NhsNumberError::AllZeros)
        );
    }

    #[test]
    fn spaces_and_hyphens_are_accepted_and_dropped() {
        assert_eq!(
            NhsNumber::parse("943 476 5919").unwrap().as_str(),
            "9434765919"
        );
        assert_eq!(
            NhsNumber::parse("943-476-5919").unwrap().as_str(),
            "9434765919"
        );
        assert_eq!(
            NhsNumber::parse(" 9434765919 ").unwrap().as_str(),
            "9434765919"
        );
    }

    #[test]
    fn leading_zeros_are_kept() {
        // 0000000019: weights give sum 1*2 = 2 -> 11-2 = 9; check digit 9.
        let n = NhsNumber::parse("0000000019").unwrap();
        assert_eq!(n.as_str(), "0000000019");
        assert_eq!(n.display_grouped(), "000 000 0019");
    }

    #[test]
    fn length_and_character_errors_name_the_problem() {
        assert_eq!(NhsNumber::parse(""), Err(NhsNumberError::Empty));
        assert_eq!(NhsNumber::parse("   "), Err(NhsNumberError::Empty));
        assert_eq!(
            NhsNumber::parse("943476591"),
            Err(NhsNumberError::WrongLength(9))
        );
        assert_eq!(
            NhsNumber::parse("94347659190"),
            Err(NhsNumberError::WrongLength(11))
        );
        assert_eq!(
            NhsNumber::parse("943476591x"),
            Err(NhsNumberError::InvalidCharacter('x'))
        );
        assert_eq!(
            NhsNumber::parse("９434765919"),
            Err(NhsNumberError::InvalidCharacter('９'))
        );
    }

    #[test]
    fn display_groups_three_three_four() {
        assert_eq!(
            NhsNumber::parse("9434765919").unwrap().display_grouped(),
            "943 476 5919"
        );
    }

    #[test]
    fn test_range_is_recognised() {
        assert!(NhsNumber::parse("9990000018").unwrap().is_test_number());
        assert!(!NhsNumber::parse("9434765919").unwrap().is_test_number());
    }

    #[test]
    fn serde_goes_through_the_parser() {
        let n: NhsNumber = serde_json::from_str("\"943 476 5919\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"9434765919\"");
        assert!(serde_json::from_str::<NhsNumber>("\"9434765918\"").is_err());
    }

    /// Every nine-digit prefix has at most one valid completion, and a single changed digit in
    /// a valid number is always caught (the property modulus 11 is chosen for).
    #[test]
    fn single_digit_errors_are_always_detected() {
        let valid = "9434765919";
        for pos in 0..10 {
            for d in b'0'..=b'9' {
                let mut bytes = valid.as_bytes().to_vec();
                if bytes[pos] == d {
                    continue;
                }
                bytes[pos] = d;
                let changed = String::from_utf8(bytes).unwrap();
                assert!(NhsNumber::parse(&changed).is_err(), "{changed} accepted");
            }
        }
    }
}
