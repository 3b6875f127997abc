//! Didit's three webhook signatures, each a hex HMAC-SHA256 under the destination's secret:
//! `X-Signature` over the raw body; `X-Signature-V2` over the body re-encoded as Didit's
//! verifiers re-encode it (sorted keys, compact separators, UTF-8 unescaped, integer-valued
//! floats as integers, other floats as Python writes them); `X-Signature-Simple` over
//! `"{timestamp}:{session_id}:{status}:{webhook_type}"`.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The signature headers of one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signatures {
    /// `X-Signature`.
    pub raw: String,
    /// `X-Signature-V2`.
    pub v2: String,
    /// `X-Signature-Simple`.
    pub simple: String,
}

fn hmac_hex(secret: &[u8], message: &[u8]) -> String {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Signs a body (`body` is its exact bytes, `value` the same parsed).
pub fn sign(secret: &[u8], body: &[u8], value: &Value) -> Signatures {
    let field = |name: &str| match value.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let simple = format!(
        "{}:{}:{}:{}",
        field("timestamp"),
        field("session_id"),
        field("status"),
        field("webhook_type")
    );
    Signatures {
        raw: hmac_hex(secret, body),
        v2: hmac_hex(secret, canonical(value).as_bytes()),
        simple: hmac_hex(secret, simple.as_bytes()),
    }
}

/// The re-encoding `X-Signature-V2` signs: what
/// `json.dumps(shorten_floats(body), sort_keys=True, ensure_ascii=False, separators=(",", ":"))`
/// gives for the parsed body.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => out.push_str(&value.to_string()),
        Value::Number(number) => match (number.as_i64(), number.as_u64(), number.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&python_float(f)),
            _ => out.push_str(&number.to_string()),
        },
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            // Python sorts by code point, which is the byte order of UTF-8.
            let mut keys: Vec<&String> = members.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write(&members[key], out);
            }
            out.push('}');
        }
    }
}

/// A float as Didit's Python writes it: integer-valued ones as integers (`shorten_floats`),
/// others as `repr` does — the shortest digits that read back the same, in positional notation
/// from 1e-4 up to 1e16 and scientific (`1e-05`, `1.5e+16`) outside.
fn python_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e300 {
        // int(f) in Python: the exact integer, whatever its size.
        return format!("{f:.0}");
    }
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..16).contains(&exponent) {
        format!("{f}")
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_re_encoding_is_pythons() {
        let value: Value = serde_json::from_str(
            r#"{"b": 1, "a": {"z": [1.0, 2.5, 0.1], "y": "José Müller 日本"}, "c": null,
                "d": 98.0, "e": 0.00001, "f": 1.5e16, "g": 1e20, "h": 123.456, "i": -0.0001,
                "j": true, "k": "tab\tquote\"back\\slash\u0001"}"#,
        )
        .unwrap();
        assert_eq!(
            canonical(&value),
            r#"{"a":{"y":"José Müller 日本","z":[1,2.5,0.1]},"b":1,"c":null,"d":98,"e":1e-05,"f":15000000000000000,"g":100000000000000000000,"h":123.456,"i":-0.0001,"j":true,"k":"tab\tquote\"back\\slash\u0001"}"#
        );
        assert_eq!(python_float(1.5e-7), "1.5e-07");
        assert_eq!(python_float(2.5e16 + 0.5), "25000000000000000");
        assert_eq!(python_float(1.0e-4), "0.0001");
        assert_eq!(python_float(0.30000000000000004), "0.30000000000000004");
    }

    #[test]
    fn every_signature_covers_what_didit_says() {
        let value = json!({"timestamp": 1764480000, "session_id": "s-1", "status": "Approved",
            "webhook_type": "status.updated", "vendor_data": "José"});
        let body = serde_json::to_vec(&value).unwrap();
        let signed = sign(b"secret", &body, &value);
        assert_eq!(signed.raw, hmac_hex(b"secret", &body));
        assert_eq!(signed.v2, hmac_hex(b"secret", canonical(&value).as_bytes()));
        assert_eq!(signed.simple, hmac_hex(b"secret", b"1764480000:s-1:Approved:status.updated"));
        assert_ne!(sign(b"other", &body, &value), signed);
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
