//! `handoff demo`: it starts in seconds on a fresh SQLite file, and its printed walk-through
//! (share → preview → import → review) runs as printed, in a shell, with curl.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn the_demo_walk_through_runs_as_printed() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["demo", "--bind", &format!("127.0.0.1:{port}")])
        .env("HANDOFF_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let started = std::time::Instant::now();
    let printed = tokio::task::spawn_blocking(move || {
        let mut printed = String::new();
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            printed.push_str(&line);
            printed.push('\n');
            if line.starts_with("Stop with Ctrl-C") {
                break;
            }
        }
        // Whatever else it prints is read, so that it never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        printed
    });
    let printed = tokio::time::timeout(Duration::from_secs(60), printed)
        .await
        .expect("the demo printed its walk-through")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "seconds, not minutes: {:?}",
        started.elapsed()
    );

    // The commands as printed: the exports, then every step.
    let script: Vec<&str> = printed
        .lines()
        .map(str::trim)
        .filter(|l| {
            ["export ", "TOKEN=", "CLONE=", "curl "]
                .iter()
                .any(|start| l.starts_with(start))
        })
        .collect();
    assert_eq!(script.len(), 7, "{printed}");
    let script = script.join("\n");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The preview, the review's answer and the decision with its provenance.
    assert!(out.contains(r#""session_kind":"business""#), "{out}");
    assert!(out.contains(r#""status":"Approved""#), "{out}");
    assert!(out.contains(r#""action":"imported""#), "{out}");

    // The end user's page of the clone imported at start-up.
    let page = printed
        .split_whitespace()
        .find(|w| w.contains("/session/"))
        .unwrap()
        .to_owned();
    let body = reqwest::get(&page).await.unwrap().text().await.unwrap();
    assert!(body.contains("Nothing for you to do"), "{body}");

    let _ = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status();
    let status = tokio::task::spawn_blocking(move || demo.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "the demo stops cleanly: {status}");
}
