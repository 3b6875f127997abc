//! The operator's command line, run as the real binary against the test database.

use std::process::Command;

use serde_json::Value;

use handoff_testdb::{Backend, TestDatabase};

use crate::support::{TestApp, assert_error, on_both_backends, per_backend};

fn handoff(database_url: &str, args: &[&str]) -> (bool, Vec<Value>, String) {
    crate::support::handoff_command(database_url, args, &[])
}

on_both_backends!(operators_manage_applications_and_keys,);

async fn operators_manage_applications_and_keys(app: TestApp) {
    let url = app.db.url().to_owned();
    let (ok, lines, stderr) = handoff(&url, &["applications", "create", "--name", "Acme KYC"]);
    assert!(ok);
    assert!(stderr.starts_with("database: "), "the command names its database: {stderr}");
    assert_eq!(lines.len(), 1, "exactly one JSON line");
    let created = lines[0].as_object().unwrap();
    assert_eq!(created.keys().collect::<Vec<_>>(), ["application_id", "name", "api_key"]);
    assert_eq!(created["name"], "Acme KYC");
    let tenant = crate::support::Tenant {
        id: created["application_id"].as_str().unwrap().to_owned(),
        key: created["api_key"].as_str().unwrap().to_owned(),
    };
    assert_eq!(
        app.get("/v3/sessions/", &tenant).await.status.as_u16(),
        200,
        "the printed key works"
    );

    let (ok, lines, _) = handoff(&url, &["applications", "list"]);
    assert!(ok);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["application_id"], tenant.id.as_str());
    assert!(lines[0].get("api_key").is_none(), "keys are never listed");

    let (ok, lines, _) = handoff(&url, &["api-keys", "create", "--application", &tenant.id]);
    assert!(ok);
    let second = crate::support::Tenant {
        id: tenant.id.clone(),
        key: lines[0]["api_key"].as_str().unwrap().to_owned(),
    };
    let prefix = lines[0]["prefix"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/v3/sessions/", &second).await.status.as_u16(), 200);

    let revoke =
        || handoff(&url, &["api-keys", "revoke", "--application", &tenant.id, "--prefix", &prefix]);
    let (ok, lines, _) = revoke();
    assert!(ok, "{lines:?}");
    // Another process revoked it: on PostgreSQL the server, which kept the key, forgets it
    // when the database announces the change, moments after the commit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while app.get("/v3/sessions/", &second).await.status.as_u16() == 200
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_error(&app.get("/v3/sessions/", &second).await, 401, "authentication_failed");
    assert_eq!(
        app.get("/v3/sessions/", &tenant).await.status.as_u16(),
        200,
        "the other key still works"
    );

    let (ok, _, stderr) = revoke();
    assert!(!ok);
    assert!(stderr.contains("api key not found"), "{stderr}");
    let (ok, _, stderr) =
        handoff(&url, &["api-keys", "create", "--application", &uuid::Uuid::new_v4().to_string()]);
    assert!(!ok);
    assert!(stderr.contains("application not found"), "{stderr}");
    let (ok, _, _) = handoff(&url, &["applications", "create", "--name", ""]);
    assert!(!ok);
}

on_both_backends!(operators_make_named_scoped_keys,);

/// `api-keys create` with a name, scopes, workflows, addresses and an expiry makes a key that
/// holds just those; `api-keys list` shows every key of the application, never a secret; a bad
/// scope, address, expiry, workflow or name is refused and makes nothing.
async fn operators_make_named_scoped_keys(app: TestApp) {
    let owner = app.tenant("Owner").await;
    let workflow = app.workflow(&owner, "user").await;
    let url = app.db.url().to_owned();
    let create = |extra: &[&str]| {
        let mut args = vec!["api-keys", "create", "--application", owner.id.as_str()];
        args.extend_from_slice(extra);
        handoff(&url, &args)
    };
    let (ok, lines, stderr) = create(&[
        "--name",
        "Partner portal",
        "--scope",
        "sessions:read",
        "--scope",
        "reviews:write",
        "--workflow",
        &workflow,
        "--ip",
        "127.0.0.1",
        "--ip",
        "10.0.0.0/8",
        "--expires",
        "2099-01-01T00:00:00+02:00",
    ]);
    assert!(ok, "{stderr}");
    let key = crate::support::Tenant {
        id: owner.id.clone(),
        key: lines[0]["api_key"].as_str().unwrap().to_owned(),
    };
    let prefix = lines[0]["prefix"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/v3/sessions/", &key).await.status.as_u16(), 200);
    assert_error(&app.get("/v3/workflows/", &key).await, 403, "missing_scope");

    let (ok, lines, _) = handoff(&url, &["api-keys", "list", "--application", &owner.id]);
    assert!(ok);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0]["name"].is_null() && lines[0]["scopes"].is_null(), "the primary key");
    let mut named = lines[1].clone();
    assert!(named["created_at"].as_str().is_some());
    named.as_object_mut().unwrap().remove("created_at");
    assert_eq!(
        named,
        serde_json::json!({
            "prefix": prefix,
            "name": "Partner portal",
            "scopes": ["sessions:read", "reviews:write"],
            "workflows": [workflow],
            "ips": ["127.0.0.1/32", "10.0.0.0/8"],
            "expires_at": "2098-12-31T22:00:00+00:00",
            "revoked_at": null,
        })
    );
    assert!(!lines.iter().any(|l| l.to_string().contains(&key.key)), "no secret listed");

    let unknown_workflow = uuid::Uuid::new_v4().to_string();
    for (args, said) in [
        (vec!["--scope", "sessions:admin"], "not a scope"),
        (vec!["--ip", "10.0.0.0/40"], "not an address or CIDR block"),
        (vec!["--expires", "tomorrow"], "--expires"),
        (vec!["--expires", "2000-01-01T00:00:00Z"], "expires"),
        (vec!["--workflow", unknown_workflow.as_str()], "workflow not found"),
        (vec!["--name", " "], "name"),
    ] {
        let (ok, _, stderr) = create(&args);
        assert!(!ok, "{args:?}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
    }
    let (_, lines, _) = handoff(&url, &["api-keys", "list", "--application", &owner.id]);
    assert_eq!(lines.len(), 2, "nothing more was made");
}

/// Every command names its database on stderr, and one that cannot open it says why in one
/// line within a couple of seconds, with a non-zero exit and none of the driver's detail.
#[test]
fn an_unreachable_database_is_named_with_its_cause() {
    let admin = handoff_testdb::postgres_admin_url();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
    let mut cases = vec![(
        "postgres://postgres@127.0.0.1:1/handoff".to_owned(),
        "PostgreSQL at 127.0.0.1:1 refused the connection",
    )];
    if !handoff_testdb::skip(handoff_testdb::Backend::Postgres) {
        cases.push((format!("{base}/handoff_no_such_database"), "does not exist on PostgreSQL at"));
    }
    for (url, cause) in cases {
        let started = std::time::Instant::now();
        let (ok, lines, stderr) = handoff(&url, &["applications", "list"]);
        assert!(!ok && lines.is_empty(), "{stderr}");
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "{stderr}");
        let said: Vec<&str> = stderr.lines().collect();
        assert!(said[0].starts_with("database: PostgreSQL "), "{stderr}");
        assert_eq!(said.len(), 2, "the database, then one error line: {stderr}");
        assert!(said[1].starts_with("error: cannot open the database: "), "{stderr}");
        assert!(said[1].contains(cause), "{stderr}");
        assert!(!said[1].contains("line "), "no driver detail: {stderr}");
    }
    let (_, _, stderr) = handoff(&format!("{base}/handoff_no_such_database"), &["migrate"]);
    if stderr.contains("does not exist") {
        assert!(stderr.contains("createdb -h "), "{stderr}");
    }
}

/// `serve` on an address in use stops before it touches the database, and its one error line
/// names the setting to change.
#[test]
fn serve_on_a_port_in_use_names_bind_and_migrates_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = std::env::temp_dir().join(format!("handoff_bind_{}", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite:{}?mode=rwc", dir.join("handoff.db").display());
    let (ok, _, stderr) = handoff(&url, &["serve", "--bind", &address]);
    assert!(!ok, "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "error: cannot listen on {address} (set by --bind or HANDOFF_BIND): "
        )),
        "{stderr}"
    );
    assert!(last.contains("in use"), "{stderr}");
    assert!(!dir.exists(), "the database was not created: {stderr}");
    drop(taken);
}

/// Without `DATABASE_URL`, every command uses the same SQLite file whatever its working
/// directory: `$HOME/.local/share/handoff/handoff.db` (or `--data-dir`), and says so.
#[test]
fn the_default_database_does_not_depend_on_the_working_directory() {
    let home = std::env::temp_dir().join(format!("handoff_home_{}", uuid::Uuid::new_v4().simple()));
    let elsewhere = home.join("some/other/dir");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let run = |dir: &std::path::Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(args)
            .current_dir(dir)
            .env_remove("DATABASE_URL")
            .env_remove("HANDOFF_DATA_DIR")
            .env_remove("XDG_DATA_HOME")
            .env("HOME", &home)
            .env("HANDOFF_LOG", "error")
            .output()
            .unwrap()
    };
    let created = run(&home, &["applications", "create", "--name", "Acme"]);
    assert!(created.status.success());
    let listed = run(&elsewhere, &["applications", "list"]);
    let stdout = String::from_utf8_lossy(&listed.stdout);
    let stderr = String::from_utf8_lossy(&listed.stderr);
    let file = home.join(".local/share/handoff/handoff.db");
    assert_eq!(stderr.trim(), format!("database: SQLite {}", file.display()));
    assert!(stdout.contains("\"name\":\"Acme\""), "the same database: {stdout}");
    let pinned = run(
        &elsewhere,
        &["applications", "list", "--data-dir", home.join("pinned").to_str().unwrap()],
    );
    assert!(pinned.status.success());
    assert!(String::from_utf8_lossy(&pinned.stdout).is_empty(), "a fresh, empty database");
    assert!(home.join("pinned/handoff.db").exists());
    let _ = std::fs::remove_dir_all(&home);
}

/// The demo makes its own temporary database: a database named on its command line is
/// refused rather than ignored.
#[test]
fn the_demo_refuses_a_database_it_would_ignore() {
    for args in [
        ["demo", "--database-url", "sqlite:/tmp/handoff-not-used.db"],
        ["demo", "--data-dir", "/tmp/handoff-not-used"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(args)
            .env("HANDOFF_LOG", "error")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("do not apply to it"), "{args:?}: {stderr}");
    }
}

/// A `DATABASE_URL` that names no database, or PostgreSQL's own, is refused before anything
/// connects: handoff would create its tables in the maintenance database.
#[test]
fn the_maintenance_database_is_refused() {
    for (url, said) in [
        ("postgres://postgres@127.0.0.1:5432", "names no database"),
        ("postgres://postgres@127.0.0.1:5432/postgres", "maintenance database postgres"),
        ("postgres://postgres@127.0.0.1:5432/template1", "template database template1"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_handoff"))
            .arg("migrate")
            .env("DATABASE_URL", url)
            .env("HANDOFF_LOG", "error")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{url}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(said), "{url}: {stderr}");
        assert!(stderr.contains("createdb"), "{url}: says what to do: {stderr}");
    }
}

/// The data directory is created 0700 and the SQLite files 0600 even under `umask 000`; a
/// database file that others may read is warned about.
#[test]
fn the_sqlite_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let home =
        std::env::temp_dir().join(format!("handoff_umask_{}", uuid::Uuid::new_v4().simple()));
    let data = home.join("data/handoff");
    let run = |level: &str| {
        Command::new("sh")
            .args(["-c", "umask 000; exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_handoff"))
            .args(["applications", "create", "--name", "Acme", "--data-dir"])
            .arg(&data)
            .env_remove("DATABASE_URL")
            .env("HOME", &home)
            .env("HANDOFF_LOG", level)
            .output()
            .unwrap()
    };
    let created = run("error");
    assert!(created.status.success(), "{created:?}");
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&home.join("data")), 0o700, "its parent, created with it");
    for name in ["handoff.db", "handoff.db-wal", "handoff.db-shm", "key-encryption-key"] {
        let path = data.join(name);
        // The log files exist only while open, the key file once a key is sealed.
        if name != "handoff.db" && !path.exists() {
            continue;
        }
        assert_eq!(mode(&path), 0o600, "{name}");
    }
    std::fs::set_permissions(data.join("handoff.db"), std::fs::Permissions::from_mode(0o644))
        .unwrap();
    let warned = run("warn");
    let stderr = String::from_utf8_lossy(&warned.stderr);
    assert!(stderr.contains("readable by other users"), "{stderr}");
    let _ = std::fs::remove_dir_all(&home);
}

/// Migrations say once, at INFO, what they applied, and nothing when there is nothing to do;
/// PostgreSQL's notices (`… already exists, skipping`) stay out of the default log.
async fn migrations_log_once_what_they_applied(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let migrate = || {
        let output = Command::new(env!("CARGO_BIN_EXE_handoff"))
            .arg("migrate")
            .env("DATABASE_URL", db.url())
            .env("HANDOFF_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK)
            .env_remove("HANDOFF_LOG")
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let first = migrate();
    assert_eq!(first.matches("migrated the database").count(), 1, "{first}");
    assert!(first.contains("m20261126_000001_initial"), "{first}");
    let second = migrate();
    let lines: Vec<&str> = second.lines().collect();
    assert_eq!(lines.len(), 2, "the database and its opening, nothing else: {second}");
    assert!(lines[0].starts_with("database: "), "{second}");
    assert!(lines[1].contains("opened the database"), "{second}");
    for noise in [first.as_str(), second.as_str()] {
        assert!(!noise.contains("already exists"), "{noise}");
        assert!(!noise.contains("sea_orm_migration"), "{noise}");
    }
}

per_backend!(migrations_log_once_what_they_applied);

on_both_backends!(the_last_signing_key_cannot_be_retired_and_an_empty_ring_fails_closed);
/// The command line refuses to retire the last active key; with every key retired anyway
/// (by hand), `serve` refuses to start, and sharing answers 503 `signing_unavailable`.
async fn the_last_signing_key_cannot_be_retired_and_an_empty_ring_fails_closed(app: TestApp) {
    let url = app.db.url().to_owned();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(args)
            .env("DATABASE_URL", &url)
            .env("HANDOFF_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK)
            .env("HANDOFF_LOG", "error")
            .env_remove("HANDOFF_TOKEN_SECRET")
            .output()
            .unwrap()
    };
    let refused = run(&["signing-keys", "retire", "--kid", "k1"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("k1 is the last active signing key"), "{said}");
    assert_eq!(app.store.signing_keys(false).await.unwrap().len(), 1, "k1 still active");
    // A key rotated in a moment ago does not sign yet: k1 stays the only one that does.
    let rotated = run(&["signing-keys", "rotate"]);
    assert!(rotated.status.success(), "{rotated:?}");
    let refused = run(&["signing-keys", "retire", "--kid", "k1"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("k1 is the last signing key active now"), "{said}");
    let keys = app.store.signing_keys(false).await.unwrap();
    assert_eq!(keys.len(), 2, "k1 and its successor still active");
    assert!(app.store.retire_signing_key(&keys[1].kid, chrono::Utc::now()).await.unwrap());

    // Retired by hand: nothing may sign.
    assert!(app.store.retire_signing_key("k1", chrono::Utc::now()).await.unwrap());
    let serve = run(&["serve", "--bind", "127.0.0.1:0"]);
    assert!(!serve.status.success());
    let said = String::from_utf8_lossy(&serve.stderr);
    assert!(said.contains("every share-token signing key in the database is retired"), "{said}");

    let empty =
        std::sync::Arc::new(handoff_token::JwtShareTokens::new(handoff_token::Keyring::default()));
    let services = handoff::services(&app.store, "https://verify.example.test", empty);
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let session = app.finished_session(&source, "user", "u").await;
    let caller = handoff_domain::Caller::primary(source.id.parse().unwrap(), "test");
    let error = services
        .share
        .share(
            &caller,
            session.parse().unwrap(),
            handoff_domain::services::ShareRequest {
                for_application_id: receiver.id.parse().unwrap(),
                ttl: handoff_domain::share::ShareTtl::DEFAULT,
                blocks: None,
                consent: None,
            },
        )
        .await
        .unwrap_err();
    let answer = handoff_http::ApiError::from(error);
    assert_eq!(answer.code(), "signing_unavailable");
    assert_eq!(actix_web::ResponseError::status_code(&answer).as_u16(), 503);
}

on_both_backends!(operators_manage_webhook_destinations);
/// `handoff webhooks …` creates (the secret shown once), lists, shows deliveries, resends and
/// deletes an application's destinations, as the API does.
async fn operators_manage_webhook_destinations(app: TestApp) {
    let tenant = app.tenant("Acme").await;
    let url = app.db.url().to_owned();
    let (ok, created, stderr) = handoff(
        &url,
        &[
            "webhooks",
            "create",
            "--application",
            &tenant.id,
            "--url",
            "https://hooks.example.com/didit",
            "--events",
            "status.updated,share.created",
        ],
    );
    assert!(ok, "{stderr}");
    let destination = created[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(created[0]["secret_shared_key"].as_str().unwrap().len(), 64);
    assert_eq!(
        created[0]["subscribed_events"],
        serde_json::json!(["status.updated", "share.created"])
    );
    let listed = app.get("/v3/webhook/destinations/", &tenant).await;
    assert_eq!(listed.body["results"][0]["id"], created[0]["id"]);
    let (ok, lines, _) = handoff(&url, &["webhooks", "list", "--application", &tenant.id]);
    assert!(ok);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].get("secret_shared_key").is_none());
    // A session makes an event; its delivery (failing: nothing listens there) is listed.
    let workflow = app.workflow(&tenant, "user").await;
    app.session(&tenant, &workflow, None).await;
    let deliveries = || {
        handoff(
            &url,
            &["webhooks", "deliveries", "--application", &tenant.id, "--destination", &destination],
        )
    };
    let started = std::time::Instant::now();
    let delivery = loop {
        let (ok, lines, stderr) = deliveries();
        assert!(ok, "{stderr}");
        // Claimed (its attempt counted), then the attempt's outcome recorded.
        if let Some(delivery) =
            lines.first().filter(|d| d["attempts"].as_i64() > Some(0) && !d["last_error"].is_null())
        {
            break delivery.clone();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "no attempt recorded: {lines:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(delivery["webhook_type"], "status.updated");
    assert!(delivery["last_error"].is_string(), "nothing listens there: {delivery}");
    let (ok, resent, stderr) = handoff(
        &url,
        &[
            "webhooks",
            "resend",
            "--application",
            &tenant.id,
            "--destination",
            &destination,
            "--delivery",
            delivery["delivery_id"].as_str().unwrap(),
        ],
    );
    assert!(ok, "{stderr}");
    assert_eq!(resent[0]["state"], "pending");
    let (ok, refused, stderr) =
        handoff(&url, &["webhooks", "create", "--application", &tenant.id, "--url", "ftp://x"]);
    assert!(!ok && refused.is_empty(), "{stderr}");
    assert!(stderr.contains("url"), "{stderr}");
    let (ok, _, _) = handoff(
        &url,
        &["webhooks", "delete", "--application", &tenant.id, "--destination", &destination],
    );
    assert!(ok);
    let (ok, lines, _) = handoff(&url, &["webhooks", "list", "--application", &tenant.id]);
    assert!(ok && lines.is_empty());
}
