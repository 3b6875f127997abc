//! `vendor_data`: the caller's own reference for the person or company behind a session.

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use unicode_script::{Script, UnicodeScript};

/// A validated `vendor_data`: 1 to 1,024 characters; no control characters, no invisible
/// formatting characters (bidi controls, zero-width characters: Unicode's `Cf`), no
/// default-ignorable code points (the Hangul filler, variation selectors) and no white space
/// but the plain space; not `.` or `..`, which no path can name.
///
/// Entities are matched on [`VendorData::key`], so `Ana-01` and `ana-01` name the same User,
/// and so do spellings that differ only by Unicode normalization, by spaces at either end, or
/// by a letter of another script that looks like a Latin one (a Cyrillic `а` in `аna-01`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VendorData(String);

/// The version of [`VendorData::key`]'s rule: entities keyed under an older one are re-keyed
/// when a server starts. Version 1 was plain lower case; 2, NFKC and lower case; 3, NFKC and
/// full case folding; 4 adds trimming and the cross-script confusables.
pub const KEY_VERSION: i32 = 4;

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
            .any(|c| c.general_category() == GeneralCategory::Format || is_default_ignorable(c))
        {
            return Err(
                "vendor_data must not contain invisible characters (bidi controls, zero-width characters, fillers).",
            );
        }
        if raw.chars().any(|c| c.is_whitespace() && c != ' ') {
            return Err("vendor_data must not contain white space other than the plain space.");
        }
        if raw == "." || raw == ".." {
            return Err("vendor_data must not be . or .. (no path can name it).");
        }
        Ok(Self(raw.to_owned()))
    }

    /// The ranges of characters [`VendorData::parse`] refuses (control and format
    /// characters), for documents that describe it (the OpenAPI pattern).
    pub fn refused_ranges() -> Vec<(char, char)> {
        let refused = |c: char| {
            c.is_control()
                || c.general_category() == GeneralCategory::Format
                || is_default_ignorable(c)
                || (c.is_whitespace() && c != ' ')
        };
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
        let normalized: String = raw.trim_matches(' ').nfkc().collect();
        let folded: String = caseless::default_case_fold_str(&normalized).nfkc().collect();
        // A letter of another script that looks like a Latin one is that Latin letter (UTS
        // #39's skeleton, for those letters only: digits and Latin letters keep their
        // identity, so `user1` and `userl` stay two names).
        let mapped: String = folded
            .chars()
            .flat_map(|c| {
                let own = matches!(c.script(), Script::Latin | Script::Common | Script::Inherited);
                let skeleton: String = if own {
                    c.to_string()
                } else {
                    unicode_security::skeleton(&c.to_string()).collect()
                };
                if !own && skeleton.chars().all(|m| m.script() == Script::Latin) {
                    skeleton.chars().collect::<Vec<_>>()
                } else {
                    vec![c]
                }
            })
            .collect();
        caseless::default_case_fold_str(&mapped).nfkc().collect()
    }
}

/// Unicode's `Default_Ignorable_Code_Point`: characters that render as nothing.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        u32::from(c),
        0xAD | 0x34F
            | 0x61C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
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
        assert_eq!(key("\u{3a3}\u{399}\u{3a3}\u{3a5}\u{3a6}\u{39f}\u{3c2}"), key("σισυφοσ"));
        assert_eq!(key("\u{fb01}le-3"), key("FILE-3"));
        // Different names stay different.
        assert_ne!(key("ana-01"), key("ana-02"));
        // Spaces at either end, and look-alike letters of other scripts.
        assert_eq!(key(" ana-01 "), key("ana-01"));
        assert_eq!(key("\u{430}na-01"), key("ana-01"), "Cyrillic a");
        assert_eq!(key("\u{410}NA-01"), key("ana-01"), "Cyrillic A");
        assert_eq!(key("J\u{3bf}hn"), key("john"), "Greek omicron");
        // Digits and Latin letters keep their identity; a non-Latin name stays itself.
        assert_ne!(key("user1"), key("userl"));
        assert_ne!(key("acct-10"), key("acct-lO"));
        assert_eq!(key("田中-01"), "田中-01");
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
        for raw in [
            "ana\u{3164}01",   // Hangul filler
            "ana-01\u{a0}",    // no-break space
            "ana\u{3000}01",   // ideographic space
            "ana\u{fe0f}01",   // variation selector
            "\u{e0061}ana-01", // tag
            ".",
            "..",
        ] {
            assert!(VendorData::parse(raw).is_err(), "{raw:?}");
        }
        assert!(VendorData::parse("...").is_ok());
        let refused = VendorData::refused_ranges();
        for c in ['\u{3164}', '\u{a0}', '\u{fe0f}'] {
            assert!(refused.iter().any(|(a, b)| (*a..=*b).contains(&c)), "{c:?}");
        }
        assert!(!refused.iter().any(|(a, b)| (*a..=*b).contains(&' ')));
        assert!(VendorData::parse("ana\u{7}").is_err(), "control characters too");
    }
}
