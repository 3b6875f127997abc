//! A service of your own that serves handoff's API beside its own routes, in one actix-web
//! app: handoff's routes come from `handoff_http::configure`, yours are added as usual.
//!
//! `cargo run -p handoff --example mount_routes` opens a SQLite file in a temporary directory,
//! creates an application, serves on a free port of 127.0.0.1, calls one route of each, prints
//! what it got and stops. It exits non-zero when an answer is not the expected one (CI runs it).

use std::error::Error;
use std::sync::Arc;

use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{App, HttpResponse, HttpServer, web};
use handoff::{Config, load_keyring, open_store, services};
use handoff_http::{AppState, Limits};
use handoff_token::JwtShareTokens;

/// One of the embedding service's own routes.
async fn own_status() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"service": "acme-onboarding", "ok": true}))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::temp_dir().join(format!("handoff_example_{}", std::process::id()));
    let config = Config {
        // Keys are kept in the database, sealed with a key-encryption key from a file beside it.
        key_file: Some(dir.join(handoff::config::KEY_FILE_NAME)),
        ..Config::new(format!("sqlite:{}?mode=rwc", dir.join("handoff.db").display()))
    };
    let result = run(&config).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(config: &Config) -> Result<(), Box<dyn Error>> {
    // handoff's store, migrated, its token keys, and its services.
    let store = open_store(config).await?;
    let tokens = Arc::new(JwtShareTokens::new(load_keyring(config, &store).await?));
    let services = services(&store, "https://verify.acme.test", tokens);
    let (_, key) = services.applications.create_application("Acme").await?;
    let state = AppState {
        services,
        readiness: Arc::new(store.clone()),
        limits: Limits::default(),
        heavy: Default::default(),
        metrics: None,
        console: None,
        rate_limiter: None,
        public_url: None,
        federation: None,
    };

    // One app: your routes first, then handoff's (its fallback answers unknown paths).
    let server = HttpServer::new(move || {
        App::new()
            // The request deadline and the no-store/nosniff headers of every answer.
            .wrap(actix_web::middleware::from_fn(handoff_http::deadline))
            .wrap(handoff_http::security_headers())
            // handoff's routes are declared with a trailing slash; this lets clients omit it.
            .wrap(NormalizePath::new(TrailingSlash::Always))
            .route("/acme/status/", web::get().to(own_status))
            .configure(handoff_http::configure(state.clone()))
    })
    .workers(1)
    .bind("127.0.0.1:0")?;
    let base = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    let running = tokio::spawn(server);

    let client = reqwest::Client::new();
    let own = client.get(format!("{base}/acme/status/")).send().await?;
    assert!(own.status() == 200, "GET /acme/status/ is the service's own route");
    println!("ok   GET /acme/status/ is the service's own route");
    let workflows = client
        .get(format!("{base}/v3/workflows/"))
        .header("x-api-key", key.reveal())
        .send()
        .await?;
    assert!(workflows.status() == 200, "GET /v3/workflows/ is handoff's, with the key");
    println!("ok   GET /v3/workflows/ is handoff's, with the key");
    let anonymous = client.get(format!("{base}/v3/workflows/")).send().await?;
    let body: serde_json::Value = anonymous.json().await?;
    assert!(
        body["code"] == "authentication_failed",
        "GET /v3/workflows/ without a key is handoff's 403"
    );
    println!("ok   GET /v3/workflows/ without a key is handoff's 403");

    handle.stop(true).await;
    running.await??;
    Ok(())
}
