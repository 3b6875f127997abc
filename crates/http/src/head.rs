//! The request head's limits, checked before routing: the method is one of a fixed set, the
//! target (path and query) and the headers are bounded, and no NUL is hidden in the path or
//! the query. Whatever is logged or counted of a request's method goes through
//! [`method_label`], so that a client cannot write its own text into a label or a log line.

use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;

use crate::error::ApiError;

/// The longest request target (path and query) answered; longer is 414 `uri_too_long`.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) answered; more is 431
/// `request_header_fields_too_large`. actix-web itself closes a head over 128 KiB or with
/// more than 96 headers with a bodiless 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The method as a label of a fixed set: the seven methods HTTP APIs use, `OTHER` for the rest.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Why a head is refused, if it is.
fn refusal(req: &ServiceRequest) -> Option<ApiError> {
    if method_label(req.method()) == "OTHER" {
        return Some(ApiError::method_not_allowed());
    }
    let target = req.uri().path_and_query().map_or(0, |target| target.as_str().len());
    if target > MAX_TARGET_BYTES {
        return Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("The request's path and query are longer than {MAX_TARGET_BYTES} bytes."),
        ));
    }
    let headers: usize =
        req.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if headers > MAX_HEADER_BYTES {
        return Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_header_fields_too_large",
            format!("The request's headers are larger than {MAX_HEADER_BYTES} bytes."),
        ));
    }
    if percent_decodes_to_nul(req.path()) {
        return Some(ApiError::route_not_found());
    }
    nul_in_query(req.query_string()).map(|name| {
        ApiError::invalid_field(&name, "This value must not contain the NUL character.")
    })
}

/// Whether `text` holds `%00`, a NUL once decoded.
fn percent_decodes_to_nul(text: &str) -> bool {
    text.contains("%00") || text.contains('\0')
}

/// The first query parameter whose name or value decodes to text with a NUL in it.
fn nul_in_query(query: &str) -> Option<String> {
    if !percent_decodes_to_nul(query) {
        return None;
    }
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        .map(|(name, _)| {
            if name.contains('\0') || name.is_empty() {
                "query".to_owned()
            } else {
                name.into_owned()
            }
        })
}

/// Refuses a head outside the limits with the contract's JSON error. Wrap the app in it,
/// inside the request log and the metrics so that they count what it refuses.
pub async fn head_limits(
    req: ServiceRequest, next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match refusal(&req) {
        Some(error) => {
            let response = error.error_response();
            Ok(req.into_response(response).map_into_right_body())
        }
        None => next.call(req).await.map(ServiceResponse::map_into_left_body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_label_is_one_of_eight() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let long = Method::from_bytes("X".repeat(60_000).as_bytes()).unwrap();
        assert_eq!(method_label(&long), "OTHER");
        assert_eq!(method_label(&Method::TRACE), "OTHER");
    }

    #[test]
    fn a_nul_in_the_query_names_its_parameter() {
        assert_eq!(nul_in_query("search=%00"), Some("search".to_owned()));
        assert_eq!(nul_in_query("page=1&search=a%00b"), Some("search".to_owned()));
        assert_eq!(nul_in_query("%00=1"), Some("query".to_owned()));
        assert_eq!(nul_in_query("search=a%2500"), None);
        assert_eq!(nul_in_query("search=ana"), None);
    }
}
