//! The OpenAPI 3 document of the whole API, generated from the handlers' annotations and the
//! wire types, served at `GET /openapi.json` and kept in `docs/openapi.json`.

use std::sync::OnceLock;

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    corrections, entities, entity_admin, health, lists, report, reviews, session_list, sessions,
    sharing, webhooks, workflows,
};
use crate::wire;

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "handoff",
        description = "Share finished identity verifications (KYC and KYB sessions) between applications, Didit-compatible.",
        license(name = "Apache-2.0"),
    ),
    paths(
        health::health,
        workflows::create, workflows::list, workflows::get, workflows::update, workflows::delete,
        sessions::create, session_list::list, session_list::delete_many, reviews::list, reviews::create,
        sessions::decision_v3, sessions::record_results, sessions::decision_v2,
        sessions::update_status, corrections::update_data, corrections::update_poa_data,
        report::generate_pdf, sessions::delete,
        sharing::share, sharing::import_shared, sharing::preview, sharing::ledger, sharing::revoke,
        sharing::jwks,
        entities::user, entities::business, entities::update_user_status,
        entities::update_business_status, entity_admin::list_users, entity_admin::list_businesses,
        entity_admin::create_user, entity_admin::create_business, entity_admin::update_user,
        entity_admin::update_business, entity_admin::delete_users, entity_admin::delete_businesses,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete,
        webhooks::rotate_secret, webhooks::deliveries, webhooks::resend,
        lists::list, lists::create, lists::get, lists::update, lists::delete, lists::entries,
        lists::create_entry, lists::delete_entry, lists::blocklist_add, lists::blocklist_remove,
    ),
    components(schemas(wire::ErrorBody, wire::DecisionV2)),
    modifiers(&CommonAnswers),
)]
pub struct HandoffApi;

/// Adds what every authenticated operation shares: the `x-api-key` scheme and the error answers.
struct CommonAnswers;

const ERRORS: [(&str, &str); 10] = [
    ("400", "Invalid request (see `errors`), or a refusal such as `wrong_current_status`."),
    (
        "401",
        "API key wrong, malformed, revoked or expired; or share token invalid, expired or revoked.",
    ),
    (
        "403",
        "No API key sent; the key lacks the route's scope (`missing_scope`, `scope` names it), is \
         not accepted from this address or is limited to workflows; token for another \
         application, or already imported.",
    ),
    ("404", "Not found: ids of other applications do not exist."),
    ("405", "Method not allowed on this path."),
    ("413", "Body over the endpoint's limit."),
    ("415", "Body is not application/json."),
    ("429", "Rate limit exceeded; see Retry-After."),
    ("500", "Internal error."),
    ("503", "The database is unavailable."),
];

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let authenticated = !matches!(path.as_str(), "/health/" | "/.well-known/jwks.json");
            let operations: [&mut Option<Operation>; 5] =
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                if authenticated {
                    operation.security =
                        Some(vec![SecurityRequirement::new("api_key", Vec::<String>::new())]);
                }
                for (code, description) in ERRORS {
                    let applies = authenticated || matches!(code, "405" | "500" | "503");
                    if applies && !operation.responses.responses.contains_key(code) {
                        operation
                            .responses
                            .responses
                            .insert(code.to_owned(), error_response(description));
                    }
                }
            }
        }
    }
}

/// The document as pretty JSON, built once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document = serde_json::to_value(HandoffApi::openapi()).unwrap_or_default();
        let _missed = crate::constraints::tighten(&mut document);
        serde_json::to_string_pretty(&document).unwrap_or_else(|_| "{}".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_document_is_current() {
        let committed = include_str!("../../../docs/openapi.json");
        assert!(
            committed.trim_end() == document().trim_end(),
            "docs/openapi.json is out of date: run `cargo xtask openapi`"
        );
    }

    #[test]
    fn every_route_is_documented() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/health/",
            "/v3/workflows/",
            "/v3/workflows/{workflow_id}/",
            "/v3/session/",
            "/v3/session/{session_id}/decision/",
            "/v2/session/{session_id}/decision/",
            "/v3/session/{session_id}/update-status/",
            "/v3/session/{session_id}/delete/",
            "/v3/sessions/",
            "/v3/session/{session_id}/share/",
            "/v3/session/import-shared/",
            "/.well-known/jwks.json",
            "/v3/users/{vendor_data}/",
            "/v3/businesses/{vendor_data}/",
        ] {
            assert!(paths.contains_key(path), "{path} is missing");
        }
        assert_eq!(doc["components"]["securitySchemes"]["api_key"]["name"], "x-api-key");
    }
}
