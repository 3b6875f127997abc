//! Server processes for the scale-out and noisy-neighbour benchmarks: the release `handoff`
//! binary beside this one (`cargo xtask bench` builds both), started on one database, with
//! their CPU time and memory read from `/proc`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use handoff::Config;

use crate::PUBLIC_URL;

/// The key-encryption key of every benchmark: the bench and its servers open one key ring.
pub const KEK: &str = "the benchmark's key-encryption key, 32+ bytes";

/// The configuration the bench opens the database with, as its servers do.
pub fn config(database_url: &str) -> Config {
    Config {
        public_url: Some(PUBLIC_URL.into()),
        key_encryption_key: Some(handoff::config::Secret(KEK.into())),
        ..Config::new(database_url)
    }
}

/// A fresh database opened as its servers will open it, with the bench's two applications.
pub struct Seeded {
    pub db: handoff_testdb::TestDatabase,
    pub store: handoff_store::Store,
    pub services: handoff_domain::services::Services,
    pub world: crate::seed::World,
}

/// A fresh database of `backend`, migrated, its key ring made, and the bench's applications.
pub async fn seeded(backend: handoff_testdb::Backend) -> Result<Seeded, String> {
    let db = handoff_testdb::TestDatabase::create(backend).await;
    let config = config(db.url());
    let store = handoff::open_store(&config).await.map_err(|e| e.to_string())?;
    let tokens = std::sync::Arc::new(handoff_token::JwtShareTokens::new(
        handoff::load_keyring(&config, &store).await.map_err(|e| e.to_string())?,
    ));
    let services = handoff::services_with_keys(&config, &store, PUBLIC_URL, tokens.clone())
        .map_err(|e| e.to_string())?;
    let world = crate::seed::World::new(&services, tokens).await?;
    Ok(Seeded { db, store, services, world })
}

/// A `handoff serve` process, killed on drop.
pub struct ServerProcess {
    child: Child,
    pub base: String,
    log: std::path::PathBuf,
}

fn binary() -> Result<std::path::PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = exe.with_file_name("handoff");
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} is missing: run the bench with `cargo xtask bench`, which builds it",
            path.display()
        ))
    }
}

impl ServerProcess {
    /// Starts a server on `database_url` with `env` added, and waits until it is healthy.
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> Result<ServerProcess, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let log = std::env::temp_dir().join(format!("handoff-bench-{port}.log"));
        let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new(binary()?)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", database_url)
            .env("HANDOFF_KEY_ENCRYPTION_KEY", KEK)
            .env("HANDOFF_PUBLIC_URL", PUBLIC_URL)
            .env("HANDOFF_LOG", "warn")
            .env_remove("HANDOFF_TOKEN_SECRET")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut server = ServerProcess { child, base: format!("http://127.0.0.1:{port}"), log };
        server.wait_until_healthy().await?;
        Ok(server)
    }

    async fn wait_until_healthy(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let client = reqwest::Client::new();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(response) = client.get(format!("{}/health/", self.base)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(format!("the server exited ({status}): {log}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("the server did not become healthy within 30 s".into())
    }

    /// Peak and current resident memory, in MB (`VmHWM`, `VmRSS`).
    pub fn memory_mb(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// CPU seconds the process has used.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&format!("/proc/{}/stat", self.child.id()))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// User and system CPU seconds of the process whose `stat` file this is (0 when unreadable).
fn cpu_seconds_of(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // The fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: f64 =
        [11, 12].iter().filter_map(|i| fields.get(*i).and_then(|f| f.parse::<f64>().ok())).sum();
    ticks / 100.0
}

/// CPU seconds used so far by this process (the client).
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds_of("/proc/self/stat")
}

/// CPU seconds used so far by every running PostgreSQL process of the machine.
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|e| cpu_seconds_of(&e.path().join("stat").to_string_lossy()))
        .sum()
}
