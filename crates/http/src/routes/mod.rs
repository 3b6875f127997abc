//! The route table: which path and method reach which handler.

pub(crate) mod corrections;
pub(crate) mod entities;
pub(crate) mod entity_admin;
pub(crate) mod health;
pub(crate) mod lists;
pub(crate) mod paging;
pub(crate) mod report;
pub(crate) mod reviews;
pub(crate) mod session_list;
pub(crate) mod sessions;
pub(crate) mod sharing;
pub(crate) mod webhooks;
pub(crate) mod workflows;

use actix_web::middleware::from_fn;
use actix_web::{Resource, web};

use crate::auth::authenticate;
use crate::heavy::heavy;
use crate::{method_not_allowed, not_found};

/// `GET /openapi.json`.
async fn openapi_json() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().content_type("application/json").body(crate::openapi::document())
}

/// A resource whose other methods answer 405 JSON.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    // Declared with a trailing slash: the server's `NormalizePath` adds one to every request.
    cfg.service(resource("/health/").route(web::get().to(health::health)))
        .service(resource("/system/healthcheck/").route(web::get().to(health::health)))
        .service(resource("/openapi.json/").route(web::get().to(openapi_json)))
        .service(resource("/.well-known/jwks.json/").route(web::get().to(sharing::jwks)))
        .service(
            resource(crate::federation::REDEMPTIONS_PATH)
                .route(web::post().to(crate::federation::redemptions)),
        )
        .service(
            resource("/session/{session_token}/").route(web::get().to(crate::pages::session_page)),
        )
        .service(
            web::scope("/console")
                .wrap(from_fn(crate::console::console_gate))
                .service(resource("/").route(web::get().to(crate::console::index)))
                .service(resource("/sign-in/").route(web::post().to(crate::console::sign_in)))
                .service(
                    resource("/sign-in/reviewer/")
                        .route(web::post().to(crate::console::sign_in_reviewer)),
                )
                .service(resource("/account/").route(web::get().to(crate::console::account)))
                .service(
                    resource("/bulk-approve/")
                        .route(web::get().to(crate::console::bulk_confirm))
                        .route(web::post().to(crate::console::bulk_approve)),
                )
                .service(
                    resource("/sessions/{session_id}/reveal/")
                        .route(web::post().to(crate::console::reveal)),
                )
                .service(
                    resource("/sessions/{session_id}/assign/")
                        .route(web::post().to(crate::console::assign)),
                )
                .service(
                    resource("/account/time-zone/")
                        .route(web::post().to(crate::console::set_time_zone)),
                )
                .service(
                    resource("/account/api-keys/")
                        .route(web::post().to(crate::console::set_api_keys)),
                )
                .service(
                    resource("/account/password/")
                        .route(web::post().to(crate::console::change_password)),
                )
                .service(resource("/sign-out/").route(web::post().to(crate::console::sign_out)))
                .service(
                    resource("/sessions/{session_id}/")
                        .wrap(from_fn(heavy))
                        .route(web::get().to(crate::console::session)),
                )
                .service(
                    resource("/sessions/{session_id}/review/")
                        .route(web::post().to(crate::console::review)),
                )
                .service(
                    resource("/sessions/{session_id}/share/")
                        .route(web::post().to(crate::console::share)),
                )
                .service(
                    resource("/sessions/{session_id}/shares/{jti}/revoke/")
                        .route(web::post().to(crate::console::revoke)),
                )
                .default_service(web::to(not_found)),
        )
        .service(resource("/assets/handoff.css/").route(web::get().to(crate::pages::stylesheet)))
        .service(
            web::scope("/v3")
                .wrap(from_fn(authenticate))
                .service(
                    resource("/workflows/")
                        .route(web::post().to(workflows::create))
                        .route(web::get().to(workflows::list)),
                )
                .service(
                    resource("/workflows/{workflow_id}/")
                        .route(web::get().to(workflows::get))
                        .route(web::patch().to(workflows::update))
                        .route(web::delete().to(workflows::delete)),
                )
                .service(resource("/session/").route(web::post().to(sessions::create)))
                .service(
                    resource("/session/import-shared/")
                        .route(web::post().to(sharing::import_shared)),
                )
                .service(
                    resource("/session/import-shared/preview/")
                        .route(web::post().to(sharing::preview)),
                )
                .service(
                    resource("/session/{session_id}/share/").route(web::post().to(sharing::share)),
                )
                .service(
                    resource("/session/{session_id}/shares/").route(web::get().to(sharing::ledger)),
                )
                .service(
                    resource("/session/{session_id}/shares/{jti}/revoke/")
                        .route(web::post().to(sharing::revoke)),
                )
                .service(
                    resource("/session/{session_id}/decision/")
                        .wrap(from_fn(heavy))
                        .route(web::get().to(sessions::decision_v3))
                        .route(web::put().to(sessions::record_results)),
                )
                .service(
                    resource("/session/{session_id}/update-status/")
                        .route(web::patch().to(sessions::update_status)),
                )
                .service(
                    resource("/session/{session_id}/generate-pdf/")
                        .wrap(from_fn(heavy))
                        .route(web::get().to(report::generate_pdf)),
                )
                .service(
                    resource("/session/{session_id}/update-data/")
                        .route(web::patch().to(corrections::update_data)),
                )
                .service(
                    resource("/session/{session_id}/update-poa-data/")
                        .route(web::patch().to(corrections::update_poa_data)),
                )
                .service(
                    resource("/session/{session_id}/delete/")
                        .route(web::delete().to(sessions::delete)),
                )
                .service(resource("/sessions/").route(web::get().to(session_list::list)))
                .service(
                    resource("/sessions/delete/").route(web::post().to(session_list::delete_many)),
                )
                .service(
                    resource("/sessions/{session_id}/reviews/")
                        .route(web::get().to(reviews::list))
                        .route(web::post().to(reviews::create)),
                )
                .service(
                    resource("/webhook/destinations/")
                        .route(web::post().to(webhooks::create))
                        .route(web::get().to(webhooks::list)),
                )
                .service(
                    resource("/webhook/destinations/{destination_id}/")
                        .route(web::get().to(webhooks::get))
                        .route(web::patch().to(webhooks::update))
                        .route(web::delete().to(webhooks::delete)),
                )
                .service(
                    resource("/webhook/destinations/{destination_id}/rotate-secret/")
                        .route(web::post().to(webhooks::rotate_secret)),
                )
                .service(
                    resource("/webhook/destinations/{destination_id}/deliveries/")
                        .route(web::get().to(webhooks::deliveries)),
                )
                .service(
                    resource(
                        "/webhook/destinations/{destination_id}/deliveries/{delivery_id}/resend/",
                    )
                    .route(web::post().to(webhooks::resend)),
                )
                .service(resource("/users/").route(web::get().to(entity_admin::list_users)))
                .service(
                    resource("/users/create/").route(web::post().to(entity_admin::create_user)),
                )
                .service(
                    resource("/users/delete/").route(web::post().to(entity_admin::delete_users)),
                )
                .service(
                    resource("/businesses/").route(web::get().to(entity_admin::list_businesses)),
                )
                .service(
                    resource("/businesses/create/")
                        .route(web::post().to(entity_admin::create_business)),
                )
                .service(
                    resource("/businesses/delete/")
                        .route(web::post().to(entity_admin::delete_businesses)),
                )
                .service(
                    resource("/users/{vendor_data}/")
                        .route(web::get().to(entities::user))
                        .route(web::patch().to(entity_admin::update_user)),
                )
                .service(
                    resource("/users/{vendor_data}/update-status/")
                        .route(web::patch().to(entities::update_user_status)),
                )
                .service(
                    resource("/businesses/{vendor_data}/")
                        .route(web::get().to(entities::business))
                        .route(web::patch().to(entity_admin::update_business)),
                )
                .service(
                    resource("/businesses/{vendor_data}/update-status/")
                        .route(web::patch().to(entities::update_business_status)),
                )
                .service(
                    resource("/lists/")
                        .route(web::get().to(lists::list))
                        .route(web::post().to(lists::create)),
                )
                .service(
                    resource("/lists/{list_uuid}/")
                        .route(web::get().to(lists::get))
                        .route(web::patch().to(lists::update))
                        .route(web::delete().to(lists::delete)),
                )
                .service(
                    resource("/lists/{list_uuid}/entries/")
                        .route(web::get().to(lists::entries))
                        .route(web::post().to(lists::create_entry)),
                )
                .service(
                    resource("/lists/{list_uuid}/entries/{entry_uuid}/")
                        .route(web::delete().to(lists::delete_entry)),
                )
                .service(resource("/blocklist/add/").route(web::post().to(lists::blocklist_add)))
                .service(
                    resource("/blocklist/remove/").route(web::post().to(lists::blocklist_remove)),
                )
                .default_service(web::to(not_found)),
        )
        .service(
            web::scope("/v2")
                .wrap(from_fn(authenticate))
                .service(
                    resource("/session/{session_id}/decision/")
                        .wrap(from_fn(heavy))
                        .route(web::get().to(sessions::decision_v2)),
                )
                .default_service(web::to(not_found)),
        )
        .default_service(web::to(not_found));
}
