//! Fuzz target: the request parsers — JSON bodies, recorded items, `vendor_data`, API keys —
//! must answer any input with a value or an error, never a panic.

#![no_main]

use handoff_domain::json::{RawObject, compact};
use handoff_domain::{ApiKey, FeatureItem, VendorData};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let _ = handoff_http::body::parse_json::<serde_json::Value>(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = VendorData::parse(text);
    let _ = ApiKey::presented(text);
    let readable = serde_json::from_str::<serde_json::Value>(text).is_ok();
    if let Ok(object) = RawObject::parse(text) {
        let _ = object.duplicate_key();
        let rewritten = object.to_json_without(&["node_id"]);
        // Raw values keep numbers as written; they read back wherever the original did.
        if readable {
            assert!(serde_json::from_str::<serde_json::Value>(&rewritten).is_ok(), "{rewritten}");
        }
        let compacted = compact(text);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&compacted).ok(),
            serde_json::from_str::<serde_json::Value>(text).ok()
        );
    }
    if let Ok(raw) = serde_json::from_str::<Box<RawValue>>(text)
        && let Ok(item) = FeatureItem::parse(&raw)
    {
        assert!(serde_json::from_str::<serde_json::Value>(item.v2_json().get()).is_ok());
    }
});
