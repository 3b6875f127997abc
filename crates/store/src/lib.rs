//! handoff's storage: the repository ports of `handoff-domain` on sea-orm, for SQLite and
//! PostgreSQL.
//!
//! Everyday statements are built with sea-query over the identifiers of `schema.rs`, so a renamed
//! column fails to compile. The import is the one place written in SQL by hand (`import/`):
//! there a statement per table, or one in all, is the whole cost. Every write that reads first
//! runs in a transaction that takes the write lock up front (`BEGIN IMMEDIATE` on SQLite,
//! `SELECT ... FOR UPDATE` on PostgreSQL).

mod api_key_cache;
mod applications;
mod backfill;
mod connect;
mod console_sessions;
mod entities;
mod idempotency;
mod import;
mod lists;
mod outbox;
mod partners;
mod rate_counters;
mod reseal;
mod reviewers;
mod rows;
mod schema;
mod sealing;
mod sessions;
mod shares;
mod signing_keys;
mod sql;
mod webhooks;
mod workflows;
mod write_gate;

pub use backfill::Backfilled;
pub use connect::{
    ConnectError, StoreOptions, create_private_dir, default_max_connections, describe_database,
};
pub use entities::Rekeyed;
pub use import::sqlite_answer_select;
pub use lists::SealedEntry;
pub use sea_orm::DatabaseBackend;
pub use signing_keys::{NewSigningKey, StoredSigningKey};

use sea_orm::DatabaseConnection;

/// The database behind every repository port. Cheap to clone: it is a connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// SQLite's connection for write transactions: one, so that its page cache stays warm
    /// (SQLite drops a connection's cache when another connection wrote since its last
    /// transaction). `None`: they use the pool.
    writer: Option<DatabaseConnection>,
    /// SQLite's writers of this process, one at a time ([`write_gate`]).
    write_gate: Option<std::sync::Arc<write_gate::WriteGate>>,
    /// What seals identity data at rest ([`Store::sealing_with`]); `None`: kept in clear.
    sealing: Option<std::sync::Arc<sealing::DataProtection>>,
    /// The API keys looked up, kept while [`Store::watch_api_keys`] runs.
    api_keys: std::sync::Arc<api_key_cache::ApiKeyCache>,
    /// SQLite's imports waiting to be written together ([`import::ImportGroups`]).
    import_groups: std::sync::Arc<import::ImportGroups>,
}

impl Store {
    /// Wraps an open connection pool.
    pub fn new(db: DatabaseConnection) -> Self {
        let write_gate = (db.get_database_backend() == DatabaseBackend::Sqlite)
            .then(|| std::sync::Arc::new(write_gate::WriteGate::default()));
        Self {
            db,
            writer: None,
            write_gate,
            sealing: None,
            api_keys: Default::default(),
            import_groups: Default::default(),
        }
    }

    /// Waits for this process's turn to write (SQLite only; PostgreSQL has row locks).
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write_gate {
            Some(gate) => Some(gate.small().await),
            None => None,
        }
    }

    /// [`Store::write_turn`] for a write of megabytes, which lets small ones go first.
    pub(crate) async fn large_write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write_gate {
            Some(gate) => Some(gate.large().await),
            None => None,
        }
    }

    /// The connection pool, for running migrations.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Where write transactions run: on SQLite opened by [`Store::connect`] its one writer's
    /// connection, elsewhere the pool. On SQLite, only in the process's writer's turn: an
    /// import group's transaction spans several of the connection's commands.
    pub fn write_connection(&self) -> &DatabaseConnection {
        self.writer.as_ref().unwrap_or(&self.db)
    }

    /// A transaction that takes the write lock up front ([`sql::begin_write`]), on the
    /// [`Store::write_connection`].
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sea_orm::DatabaseTransaction, handoff_domain::RepoError> {
        sql::begin_write(self.write_connection()).await
    }

    /// Which database this is.
    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// Closes the pool, for a server that stopped serving: on SQLite the write-ahead log is
    /// first checkpointed into the database file, so that the file alone holds everything.
    pub async fn close(&self) -> Result<(), handoff_domain::RepoError> {
        use sea_orm::ConnectionTrait;
        if self.backend() == DatabaseBackend::Sqlite {
            // A PRAGMA: sea-query has no builder for it.
            self.db
                .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                .await
                .map_err(sql::repo_error)?;
        }
        if let Some(writer) = &self.writer {
            writer.clone().close().await.map_err(sql::repo_error)?;
        }
        self.db.clone().close().await.map_err(sql::repo_error)
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        self.db.ping().await.is_ok()
    }
}

#[async_trait::async_trait]
impl handoff_domain::ports::Readiness for Store {
    async fn ready(&self) -> bool {
        self.ping().await
    }
}

impl Store {
    /// A transaction that no other process can hold at the same time: SQLite's write lock
    /// (`BEGIN IMMEDIATE`), and on PostgreSQL a transaction-scoped advisory lock. Migrations run
    /// in one, so that servers starting together on a fresh database apply them once.
    pub async fn begin_exclusive(
        &self,
    ) -> Result<sea_orm::DatabaseTransaction, handoff_domain::RepoError> {
        let txn = self.begin_write().await?;
        if self.backend() == DatabaseBackend::Postgres {
            // "handoff" as a 64-bit lock key.
            use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, Query};
            let lock = Func::cust("pg_advisory_xact_lock").arg(7_526_466_356_353_791_590_i64);
            // `IS NULL`: the function returns `void`, which the driver cannot decode.
            let lock = Query::select()
                .expr_as(Expr::from(lock).is_null(), Alias::new("locked"))
                .to_owned();
            sql::fetch_one(&txn, &lock).await?;
        }
        Ok(txn)
    }
}

impl Store {
    /// The open connections and how many of them are idle: the pool's, and on SQLite the
    /// writer's ([`Store::write_connection`]).
    pub fn pool_connections(&self) -> (u32, u32) {
        let idle = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        match self.backend() {
            DatabaseBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), idle(pool.num_idle()))
            }
            _ => [Some(&self.db), self.writer.as_ref()].into_iter().flatten().fold(
                (0, 0),
                |(open, idle_now), db| {
                    let pool = db.get_sqlite_connection_pool();
                    (open + pool.size(), idle_now + idle(pool.num_idle()))
                },
            ),
        }
    }
}
