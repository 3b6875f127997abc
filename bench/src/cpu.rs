//! CPU time, the measure wall-clock noise cannot move: this process's own (user + system, every
//! thread, from `getrusage`) and, on PostgreSQL, that of the server's backend processes serving
//! the benchmark's database (each backend's time on a CPU, from `/proc/<pid>/schedstat`, in
//! nanoseconds). The database runs on this host, so its processes can be read.

use std::time::Duration;

use handoff_store::Store;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

/// Reads the CPU time spent on the benchmark's behalf.
pub struct CpuMeter {
    store: Store,
}

impl CpuMeter {
    pub fn new(store: &Store) -> CpuMeter {
        CpuMeter { store: store.clone() }
    }

    /// This process's CPU time and, on PostgreSQL, its database's backends'. A backend that
    /// ends between two samples takes its time with it: the pool keeps its connections open
    /// while the benchmark runs, so the figure is a floor only for a round that replaced one.
    pub async fn sample(&self) -> CpuSample {
        CpuSample {
            process: own(),
            server: threads_named("actix-server"),
            engine: threads_named("sqlx-sqlite-wor"),
            database: self.backends().await,
        }
    }

    async fn backends(&self) -> Duration {
        let db = self.store.connection();
        if db.get_database_backend() != DatabaseBackend::Postgres {
            return Duration::ZERO;
        }
        // The sampling connection's own backend is counted too: one short query per sample.
        let sql = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()";
        let Ok(rows) =
            db.query_all_raw(Statement::from_string(DatabaseBackend::Postgres, sql)).await
        else {
            return Duration::ZERO;
        };
        rows.iter()
            .filter_map(|row| row.try_get::<i32>("", "pid").ok())
            .map(|pid| on_cpu(&format!("/proc/{pid}/schedstat")))
            .sum()
    }
}

/// CPU time by where it was spent: this process (handoff's Rust, the driver, and SQLite's
/// engine) and PostgreSQL's backends.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    pub process: Duration,
    /// Of `process`, the in-process HTTP server's threads (named `actix-server …`).
    pub server: Duration,
    /// Of `process`, SQLite's: the driver's worker threads, one per connection, which run the
    /// engine (named `sqlx-sqlite-worker-…`, cut to 15 bytes).
    pub engine: Duration,
    pub database: Duration,
}

impl CpuSample {
    pub fn total(self) -> Duration {
        self.process + self.database
    }

    /// What was spent since `before`.
    pub fn since(self, before: CpuSample) -> CpuSample {
        CpuSample {
            process: self.process.saturating_sub(before.process),
            server: self.server.saturating_sub(before.server),
            engine: self.engine.saturating_sub(before.engine),
            database: self.database.saturating_sub(before.database),
        }
    }
}

impl std::ops::AddAssign for CpuSample {
    fn add_assign(&mut self, other: CpuSample) {
        self.process += other.process;
        self.server += other.server;
        self.engine += other.engine;
        self.database += other.database;
    }
}

/// This process's user and system time, every thread's, ended ones included.
fn own() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
        return Duration::ZERO;
    };
    let time = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    time(usage.user_time()) + time(usage.system_time())
}

/// The CPU time of this process's threads whose name starts with `prefix`: the HTTP server's
/// and the SQLite driver's live as long as the server and the pool's connections, so none
/// takes its time with it.
fn threads_named(prefix: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .filter_map(Result::ok)
        .map(|task| task.path())
        .filter(|task| {
            std::fs::read_to_string(task.join("comm")).is_ok_and(|name| name.starts_with(prefix))
        })
        .map(|task| on_cpu(&task.join("schedstat").to_string_lossy()))
        .sum()
}

/// The first field of a `schedstat` file: nanoseconds spent on a CPU (zero when unreadable).
fn on_cpu(path: &str) -> Duration {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// The median of `values` and a 95 % interval for it: the order statistics that bracket the
/// median with 95 % confidence whatever the distribution (the normal approximation to the
/// binomial), clamped to the values.
pub fn median_with_interval(values: &mut [f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    // The ranks n/2 − 0.98√n and 1 + n/2 + 0.98√n, counted from 1.
    let spread = 1.96 * n.sqrt() / 2.0;
    let low = ((n / 2.0 - spread).round().max(1.0) as usize) - 1;
    let high = (((1.0 + n / 2.0 + spread).round() as usize).max(1) - 1).min(values.len() - 1);
    Some((values[values.len() / 2], values[low], values[high]))
}
