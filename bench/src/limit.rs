//! The limit: the clone the contract describes, written by hand as SQL in one transaction with the
//! fewest statements the schema allows — the counter, the receiver's entity (an upsert), the
//! session row, one `INSERT … SELECT` per related table, the import's log row, the token's
//! redemption: the rows handoff writes — and none of handoff's checks (the token's signature
//! and revocation, the source's application and kind, the workflow, the status rule), answer
//! or Rust around it.

use handoff_domain::{ApplicationId, FeatureBlock, SessionKind, WorkflowId};
use handoff_store::Store;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait, Value,
};

use crate::seed::Source;

fn statement(backend: DatabaseBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DatabaseBackend::Postgres {
        let mut n = 0;
        sql.chars()
            .map(|c| {
                if c == '?' {
                    n += 1;
                    format!("${n}")
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// A transaction that takes SQLite's write lock at `BEGIN`, as handoff's writes do.
async fn begin_immediate(
    db: &sea_orm::DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    db.begin_with_options(TransactionOptions {
        isolation_level: None,
        access_mode: None,
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
    })
    .await
}

pub async fn clone_by_hand(
    store: &Store, source: &Source, receiver: ApplicationId, workflow: WorkflowId,
) -> Result<(), sea_orm::DbErr> {
    let db = store.write_connection();
    let backend = db.get_database_backend();
    let txn = begin_immediate(db).await?;
    let clone = uuid::Uuid::new_v4();
    let now = chrono::Utc::now();
    txn.execute_raw(statement(
        backend,
        "UPDATE applications SET last_session_number = last_session_number + 1 WHERE id = ?",
        vec![receiver.as_uuid().into()],
    ))
    .await?;
    let entity = txn
        .query_one_raw(statement(
            backend,
            "INSERT INTO entities (id, application_id, kind, vendor_data, vendor_data_key, status, created_at) \
             SELECT ?, ?, kind, vendor_data, lower(vendor_data), 'ACTIVE', ? FROM sessions WHERE id = ? \
             ON CONFLICT (application_id, kind, vendor_data_key) DO UPDATE SET status = entities.status RETURNING id",
            vec![uuid::Uuid::new_v4().into(), receiver.as_uuid().into(), now.into(), source.session_id.as_uuid().into()],
        ))
        .await?
        .map(|row| row.try_get::<uuid::Uuid>("", "id"))
        .transpose()?;
    txn.execute_raw(statement(
        backend,
        "INSERT INTO sessions (id, application_id, kind, session_number, session_token, session_url, status, workflow_id, \
         features, vendor_data, entity_id, metadata, callback, contact_details, expected_details, shared_from_session, \
         recorded_blocks, created_at, expires_at, data_key, name_words, country) \
         SELECT ?, ?, kind, (SELECT last_session_number FROM applications WHERE id = ?), ?, ?, 'In Review', ?, features, \
         vendor_data, ?, NULL, NULL, contact_details, expected_details, id, recorded_blocks, ?, ?, data_key, name_words, \
         country FROM sessions WHERE id = ?",
        vec![
            clone.into(),
            receiver.as_uuid().into(),
            receiver.as_uuid().into(),
            clone.simple().to_string().into(),
            format!("https://verify.example.test/session/{}", clone.simple()).into(),
            workflow.as_uuid().into(),
            entity.into(),
            now.into(),
            (now + chrono::Duration::days(7)).into(),
            source.session_id.as_uuid().into(),
        ],
    ))
    .await?;
    for block in FeatureBlock::for_kind(SessionKind::User) {
        txn.execute_raw(statement(
            backend,
            &format!("INSERT INTO {0} (session_id, position, node_id, status, item) SELECT ?, position, node_id, status, item FROM {0} WHERE session_id = ?", block.v3_key()),
            vec![clone.into(), source.session_id.as_uuid().into()],
        ))
        .await?;
    }
    txn.execute_raw(statement(
        backend,
        "INSERT INTO session_logs (session_id, kind, actor, action, old_status, new_status, comment, details, created_at) \
         SELECT ?, kind, actor, action, old_status, new_status, comment, details, created_at FROM session_logs WHERE session_id = ?",
        vec![clone.into(), source.session_id.as_uuid().into()],
    ))
    .await?;
    txn.execute_raw(statement(
        backend,
        "INSERT INTO session_logs (session_id, kind, actor, action, old_status, new_status, comment, details, created_at) \
         VALUES (?, 'event', 'bench', 'imported', 'Approved', 'In Review', NULL, NULL, ?)",
        vec![clone.into(), now.into()],
    ))
    .await?;
    txn.execute_raw(statement(
        backend,
        "UPDATE share_tokens SET redeemed_at = ?, redeemed_session_id = ? WHERE jti = ? AND redeemed_at IS NULL",
        vec![now.into(), clone.into(), source.jti.clone().into()],
    ))
    .await?;
    txn.commit().await
}

/// The limit on SQLite with the fewest crossings to the driver's worker thread: the statements
/// of [`clone_by_hand`] sent as one command inside `BEGIN IMMEDIATE` … `COMMIT` (SQLite has no
/// statement that writes several tables, so this is as few as SQLite allows). `answer`: the
/// command ends with a read of the clone as handoff answers it — the session's row, its items
/// (sealed text) packed and its reviews as JSON, in one row — which tells what answering costs
/// on SQLite (a diagnostic, not a limit).
pub async fn clone_in_one_command(
    store: &Store, source: &Source, receiver: ApplicationId, workflow: WorkflowId, answer: bool,
) -> Result<(), sea_orm::DbErr> {
    let db = store.write_connection();
    let txn = begin_immediate(db).await?;
    let clone = uuid::Uuid::new_v4();
    let now = chrono::Utc::now();
    let (receiver, source_id) = (receiver.as_uuid(), source.session_id.as_uuid());
    // Positional parameters only: sqlx binds each statement's from where the last one's ended.
    let mut sql = String::new();
    let mut values: Vec<Value> = Vec::new();
    let mut push = |statement: &str, bound: Vec<Value>| {
        sql.push_str(statement);
        sql.push_str(";\n");
        values.extend(bound);
    };
    push(
        "UPDATE applications SET last_session_number = last_session_number + 1 WHERE id = ?",
        vec![receiver.into()],
    );
    push(
        "INSERT INTO entities (id, application_id, kind, vendor_data, vendor_data_key, status, created_at) \
         SELECT ?, ?, kind, vendor_data, lower(vendor_data), 'ACTIVE', ? FROM sessions WHERE id = ? \
         AND vendor_data IS NOT NULL \
         ON CONFLICT (application_id, kind, vendor_data_key) DO UPDATE SET status = entities.status",
        vec![uuid::Uuid::new_v4().into(), receiver.into(), now.into(), source_id.into()],
    );
    push(
        "INSERT INTO sessions (id, application_id, kind, session_number, session_token, session_url, status, \
         workflow_id, features, vendor_data, entity_id, metadata, callback, contact_details, expected_details, \
         shared_from_session, recorded_blocks, created_at, expires_at, data_key, name_words, country) \
         SELECT ?, ?, s.kind, (SELECT last_session_number FROM applications WHERE id = ?), ?, ?, \
         'In Review', ?, s.features, s.vendor_data, e.id, NULL, NULL, s.contact_details, s.expected_details, \
         s.id, s.recorded_blocks, ?, ?, s.data_key, s.name_words, s.country FROM sessions s LEFT JOIN entities e ON e.application_id = ? \
         AND e.kind = s.kind AND e.vendor_data_key = lower(s.vendor_data) WHERE s.id = ?",
        vec![
            clone.into(),
            receiver.into(),
            receiver.into(),
            clone.simple().to_string().into(),
            format!("https://verify.example.test/session/{}", clone.simple()).into(),
            workflow.as_uuid().into(),
            now.into(),
            (now + chrono::Duration::days(7)).into(),
            receiver.into(),
            source_id.into(),
        ],
    );
    for block in FeatureBlock::for_kind(SessionKind::User) {
        push(
            &format!(
                "INSERT INTO {0} (session_id, position, node_id, status, item) \
                 SELECT ?, position, node_id, status, item FROM {0} WHERE session_id = ?",
                block.v3_key()
            ),
            vec![clone.into(), source_id.into()],
        );
    }
    push(
        "INSERT INTO session_logs (session_id, kind, actor, action, old_status, new_status, comment, details, created_at) \
         SELECT ?, kind, actor, action, old_status, new_status, comment, details, created_at FROM session_logs \
         WHERE session_id = ?",
        vec![clone.into(), source_id.into()],
    );
    push(
        "INSERT INTO session_logs (session_id, kind, actor, action, old_status, new_status, comment, details, created_at) \
         VALUES (?, 'event', 'bench', 'imported', 'Approved', 'In Review', NULL, NULL, ?)",
        vec![clone.into(), now.into()],
    );
    push(
        "UPDATE share_tokens SET redeemed_at = ?, redeemed_session_id = ? WHERE jti = ? AND redeemed_at IS NULL",
        vec![now.into(), clone.into(), source.jti.clone().into()],
    );
    if answer {
        // Built once, as the import's own statements are.
        static READ_CLONE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT s.*, answer.items, answer.reviews FROM sessions s \
                 CROSS JOIN ({}) AS answer WHERE s.id = ?",
                handoff_store::sqlite_answer_select()
            )
        });
        push(
            &READ_CLONE,
            std::iter::repeat_n(clone.into(), FeatureBlock::ALL.len())
                .chain([Value::from("bench"), clone.into(), clone.into()])
                .collect(),
        );
    }
    let command = Statement::from_sql_and_values(DatabaseBackend::Sqlite, sql, values);
    if !answer {
        txn.execute_raw(command).await?;
        return txn.commit().await;
    }
    let row = txn
        .query_one_raw(command)
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom("no clone".into()))?;
    // Read what handoff reads, without decoding it further.
    let _: Option<String> = row.try_get("", "items")?;
    let _: Option<String> = row.try_get("", "reviews")?;
    let _: String = row.try_get("", "features")?;
    txn.commit().await
}

/// The limit on PostgreSQL, where data-modifying `WITH` lets the whole clone be one statement
/// (and so its own transaction): counter, entity, session, every block, the logs, the
/// redemption. `answer`: it also returns the clone as handoff's statement does — the session's
/// columns, its items (sealed text) and reviews aggregated as JSON — which tells the database's share of
/// handoff's answer from the rest (a diagnostic, not a limit).
pub async fn clone_in_one_statement(
    store: &Store, source: &Source, receiver: ApplicationId, workflow: WorkflowId, answer: bool,
) -> Result<(), sea_orm::DbErr> {
    let db = store.connection();
    let clone = uuid::Uuid::new_v4();
    let now = chrono::Utc::now();
    let returning = |columns: &str| {
        if answer { format!(" RETURNING {columns}") } else { String::new() }
    };
    let mut sql = String::from(
        "WITH src AS (SELECT * FROM sessions WHERE id = $1), \
         counter AS (UPDATE applications SET last_session_number = last_session_number + 1 \
           WHERE id = $2 AND EXISTS (SELECT 1 FROM src) RETURNING last_session_number), \
         entity AS (INSERT INTO entities (id, application_id, kind, vendor_data, vendor_data_key, status, created_at) \
           SELECT $3, $2, kind, vendor_data, lower(vendor_data), 'ACTIVE', $4 FROM src WHERE vendor_data IS NOT NULL \
           ON CONFLICT (application_id, kind, vendor_data_key) DO UPDATE SET status = entities.status RETURNING id), \
         clone AS (INSERT INTO sessions (id, application_id, kind, session_number, session_token, session_url, status, \
           workflow_id, features, vendor_data, entity_id, metadata, callback, contact_details, expected_details, \
           shared_from_session, recorded_blocks, created_at, expires_at, data_key, name_words, country) \
           SELECT $5, $2, kind, counter.last_session_number, $6, $7, 'In Review', $8, features, vendor_data, \
           (SELECT id FROM entity), NULL, NULL, contact_details, expected_details, src.id, recorded_blocks, $4, $9, \
           data_key, name_words, country FROM src, counter RETURNING *), \
         redeemed AS (UPDATE share_tokens SET redeemed_at = $4, redeemed_session_id = $5 \
           WHERE jti = $10 AND redeemed_at IS NULL), ",
    );
    for block in FeatureBlock::for_kind(SessionKind::User) {
        sql.push_str(&format!(
            "c_{0} AS (INSERT INTO {0} (session_id, position, node_id, status, item) \
             SELECT $5, position, node_id, status, item FROM {0} WHERE session_id = $1{1}), ",
            block.v3_key(),
            returning("position, node_id, status, item"),
        ));
    }
    sql.push_str(&format!(
        "logs AS (INSERT INTO session_logs (session_id, kind, actor, action, old_status, new_status, comment, details, created_at) \
         SELECT $5, kind, actor, action, old_status, new_status, comment, details, created_at FROM ( \
           SELECT 0 AS ord, id, kind, actor, action, old_status, new_status, comment, details, created_at \
           FROM session_logs WHERE session_id = $1 \
           UNION ALL SELECT 1, 0, 'event', 'bench', 'imported', 'Approved', 'In Review', NULL, NULL, $4 FROM clone) l \
         ORDER BY ord, id{}) ",
        returning("id, kind, actor, new_status, comment, created_at"),
    ));
    if answer {
        let items = FeatureBlock::for_kind(SessionKind::User)
            .iter()
            .map(|block| {
                format!(
                    "SELECT '{0}' AS block, position, node_id, status, item FROM c_{0}",
                    block.v3_key()
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        sql.push_str(&format!(
            "SELECT 1 AS n, clone.*, \
             CAST((SELECT json_agg(json_build_array(block, position, node_id, status, item)) \
             FROM ({items}) AS i) AS text) AS items, \
             CAST((SELECT json_agg(json_build_array(id, actor, new_status, comment, created_at)) \
             FROM logs WHERE kind = 'review') AS text) AS reviews FROM clone"
        ));
    } else {
        sql.push_str("SELECT count(*) AS n FROM clone");
    }
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            sql,
            vec![
                source.session_id.as_uuid().into(),
                receiver.as_uuid().into(),
                uuid::Uuid::new_v4().into(),
                now.into(),
                clone.into(),
                clone.simple().to_string().into(),
                format!("https://verify.example.test/session/{}", clone.simple()).into(),
                workflow.as_uuid().into(),
                (now + chrono::Duration::days(7)).into(),
                source.jti.clone().into(),
            ],
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom("no row".into()))?;
    if answer {
        // Read what handoff reads, without decoding it further.
        let _: Option<String> = row.try_get("", "items")?;
        let _: Option<String> = row.try_get("", "reviews")?;
        let _: String = row.try_get("", "features")?;
        return Ok(());
    }
    let n: i64 = row.try_get("", "n")?;
    if n == 1 { Ok(()) } else { Err(sea_orm::DbErr::Custom(format!("{n} sessions cloned"))) }
}
