//! `vendor_data`: the caller's own reference for the person or company behind a session.

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// A validated `vendor_data`: 1 to 1,024 characters, no control characters and no invisible
/// formatting characters (bidi controls, zero-width characters: Unicode's `Cf`).
///
/// Entities are matched on [`VendorData::key`], so `Ana-01` and `ana-01` name the same User,
/// and so do spellings that differ only by Unicode normalization.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VendorData(String);

/// The version of [`VendorData::key`]'s rule: entities keyed under an older one are re-keyed
/// when a server starts. Version 1 was plain lower case; 2, NFKC and lower case.
pub const KEY_VERSION: i32 = 3;

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
        if raw
            .chars()
            .any(|c| c.general_category() == GeneralCategory::Format)
        {
            return Err(
                "vendor_data must not contain invisible formatting characters (bidi controls, zero-width characters).",
            );
        }
        Ok(Self(raw.to_owned()))
    }

    /// The ranges of characters [`VendorData::parse`] refuses (control and format
    /// characters), for documents that describe it (the OpenAPI pattern).
    pub fn refused_ranges() -> Vec<(char, char)> {
        let refused = |c: char| c.is_control() || c.general_category() == GeneralCategory::Format;
        let mut ranges: Vec<(char, char)> = Vec::new();
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            if !refused(c) {
                continue;
            }
            match ranges.last_mut() {
                Some((_, end)) if u32::from(*end) + 1 == u32::from(c) => *end = c,
                _ => ranges.push((c, c)),
            }
        }
        ranges
    }

    /// The text as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The matching key: compatibility-normalized (NFKC), case-folded with Unicode's full
    /// default case folding, and normalized again, so that case, the Kelvin sign, `ß`/`ss`,
    /// final sigma, full-width letters and composed or decomposed accents do not make two
    /// names of one person.
    pub fn key(&self) -> String {
        Self::key_of(&self.0)
    }

    /// [`VendorData::key`] of any stored text, valid under today's rules or not (re-keying
    /// rows written under older ones).
    pub fn key_of(raw: &str) -> String {
        let normalized: String = raw.nfkc().collect();
        caseless::default_case_fold_str(&normalized)
            .nfkc()
            .collect()
    }
}

impl fmt::Debug for VendorData {
    // vendor_data often carries an email or a customer number: keep it out of debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VendorData({} chars)", self.0.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> String {
        VendorData::parse(raw).unwrap().key()
    }

    #[test]
    fn spellings_of_one_name_share_a_key() {
        // The Kelvin sign (U+212A) is a K.
        assert_eq!(key("\u{212A}im-42"), key("kim-42"));
        // Composed and decomposed accents.
        assert_eq!(key("Jos\u{e9}"), key("Jose\u{301}"));
        // Full-width letters and digits.
        assert_eq!(key("\u{ff21}na-01"), key("ana-01"));
        assert_eq!(key("ANA-01"), "ana-01");
        // Full case folding, not lower case: ß is ss, ς is σ, ﬁ is fi.
        assert_eq!(key("Stra\u{df}e-7"), key("STRASSE-7"));
        assert_eq!(
            key("\u{3a3}\u{399}\u{3a3}\u{3a5}\u{3a6}\u{39f}\u{3c2}"),
            key("σισυφοσ")
        );
        assert_eq!(key("\u{fb01}le-3"), key("FILE-3"));
        // Different names stay different.
        assert_ne!(key("ana-01"), key("ana-02"));
    }

    #[test]
    fn invisible_formatting_characters_are_refused() {
        for raw in [
            "ana\u{200b}01",         // zero-width space
            "ana\u{200d}01",         // zero-width joiner
            "\u{202e}10-ana",        // right-to-left override
            "ana\u{2066}01\u{2069}", // isolates
            "\u{feff}ana",           // byte-order mark
            "ana\u{ad}01",           // soft hyphen
        ] {
            assert!(VendorData::parse(raw).is_err(), "{raw:?}");
        }
        assert!(VendorData::parse("Ana María-01").is_ok());
        assert!(
            VendorData::parse("ana\u{7}").is_err(),
            "control characters too"
        );
    }
}
