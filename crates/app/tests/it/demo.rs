//! `handoff demo`: it starts in seconds on a fresh SQLite file, and its printed walk-through
//! (share → preview → import → review) runs as printed, in a shell, with curl.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn the_demo_walk_through_runs_as_printed() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
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
            ["export ", "SHARED=", "IMPORTED=", "curl "].iter().any(|start| l.starts_with(start))
        })
        .collect();
    assert_eq!(script.len(), 7, "{printed}");
    let script = script.join("\n");
    let paste = || {
        let script = script.clone();
        tokio::task::spawn_blocking(move || {
            let output =
                Command::new("bash").args(["-euo", "pipefail", "-c", &script]).output().unwrap();
            let out = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(output.status.success(), "{out}\n{}", String::from_utf8_lossy(&output.stderr));
            out
        })
    };
    let out = paste().await.unwrap();
    // The preview, the import, the review's answer and the decision with its provenance.
    assert!(out.contains(r#""session_kind":"business""#), "{out}");
    assert!(out.contains(r#""status":"Approved""#), "{out}");
    assert!(out.contains(r#""action":"imported""#), "{out}");
    assert!(!out.contains("already_imported"), "{out}");

    // Pasted again: the preview and the import say why nothing new is imported, and steps 4
    // and 5 act on the clone the first paste made.
    let again = paste().await.unwrap();
    assert_eq!(again.matches(r#""code":"already_imported""#).count(), 2, "{again}");
    assert!(again.contains(r#""action":"imported""#), "{again}");
    assert!(!again.contains("/v3/session//"), "{again}");

    // The end user's page of the clone imported at start-up.
    let page = printed.split_whitespace().find(|w| w.contains("/session/")).unwrap().to_owned();
    let body = reqwest::get(&page).await.unwrap().text().await.unwrap();
    assert!(body.contains("Nothing for you to do"), "{body}");

    let _ = Command::new("kill").args(["-TERM", &demo.id().to_string()]).status();
    let status = tokio::task::spawn_blocking(move || demo.wait().unwrap()).await.unwrap();
    assert!(status.success(), "the demo stops cleanly: {status}");
}

/// A demo whose port is taken stops at once, naming `--bind`, and leaves no temporary
/// directory behind.
#[tokio::test]
async fn a_demo_on_a_port_in_use_says_so_and_leaves_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let tmp = std::env::temp_dir().join(format!("handoff-demo-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&tmp).unwrap();
    let output = tokio::task::spawn_blocking({
        let tmp = tmp.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_handoff"))
                .args(["demo", "--bind", &address])
                .env("TMPDIR", &tmp)
                .env("HANDOFF_LOG", "warn")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("--bind"), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    std::fs::remove_dir_all(&tmp).unwrap();
    assert!(left.is_empty(), "left behind: {left:?}");
    drop(taken);
}
