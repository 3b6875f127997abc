//! The README's walk-through, `scripts/walkthrough.sh`, run as printed against a fresh server
//! on each backend: every step must answer the status it expects.

use std::process::Command;

use handoff_testdb::Backend;

use crate::support::{TestApp, per_backend};

async fn the_readme_walk_through_runs_as_printed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("sh")
            .arg(root.join("scripts/walkthrough.sh"))
            .env("BASE", &app.base)
            .env("HANDOFF", env!("CARGO_BIN_EXE_handoff"))
            .env("DATABASE_URL", app.db.url())
            .env("HANDOFF_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for step in 1..=12 {
        assert!(
            stdout
                .lines()
                .any(|line| line.starts_with(&format!("{step}. "))),
            "step {step} did not run:\n{stdout}"
        );
    }
    assert!(stdout.ends_with("walk-through done\n"), "{stdout}");
}

per_backend!(the_readme_walk_through_runs_as_printed);
