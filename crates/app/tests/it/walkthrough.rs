//! The README's walk-through, `scripts/walkthrough.sh`, run as printed against a fresh server
//! on each backend: every step must answer the status it expects.

use std::process::Command;

use handoff_testdb::Backend;

use crate::support::{TestApp, per_backend};

/// `scripts/walkthrough.sh` run against `app` with `database_url` for its `handoff`.
async fn walk(app: &TestApp, database_url: &str) -> std::process::Output {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (base, database_url) = (app.base.clone(), database_url.to_owned());
    tokio::task::spawn_blocking(move || {
        Command::new("sh")
            .arg(root.join("scripts/walkthrough.sh"))
            .env("BASE", &base)
            .env("HANDOFF", env!("CARGO_BIN_EXE_handoff"))
            .env("DATABASE_URL", &database_url)
            .env("HANDOFF_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

async fn the_readme_walk_through_runs_as_printed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let output = walk(&app, app.db.url()).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for step in 1..=12 {
        assert!(
            stdout.lines().any(|line| line.starts_with(&format!("{step}. "))),
            "step {step} did not run:\n{stdout}"
        );
    }
    assert!(stdout.ends_with("walk-through done\n"), "{stdout}");
}

per_backend!(the_readme_walk_through_runs_as_printed);

/// Run with a `DATABASE_URL` other than the server's, the script stops after step 1 and says
/// why, instead of failing at step 2 with a bare 401.
async fn the_walk_through_stops_when_its_database_is_not_the_servers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = std::env::temp_dir().join(format!("handoff_walk_{}", uuid::Uuid::new_v4().simple()));
    let other = format!("sqlite:{}?mode=rwc", dir.join("handoff.db").display());
    let output = walk(&app, &other).await;
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("1. "), "{stdout}");
    assert!(!stdout.contains("\n2. "), "{stdout}");
    assert!(
        stderr.contains("open different databases")
            && stderr.contains("DATABASE_URL")
            && stderr.contains(&dir.display().to_string()),
        "{stderr}"
    );
}

per_backend!(the_walk_through_stops_when_its_database_is_not_the_servers);
