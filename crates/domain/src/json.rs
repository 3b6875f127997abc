//! JSON objects read as ordered `(key, raw value)` pairs, so that recorded engine data is kept
//! byte for byte and key order survives every view derived from it; and what such text is
//! checked for besides (whitespace between tokens, numbers a reader can hold).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON object as its members in document order, each value kept as the raw text it arrived in.
#[derive(Debug)]
pub struct RawObject(pub Vec<(String, Box<RawValue>)>);

impl RawObject {
    /// Parses a JSON object; anything else (an array, a number, invalid JSON) is an error.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The raw value of the first member named `key`.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
    }

    /// The first key that appears more than once, if any.
    pub fn duplicate_key(&self) -> Option<&str> {
        let mut seen = std::collections::HashSet::with_capacity(self.0.len());
        self.0.iter().map(|(k, _)| k.as_str()).find(|k| !seen.insert(*k))
    }

    /// Writes the object back as compact JSON, leaving out the members named in `skip`.
    /// Values are copied as raw text, so they are byte-for-byte what was parsed.
    pub fn to_json_without(&self, skip: &[&str]) -> String {
        let mut out = String::with_capacity(
            self.0.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum::<usize>() + 2,
        );
        out.push('{');
        let mut first = true;
        for (key, value) in &self.0 {
            if skip.contains(&key.as_str()) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            // Serializing a `str` cannot fail.
            out.push_str(&serde_json::to_string(key).unwrap_or_default());
            out.push(':');
            out.push_str(value.get());
        }
        out.push('}');
        out
    }
}

/// Removes the whitespace between JSON tokens, leaving every token — strings with their escapes,
/// numbers as written — byte for byte. The input must be valid JSON.
pub fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
}

/// Whether every number in the JSON `text` is one a reader can hold (within a double's range:
/// `1e999999` is valid JSON grammar, yet no client could read it back); false for text that is
/// not JSON. Read without building the values.
pub fn numbers_in_range(text: &str) -> bool {
    serde_json::from_str::<Checked>(text).is_ok()
}

/// A JSON value read to its end, each number parsed as a reader would, nothing kept.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CheckedVisitor;

        impl<'de> Visitor<'de> for CheckedVisitor {
            type Value = Checked;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_unit<E>(self) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
                while seq.next_element::<Checked>()?.is_some() {}
                Ok(Checked)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
                while map.next_key::<de::IgnoredAny>()?.is_some() {
                    map.next_value::<Checked>()?;
                }
                Ok(Checked)
            }
        }

        deserializer.deserialize_any(CheckedVisitor)
    }
}

impl<'de> serde::Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = RawObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push((key, value));
                }
                Ok(RawObject(members))
            }
        }

        deserializer.deserialize_map(ObjectVisitor).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_raw_values() {
        let obj = RawObject::parse(r#"{"z": 1.50, "node_id": "n", "a": [1, 2]}"#).unwrap();
        assert_eq!(obj.to_json_without(&["node_id"]), r#"{"z":1.50,"a":[1, 2]}"#);
    }

    #[test]
    fn compact_keeps_tokens_verbatim() {
        let input = "{ \"a b\" : [ 1.50 , \"x \\\" y\" ],\n\t\"c\": {\"d\": 1e2} }";
        assert_eq!(compact(input), "{\"a b\":[1.50,\"x \\\" y\"],\"c\":{\"d\":1e2}}");
    }

    #[test]
    fn finds_duplicate_keys() {
        let obj = RawObject::parse(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
        assert_eq!(obj.duplicate_key(), Some("a"));
        assert_eq!(RawObject::parse(r#"{"a": 1}"#).unwrap().duplicate_key(), None);
    }

    #[test]
    fn numbers_out_of_a_doubles_range_are_found_at_any_depth() {
        for text in [
            r#"{"a":1e999999}"#,
            r#"{"a":[1,{"b":-1e400}]}"#,
            r#"[0.5,"x",1e309]"#,
            r#"{"a":1"#,
            "1e999999",
        ] {
            assert!(!numbers_in_range(text), "{text}");
        }
        for text in [
            r#"{"a":1.7976931348623157e308,"b":[-5e-324,18446744073709551615,-9223372036854775808]}"#,
            r#"{"s":"1e999999 \" \u00e9","t":true,"f":false,"n":null,"o":{},"l":[]}"#,
            "123456789012345678901234567890",
        ] {
            assert!(numbers_in_range(text), "{text}");
        }
    }

    #[test]
    fn refuses_non_objects() {
        assert!(RawObject::parse("[1]").is_err());
        assert!(RawObject::parse("1").is_err());
    }
}
