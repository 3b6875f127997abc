//! Several server processes on one database, as in a scaled-out deployment: they start together
//! on a fresh database (migrations and the first signing key happen once), agree on keys, and
//! let exactly one of many concurrent imports of a source through.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use handoff_testdb::{Backend, TestDatabase};
use serde_json::json;

use crate::support::{PUBLIC_URL, TestApp, Upload, assert_error, per_backend, post_to};

/// A `handoff serve` child process, killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    /// Where [`Server::start`] sends the log, read when the process exits early; and the
    /// database, to start again on another port when the chosen one was taken meanwhile.
    restart: Option<Restart>,
}

/// The log file, the database and the extra environment of a server to start again.
type Restart = (std::path::PathBuf, String, Vec<(String, String)>);

impl Server {
    /// Starts on a free port, its log (warnings) kept in a file for the panic message when it
    /// exits early.
    pub fn start(database_url: &str) -> Server {
        Self::start_with(database_url, &[])
    }

    /// [`Server::start`] with more environment variables.
    pub fn start_with(database_url: &str, env: &[(&str, &str)]) -> Server {
        let path = std::env::temp_dir().join(format!("handoff-test-{}.log", uuid::Uuid::new_v4()));
        let log = std::fs::File::create(&path).unwrap();
        let mut server = Self::start_logging_with(database_url, "warn", Stdio::from(log), env);
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        server.restart = Some((path, database_url.to_owned(), env));
        server
    }

    /// Starts with a log filter, sending the log (stderr) to `log`.
    pub fn start_logging(database_url: &str, filter: &str, log: Stdio) -> Server {
        Self::start_logging_with(database_url, filter, log, &[])
    }

    pub fn start_logging_with(
        database_url: &str, filter: &str, log: Stdio, env: &[(&str, &str)],
    ) -> Server {
        // The port is free now; another test may take it before the child binds it, which
        // `wait_until_healthy` sees and starts again elsewhere.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        // `{base}` in a value names the server's own address (its public URL, for instance).
        let env: Vec<(&str, String)> =
            env.iter().map(|(k, v)| (*k, v.replace("{base}", &base))).collect();
        let child = Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--workers", "2"])
            .env("DATABASE_URL", database_url)
            .env("HANDOFF_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK)
            .env("HANDOFF_PUBLIC_URL", PUBLIC_URL)
            .env("HANDOFF_LOG", filter)
            .env_remove("HANDOFF_TOKEN_SECRET")
            .envs(env)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Server { child, base, restart: None }
    }

    pub async fn wait_until_healthy(&mut self) {
        let started = Instant::now();
        let client = reqwest::Client::new();
        loop {
            if let Ok(response) = client.get(format!("{}/health/", self.base)).send().await
                && response.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self
                    .restart
                    .as_ref()
                    .and_then(|(path, _, _)| std::fs::read_to_string(path).ok())
                    .unwrap_or_default();
                let restart = self.restart.take();
                if let Some((path, _, _)) = &restart {
                    let _ = std::fs::remove_file(path);
                }
                match restart {
                    Some((_, database_url, env)) if log.contains("in use") => {
                        let env: Vec<(&str, &str)> =
                            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                        *self = Server::start_with(&database_url, &env);
                        continue;
                    }
                    _ => panic!("the server exited: {status}\n{log}"),
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not become healthy"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `signal` (`INT`, `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap();
        assert!(sent.success());
    }

    /// Waits up to `within` for the process to exit.
    pub async fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < within, "still running after {within:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((path, _, _)) = &self.restart {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn two_processes(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    // Both start at once on a fresh database.
    let mut a = Server::start(db.url());
    let mut b = Server::start(db.url());
    a.wait_until_healthy().await;
    b.wait_until_healthy().await;
    let app = TestApp::attach(&a.base, db).await;
    assert_eq!(app.store.signing_keys(true).await.unwrap().len(), 1, "one first key, whoever won");

    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let session = app.finished_session(&source, "user", "user-ana-001").await;
    let workflow = app.workflow(&receiver, "user").await;
    let token = app.share(&source, &session, &receiver).await;

    // Process B verifies a token process A signed; 32 imports spread over both processes.
    let bases = Arc::new([a.base.clone(), b.base.clone()]);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let (bases, key, token, workflow) =
            (bases.clone(), receiver.key.clone(), token.clone(), workflow.clone());
        tasks.spawn(async move {
            let body = json!({"share_token": token, "workflow_id": workflow});
            post_to(&bases[i % 2], "/v3/session/import-shared/", &key, &body).await
        });
    }
    let answers = tasks.join_all().await;
    let created: Vec<_> = answers.iter().filter(|(status, _)| *status == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "{:?}",
        answers.iter().map(|(s, b)| (s, b["code"].clone())).collect::<Vec<_>>()
    );
    for (status, body) in answers.iter().filter(|(status, _)| *status != 201) {
        assert_eq!(*status, 403, "{body}");
        assert_eq!(body["code"], "already_imported");
        assert_eq!(body["session_id"], created[0].1["session_id"]);
    }
    let listed = app.get("/v3/sessions/", &receiver).await;
    assert_eq!(listed.body["count"], 1);
    assert_error(
        &app.get(
            &format!("/v3/session/{}/decision/", created[0].1["session_id"].as_str().unwrap()),
            &source,
        )
        .await,
        404,
        "session_not_found",
    );
    a.kill();
    b.kill();
}

per_backend!(two_processes);

/// SIGINT and SIGTERM stop the server gracefully: a new connection is refused at once, a
/// request whose body is still arriving when the signal comes is answered in full, the process exits 0, SQLite's write-ahead log is
/// folded into the database file, and the log's last line says the server stopped.
async fn a_signal_lets_requests_in_flight_finish(backend: Backend) {
    for signal in ["INT", "TERM"] {
        let db = TestDatabase::create(backend).await;
        let log_path =
            std::env::temp_dir().join(format!("handoff-stop-{}.log", uuid::Uuid::new_v4()));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut server = Server::start_logging(db.url(), "info", Stdio::from(log));
        server.wait_until_healthy().await;
        let base = server.base.clone();
        let app = TestApp::attach(&base, db).await;
        let tenant = app.tenant("Acme").await;
        let workflow = app.workflow(&tenant, "user").await;
        let session = app.session(&tenant, &workflow, None).await;

        // Headers and part of the body now, the rest after the signal.
        let upload = Upload::start(&app, &tenant, &session).await;
        let address = base.trim_start_matches("http://").to_owned();

        server.signal(signal);
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The listener is shut at once: a new connection is refused, not left to hang.
        let refused =
            tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(&address))
                .await;
        assert!(
            matches!(&refused, Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused),
            "SIG{signal}: a new connection after the signal: {refused:?}"
        );
        let answer = upload.finish().await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "SIG{signal}: {answer}\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        assert!(answer.contains("\"status\":\"Approved\""), "SIG{signal}: {answer}");

        let status = server.exited(Duration::from_secs(10)).await;
        assert!(status.success(), "SIG{signal}: {status}");
        let log = std::fs::read_to_string(&log_path).unwrap();
        let _ = std::fs::remove_file(&log_path);
        let last = log.lines().last().unwrap_or_default();
        assert!(last.ends_with("handoff stopped"), "SIG{signal}: {log}");
        assert!(log.contains(&format!("signal=\"SIG{signal}\"")), "{log}");
        assert!(!log.contains("forced shutdown"), "{log}");
        assert!(log.contains("opened the database database="), "which database: {log}");
        if backend == Backend::Sqlite {
            let file =
                app.db.url().trim_start_matches("sqlite:").split('?').next().unwrap().to_owned();
            let wal = std::fs::metadata(format!("{file}-wal")).map(|m| m.len()).unwrap_or(0);
            assert_eq!(wal, 0, "the write-ahead log was checkpointed");
        }
    }
}

per_backend!(a_signal_lets_requests_in_flight_finish);

/// Rate limits on PostgreSQL are one budget for every server on the database: reads spread
/// over two processes are allowed as many times as the budget says, not twice. On SQLite each
/// process counts for itself (documented in docs/deploy.md).
async fn processes_share_one_rate_limit_on_postgres(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let env = [("HANDOFF_RATE_LIMIT", "5,5,60")];
    let mut a = Server::start_with(db.url(), &env);
    let mut b = Server::start_with(db.url(), &env);
    a.wait_until_healthy().await;
    b.wait_until_healthy().await;
    let app = TestApp::attach(&a.base, db).await;
    let tenant = app.tenant("Acme").await;
    crate::limits::fresh_window().await;
    let mut allowed = Vec::new();
    for i in 0..12 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let response = app
            .client
            .get(format!("{base}/v3/sessions/"))
            .header("x-api-key", &tenant.key)
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => allowed
                .push(response.headers()["x-ratelimit-remaining"].to_str().unwrap().to_owned()),
            429 => {}
            other => panic!("request {i}: {other}"),
        }
    }
    match backend {
        Backend::Postgres => assert_eq!(allowed, ["4", "3", "2", "1", "0"], "one budget"),
        Backend::Sqlite => assert_eq!(allowed.len(), 10, "a budget per process: {allowed:?}"),
    }
    a.kill();
    b.kill();
}

per_backend!(processes_share_one_rate_limit_on_postgres);
