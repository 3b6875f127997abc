//! Reading JSON bodies: media type, size limit, UTF-8 and shape, each refused with the contract's
//! JSON error (415, 413, 400) before any handler runs.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use handoff_domain::ValidationErrors;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// Which size limit applies to a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLimit {
    /// Small control bodies: sessions, workflows, reviews, shares, imports.
    Small,
    /// Recorded results, which carry whole verification reports.
    Results,
    /// A session to create, which may carry a portrait image.
    Session,
}

/// Bodies of at least this many bytes are parsed on the blocking pool.
const PARSE_OFF_THE_WORKER_FROM: usize = 64 * 1024;

/// A request body type and the limit it is read under.
pub trait RequestBody: DeserializeOwned + Send + 'static {
    /// The limit.
    const LIMIT: BodyLimit = BodyLimit::Small;
}

/// A JSON body of type `T`, read under `T`'s limit.
pub struct JsonBody<T>(pub T);

impl<T: RequestBody> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limits =
            req.app_data::<web::Data<AppState>>().map(|state| state.limits).unwrap_or_default();
        let limit = match T::LIMIT {
            BodyLimit::Small => limits.small_body_bytes,
            BodyLimit::Results => limits.results_body_bytes,
            BodyLimit::Session => limits.session_body_bytes,
        };
        let body_timeout = limits.body_timeout;
        let checked = check_headers(req, limit);
        let mut payload = payload.take();
        // A guarded write's key is bound to this body: its digest is kept for the request.
        let keyed = crate::idempotency::requested(req).then(|| req.clone());
        Box::pin(async move {
            checked?;
            let read = async {
                let mut body = web::BytesMut::new();
                while let Some(chunk) = payload.next().await {
                    let chunk = chunk.map_err(|_| {
                        ApiError::invalid_field("body", "The body could not be read.")
                    })?;
                    if body.len() + chunk.len() > limit {
                        return Err(too_large(limit));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(body)
            };
            // A body trickled in slowly would hold its connection and worker indefinitely.
            let body = tokio::time::timeout(body_timeout, read).await.map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    format!("The body did not arrive within {} seconds.", body_timeout.as_secs()),
                )
            })??;
            if let Some(req) = keyed {
                use actix_web::HttpMessage;
                use sha2::Digest;
                let digest = sha2::Sha256::digest(&body);
                req.extensions_mut().insert(crate::idempotency::BodyDigest(digest.into()));
            }
            if body.len() < PARSE_OFF_THE_WORKER_FROM {
                return parse_json(&body).map(JsonBody);
            }
            // Megabytes of JSON would hold the worker's other requests for milliseconds.
            web::block(move || parse_json(&body))
                .await
                .map_err(|_| ApiError::internal())?
                .map(JsonBody)
        })
    }
}

fn check_headers(req: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    let content_type =
        req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "The body must be application/json.",
        ));
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    Ok(())
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("The body is larger than this endpoint's limit of {limit} bytes."),
    )
}

/// Parses a body as `T`, naming the offending field in `errors` when the shape is wrong.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::invalid_field("body", "The body is not valid UTF-8."))?;
    if text.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "body",
            "The body is empty; a JSON object is required.",
        ));
    }
    // Every body is an object; serde would otherwise read an array into a struct's fields in
    // order (`[null, null]` as an empty update).
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::invalid_field("body", "The body must be a JSON object."));
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| shape_error(&e))?;
    deserializer
        .end()
        .map_err(|e| ApiError::invalid_field("body", format!("Malformed JSON: {e}.")))?;
    Ok(value)
}

fn shape_error(error: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = error.inner();
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::invalid_field("body", format!("Malformed JSON: {inner}."));
    }
    let path = error.path().to_string();
    let message = in_json_terms(&strip_position(&inner.to_string()));
    // "missing field `x`" is reported at the parent; name the field itself.
    if let Some(field) =
        message.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`'))
    {
        let field = if path == "." { field.to_owned() } else { format!("{path}.{field}") };
        return ApiError::invalid(ValidationErrors::single(field, "This field is required."));
    }
    let field = if path == "." { "body".to_owned() } else { path };
    ApiError::invalid(ValidationErrors::single(field, sentence(&message)))
}

/// serde's message in the terms of JSON, never a Rust type: `expected struct FeatureBody`
/// becomes `expected a JSON object`, `u32` a whole number, a sequence an array.
fn in_json_terms(message: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut rest = message.split(' ').peekable();
    while let Some(word) = rest.next() {
        let next = rest.peek().copied().unwrap_or_default();
        let replaced = match (word, next) {
            ("struct" | "enum" | "tuple" | "newtype", _) if !next.is_empty() => {
                rest.next();
                let trailing: String =
                    next.chars().skip_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let shape =
                    if word == "enum" { "one of the allowed values" } else { "a JSON object" };
                // "expected struct X" reads "expected a JSON object".
                if words.last().is_some_and(|w| w == "a") {
                    words.pop();
                }
                format!("{shape}{trailing}")
            }
            ("map" | "map,", _) => word.replace("map", "object"),
            ("sequence" | "sequence,", _) => {
                if words.last().is_some_and(|w| w == "a") {
                    words.pop();
                    word.replace("sequence", "an array")
                } else {
                    word.replace("sequence", "array")
                }
            }
            _ => {
                let bare = word.trim_end_matches([',', '.']);
                let tail = &word[bare.len()..];
                match bare {
                    "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "usize"
                    | "isize" => format!("a whole number{tail}"),
                    "f32" | "f64" => format!("a number{tail}"),
                    "borrowed" if next.starts_with("string") => continue,
                    _ => word.to_owned(),
                }
            }
        };
        words.push(replaced);
    }
    words.join(" ")
}

/// serde_json appends " at line L column C"; the field name says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn sentence(message: &str) -> String {
    let mut s = message.to_owned();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// An integer as JSON may spell it: `3`, or `3.0` (JSON Schema's `integer` admits both).
pub(crate) fn whole(number: &serde_json::Number) -> Option<i64> {
    number.as_i64().or_else(|| {
        number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)
    })
}

/// Reads an optional integer member with [`whole`]; use with `#[serde(default)]`.
pub(crate) fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    match Option::<serde_json::Number>::deserialize(deserializer)? {
        None => Ok(None),
        Some(number) => {
            whole(&number).map(Some).ok_or_else(|| serde::de::Error::custom("must be an integer."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[expect(dead_code, reason = "a shape to parse into in tests; its fields are never read")]
    struct Shape {
        name: String,
        count: Option<i64>,
    }

    fn code_and_body(input: &str) -> serde_json::Value {
        parse_json::<Shape>(input.as_bytes()).unwrap_err().body()
    }

    #[test]
    fn shape_errors_speak_json_not_rust() {
        #[derive(Debug, Deserialize)]
        #[expect(dead_code, reason = "a shape to parse into; its fields are never read")]
        struct Feature {
            feature: String,
        }
        #[derive(Debug, Deserialize)]
        #[expect(dead_code, reason = "a shape to parse into; its fields are never read")]
        struct Workflow {
            features: Vec<Feature>,
            limit: Option<u32>,
        }
        let said =
            |input: &str| parse_json::<Workflow>(input.as_bytes()).unwrap_err().body().to_string();
        let bare = said(r#"{"features": ["OCR"]}"#);
        assert!(bare.contains("expected a JSON object"), "{bare}");
        assert!(!bare.contains("struct"), "{bare}");
        let not_a_list = said(r#"{"features": {"a": 1}}"#);
        assert!(not_a_list.contains("invalid type: object, expected an array"), "{not_a_list}");
        assert!(!not_a_list.contains("sequence") && !not_a_list.contains("map"), "{not_a_list}");
        let negative = said(r#"{"features": [], "limit": -1}"#);
        assert!(negative.contains("a whole number"), "{negative}");
        assert!(!negative.contains("u32"), "{negative}");
    }

    #[test]
    fn shape_errors_name_their_field() {
        assert_eq!(code_and_body("{}")["errors"]["name"][0], "This field is required.");
        let wrong = code_and_body(r#"{"name": 1}"#);
        assert!(wrong["errors"]["name"][0].as_str().unwrap().starts_with("invalid type"));
        let nested = code_and_body(r#"{"name": "a", "count": "x"}"#);
        assert!(nested["errors"]["count"].is_array());
        assert!(code_and_body("{").get("errors").unwrap()["body"].is_array());
        assert!(code_and_body(r#"{"name":"a"} x"#)["errors"]["body"].is_array());
        assert!(code_and_body("").get("errors").unwrap()["body"].is_array());
        assert_eq!(parse_json::<Shape>(b"\xff\xfe").unwrap_err().code(), "invalid_request");
        assert_eq!(code_and_body("[]")["code"], "invalid_request");
        // An array that would fill the struct's fields in order is not an object.
        assert_eq!(
            code_and_body(r#"["a", 1]"#)["errors"]["body"][0],
            "The body must be a JSON object."
        );
        assert_eq!(code_and_body(" 42")["errors"]["body"][0], "The body must be a JSON object.");
    }
}
