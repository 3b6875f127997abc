//! `vendor_data`: the caller's own reference for the person or company behind a session.

use std::fmt;

/// A validated `vendor_data`: 1 to 1,024 characters, no control characters.
///
/// Entities are matched on [`VendorData::key`], so `Ana-01` and `ana-01` name the same User.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VendorData(String);

/// The longest `vendor_data` accepted, in characters.
pub const MAX_VENDOR_DATA_CHARS: usize = 1024;

impl VendorData {
    /// Parses a `vendor_data`, saying in one sentence what is wrong when it is refused.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let chars = raw.chars().count();
        if chars == 0 {
            return Err("vendor_data must not be empty.");
        }
        if chars > MAX_VENDOR_DATA_CHARS {
            return Err("vendor_data must be at most 1024 characters.");
        }
        if raw.chars().any(char::is_control) {
            return Err("vendor_data must not contain control characters.");
        }
        Ok(Self(raw.to_owned()))
    }

    /// The text as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive matching key (Unicode lower case).
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Debug for VendorData {
    // vendor_data often carries an email or a customer number: keep it out of debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VendorData({} chars)", self.0.chars().count())
    }
}
