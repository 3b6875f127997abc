//! Writing SQL once for both backends, and turning database errors into the domain's.

use handoff_domain::RepoError;
use sea_orm::sea_query::{Expr, InsertStatement, IntoIden, IntoTableRef, Query};
use sea_orm::sqlx;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, QueryResult,
    RuntimeErr, SqliteTransactionMode, Statement, StatementBuilder, TransactionOptions,
    TransactionTrait, Value,
};

/// Builds a statement from SQL written with `?` placeholders, numbering them `$1, $2, ...` for
/// PostgreSQL: the import's hand-written SQL (`import/`), which never has a `?` inside a
/// literal. Every other statement is built with sea-query.
pub(crate) fn stmt(backend: DatabaseBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DatabaseBackend::Postgres => numbered(sql),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

fn numbered(sql: &str) -> String {
    // Already numbered (or without parameters): copied as it is.
    if !sql.contains('?') {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs a built statement (sea-query) that returns rows.
pub(crate) async fn fetch_all<C: ConnectionTrait, S: StatementBuilder + Sync>(
    db: &C, statement: &S,
) -> Result<Vec<QueryResult>, RepoError> {
    db.query_all(statement).await.map_err(repo_error)
}

/// Runs a built statement (sea-query) that returns at most one row.
pub(crate) async fn fetch_one<C: ConnectionTrait, S: StatementBuilder + Sync>(
    db: &C, statement: &S,
) -> Result<Option<QueryResult>, RepoError> {
    db.query_one(statement).await.map_err(repo_error)
}

/// Runs a built statement (sea-query) and returns how many rows it changed.
pub(crate) async fn run<C: ConnectionTrait, S: StatementBuilder + Sync>(
    db: &C, statement: &S,
) -> Result<u64, RepoError> {
    db.execute(statement).await.map(|r| r.rows_affected()).map_err(repo_error)
}

/// Begins a write transaction that holds the write lock from its first statement on SQLite
/// (`BEGIN IMMEDIATE`), so that two writers queue on the busy timeout rather than one failing
/// when it upgrades a read lock.
pub(crate) async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, RepoError> {
    let options = TransactionOptions {
        isolation_level: None,
        access_mode: None,
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
    };
    db.begin_with_options(options).await.map_err(repo_error)
}

/// Commits a transaction.
pub(crate) async fn commit(txn: DatabaseTransaction) -> Result<(), RepoError> {
    txn.commit().await.map_err(repo_error)
}

/// Maps a database error to the domain's: lost connections and timeouts are `Unavailable`
/// (worth a retry), the rest `Internal`.
pub(crate) fn repo_error(error: DbErr) -> RepoError {
    let unavailable = match &error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(
                &**e,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
            ) || is_transient(e)
        }
        _ => false,
    };
    if unavailable {
        RepoError::Unavailable(Box::new(error))
    } else {
        RepoError::Internal(Box::new(error))
    }
}

/// Errors that say the database is (for now) out of reach rather than that the request is wrong:
/// SQLite busy or locked after the busy timeout; PostgreSQL connection exceptions (class 08),
/// transaction rollbacks such as a deadlock or a serialization failure (40), operator
/// intervention such as a terminated backend or a shutdown (57), and insufficient resources
/// (53); a connection that died under the driver.
fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or_default();
            matches!(code, "5" | "6" | "517" | "262")
                || code.starts_with("08")
                || code.starts_with("40")
                || code.starts_with("57")
                || code.starts_with("53")
        }
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// Whether opening a connection failed because SQLite answered busy or locked: another process
/// opening the same new file holds it while it switches it to WAL, and SQLite then answers at
/// once instead of waiting out the busy timeout.
pub(crate) fn is_sqlite_busy(error: &DbErr) -> bool {
    match error {
        DbErr::Conn(RuntimeErr::SqlxError(e)) => match &**e {
            sqlx::Error::Database(db) => {
                matches!(db.code().as_deref(), Some("5" | "6" | "517" | "261" | "262"))
            }
            _ => false,
        },
        _ => false,
    }
}

/// Why a write that must tell a database refusal from other failures did not happen.
pub(crate) enum Failure {
    /// The database refused a statement (a constraint: which one decides the answer).
    Db(DbErr),
    /// Anything else, already the domain's.
    Repo(RepoError),
}

impl From<RepoError> for Failure {
    fn from(error: RepoError) -> Self {
        Failure::Repo(error)
    }
}

/// Whether an error is a unique-constraint violation, on either backend.
pub(crate) fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// Whether an error is a foreign-key violation, on either backend.
pub(crate) fn is_foreign_key_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)))
}

/// The `LIKE … ESCAPE '\'` pattern of a substring: `%`, `_` and `\` match themselves.
pub(crate) fn like_pattern(needle: &str) -> String {
    format!("%{}%", needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

/// An `INSERT` of one row into `table`, each column named beside its value.
pub(crate) fn insert_row<T: IntoTableRef, C: IntoIden>(
    table: T, row: impl IntoIterator<Item = (C, Expr)>,
) -> Result<InsertStatement, RepoError> {
    let (columns, values): (Vec<C>, Vec<Expr>) = row.into_iter().unzip();
    Ok(Query::insert()
        .into_table(table)
        .columns(columns)
        .values(values)
        .map_err(insert_mismatch)?
        .to_owned())
}

/// An insert whose row of values does not match its columns: a storage error, never a panic.
pub(crate) fn insert_mismatch(error: sea_orm::sea_query::error::Error) -> RepoError {
    RepoError::Internal(format!("an insert's values do not match its columns: {error}").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_for_postgres() {
        assert_eq!(numbered("a = ? AND b IN (?, ?)"), "a = $1 AND b IN ($2, $3)");
    }
}

/// Statements sent to the database as one command, their `?` parameters in order: on SQLite
/// one after the other (sqlx binds each statement's from where the previous one's ended), on
/// PostgreSQL as the parts of one data-modifying `WITH` — where no part sees another's
/// writes, so a statement that reads what an earlier one wrote goes apart there.
#[derive(Default)]
pub(crate) struct Batch {
    parts: Vec<String>,
    values: Vec<sea_orm::Value>,
}

impl Batch {
    pub(crate) fn push(&mut self, sql: &str, values: impl IntoIterator<Item = sea_orm::Value>) {
        self.parts.push(sql.to_owned());
        self.values.extend(values);
    }

    /// A statement without parameters, if any.
    pub(crate) fn push_opt(&mut self, sql: Option<&str>) {
        if let Some(sql) = sql {
            self.push(sql, []);
        }
    }

    /// Appends `other`'s statements after these.
    pub(crate) fn append(&mut self, other: Batch) {
        self.parts.extend(other.parts);
        self.values.extend(other.values);
    }

    /// A statement built with sea-query, if any.
    pub(crate) fn push_built(
        &mut self, statement: Option<impl sea_orm::sea_query::QueryStatementWriter>,
    ) {
        if let Some(statement) = statement {
            let (sql, values) = statement.build(sea_orm::sea_query::SqliteQueryBuilder);
            self.push(&sql, values.0);
        }
    }

    /// The name the part pushed next goes by in PostgreSQL's statement, where a later part or
    /// the final `SELECT` ([`Batch::statement_selecting`]) reads the rows it returns.
    pub(crate) fn next_part(&self) -> String {
        format!("part_{}", self.parts.len())
    }

    /// The command's text for `backend`, and its values.
    pub(crate) fn command(self, backend: DatabaseBackend) -> (String, Vec<sea_orm::Value>) {
        match backend {
            DatabaseBackend::Postgres => self.statement_selecting("SELECT 1"),
            _ => (self.parts.iter().map(|part| format!("{part};\n")).collect(), self.values),
        }
    }

    /// PostgreSQL's statement, its rows those of `select`.
    pub(crate) fn statement_selecting(self, select: &str) -> (String, Vec<sea_orm::Value>) {
        let parts: Vec<String> = self
            .parts
            .iter()
            .enumerate()
            .map(|(i, part)| format!("part_{i} AS ({part})"))
            .collect();
        (format!("WITH {} {select}", parts.join(", ")), self.values)
    }
}
