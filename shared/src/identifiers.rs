//! Small checked identifiers and text fields: ODS codes, LAs' case references, names and phone
//! numbers. Each type is made only by its parser, and serde goes through the same parser.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Why a field's text was refused: a short reason the API reports next to the field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FieldError(pub String);

macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $parse:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $name(String);

        impl $name {
            /// Checks `input` and makes the value, or says what is wrong with it.
            pub fn parse(input: &str) -> Result<Self, FieldError> {
                let check: fn(&str) -> Result<String, FieldError> = $parse;
                check(input).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

checked_string!(
    /// An Organisation Data Service code (LAs, trusts, care settings): 3 to 12 letters and
    /// digits, held in upper case. It appears in store keys, so nothing else is allowed.
    OdsCode,
    |input| {
        let code = input.trim().to_ascii_uppercase();
        if !(3..=12).contains(&code.len()) {
            return Err(FieldError(format!("ODS code must have 3 to 12 characters; found {}", code.len())));
        }
        if !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(FieldError("ODS code may hold only letters and digits".into()));
        }
        Ok(code)
    }
);

checked_string!(
    /// An LA's own reference for a case, given back to it in every alert about the case. 1 to 64
    /// of letters, digits, `-`, `_`, `.`, `/` is refused because it appears in store keys.
    CaseRef,
    |input| {
        let r = input.trim();
        if r.is_empty() || r.len() > 64 {
            return Err(FieldError("case reference must have 1 to 64 characters".into()));
        }
        if !r.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return Err(FieldError("case reference may hold only letters, digits, '-', '_' and '.'".into()));
        }
        Ok(r.to_string())
    }
);

checked_string!(
    /// A name for people to read (an organisation's, a user's): 1 to 200 characters, no control
    /// characters.
    DisplayName,
    |input| {
        let name = input.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(FieldError("name must have 1 to 200 characters".into()));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldError("name may not hold control characters".into()));
        }
        Ok(name.to_string())
    }
);

checked_string!(
    /// A phone number a clinician can dial: digits with optional `+`, spaces, hyphens and
    /// brackets; 6 to 32 characters.
    PhoneNumber,
    |input| {
        let phone = input.trim();
        if !(6..=32).contains(&phone.len()) {
            return Err(FieldError("phone number must have 6 to 32 characters".into()));
        }
        if !phone.bytes().all(|b| b.is_ascii_digit() || b" +-()".contains(&b)) {
            return Err(FieldError("phone number may hold only digits, spaces, '+', '-', '(' and ')'".into()));
        }
        if phone.bytes().filter(u8::is_ascii_digit).count() < 6 {
            return Err(FieldError("phone number must have at least 6 digits".into()));
        }
        Ok(phone.to_string())
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ods_codes_are_upper_cased_and_checked() {
        assert_eq!(OdsCode::parse(" rxa ").unwrap().as_str(), "RXA");
        assert!(OdsCode::parse("AB").is_err());
        assert!(OdsCode::parse("RXA/1").is_err());
        assert!(OdsCode::parse("ABCDEFGHIJKLM").is_err());
    }

    #[test]
    fn case_refs_cannot_escape_a_store_key() {
        assert_eq!(CaseRef::parse("CASE-1.a_b").unwrap().as_str(), "CASE-1.a_b");
        assert!(CaseRef::parse("a/b").is_err());
        assert!(CaseRef::parse("").is_err());
        assert!(CaseRef::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn names_refuse_control_characters_and_empty_text() {
        assert_eq!(
            DisplayName::parse(" Leeds City Council ").unwrap().as_str(),
            "Leeds City Council"
        );
        assert!(DisplayName::parse("  ").is_err());
        assert!(DisplayName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn phone_numbers_need_digits() {
        assert!(PhoneNumber::parse("0113 222 4401").is_ok());
        assert!(PhoneNumber::parse("+44 (0)113 222-4401").is_ok());
        assert!(PhoneNumber::parse("call us").is_err());
        assert!(PhoneNumber::parse("++++++").is_err());
    }
}
