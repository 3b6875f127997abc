//! The operator's command line, run as the real binary against the test database.

use std::process::Command;

use serde_json::Value;

use crate::support::{TestApp, assert_error, on_both_backends};

fn handoff(database_url: &str, args: &[&str]) -> (bool, Vec<Value>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("HANDOFF_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        output.status.success(),
        lines,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

on_both_backends!(operators_manage_applications_and_keys,);

async fn operators_manage_applications_and_keys(app: TestApp) {
    let url = app.db.url().to_owned();
    let (ok, lines, _) = handoff(&url, &["applications", "create", "--name", "Acme KYC"]);
    assert!(ok);
    assert_eq!(lines.len(), 1, "exactly one JSON line");
    let created = lines[0].as_object().unwrap();
    assert_eq!(
        created.keys().collect::<Vec<_>>(),
        ["application_id", "name", "api_key"]
    );
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

    let revoke = || {
        handoff(
            &url,
            &[
                "api-keys",
                "revoke",
                "--application",
                &tenant.id,
                "--prefix",
                &prefix,
            ],
        )
    };
    let (ok, lines, _) = revoke();
    assert!(ok, "{lines:?}");
    assert_error(
        &app.get("/v3/sessions/", &second).await,
        403,
        "authentication_failed",
    );
    assert_eq!(
        app.get("/v3/sessions/", &tenant).await.status.as_u16(),
        200,
        "the other key still works"
    );

    let (ok, _, stderr) = revoke();
    assert!(!ok);
    assert!(stderr.contains("api key not found"), "{stderr}");
    let (ok, _, stderr) = handoff(
        &url,
        &[
            "api-keys",
            "create",
            "--application",
            &uuid::Uuid::new_v4().to_string(),
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("application not found"), "{stderr}");
    let (ok, _, _) = handoff(&url, &["applications", "create", "--name", ""]);
    assert!(!ok);
}
