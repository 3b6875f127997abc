//! Creating a session: its idempotency key, its number, its entity, its row, its log row and
//! their events. A session without `vendor_data` is one statement on PostgreSQL, one command
//! on SQLite, its data key made before it: each round trip waits for the cores when another
//! tenant keeps them busy, and on SQLite each command holds the one writer longer
//! (`docs/performance.md`).

use super::*;
use crate::sealing::NewSessionKey;
use crate::sql::{Batch, Failure, is_foreign_key_violation};

impl Store {
    /// `SessionRepository::create_session`.
    pub(super) async fn create(
        &self, s: &NewSession, log: &LogEntry,
    ) -> Result<StoredSession, RepoError> {
        if s.vendor_data.is_none()
            && let Some(stored) = self.create_in_one_command(s, log).await?
        {
            return Ok(stored);
        }
        self.create_in_transaction(s, log).await
    }

    /// The session in one statement (PostgreSQL) or one command in a transaction (SQLite),
    /// its key made before it; `None` when the application's key changed meanwhile (erased,
    /// sealed again), was never made, or the command broke a foreign key (a workflow deleted
    /// meanwhile): [`Store::create_in_transaction`] tells which, and answers.
    async fn create_in_one_command(
        &self, s: &NewSession, log: &LogEntry,
    ) -> Result<Option<StoredSession>, RepoError> {
        let Some(key) = self.new_session_key_to_check(&self.db, s.application_id).await? else {
            return Ok(None);
        };
        let written = self.write_in_one_command(s, log, key).await?;
        if written.is_none() {
            // Perhaps a key kept from before it changed: read again next time.
            self.forget_application_key(s.application_id);
        }
        Ok(written)
    }

    /// [`Store::create_in_one_command`] with the key read before.
    async fn write_in_one_command(
        &self, s: &NewSession, log: &LogEntry,
        NewSessionKey { key, wrapped, stored }: NewSessionKey,
    ) -> Result<Option<StoredSession>, RepoError> {
        let backend = self.backend();
        let mut batch = Batch::default();
        if let Some(claim) = &s.idempotency {
            batch.push_built(Some(crate::idempotency::insert_claim(
                s.application_id,
                claim,
                IdempotentOperation::CreateSession,
                s.id.to_string(),
            )?));
        }
        // The counter and the session's row, only while the application's key is the one the
        // data key was made under; else no row is written, and the log row breaks its foreign
        // key.
        let counter = batch.next_part();
        let mut update = counter_update(s.application_id);
        let mut numbered = Query::select();
        if backend == DatabaseBackend::Postgres {
            numbered.from(Alias::new(counter.as_str()));
        } else {
            numbered
                .from(Applications::Table)
                .and_where(Expr::col(Applications::Id).eq(s.application_id.as_uuid()));
        }
        if let Some(stored) = stored {
            update.and_where(Expr::col(Applications::DataKey).eq(stored.clone()));
            if backend != DatabaseBackend::Postgres {
                numbered.and_where(Expr::col(Applications::DataKey).eq(stored));
            }
        }
        batch.push_built(Some(update));
        let number = SessionNumber::Counted(Box::new(numbered));
        batch.push_built(Some(session_insert(s, &key, wrapped, None, number)?));
        batch.push_built(Some(log_insert(s.id, log)?));
        batch.push_built(crate::outbox::events_insert_of(s.application_id, s.id, log)?);
        let rows = if backend == DatabaseBackend::Postgres {
            let (sql, values) =
                batch.statement_selecting(&format!("SELECT last_session_number FROM {counter}"));
            crate::import::fetch(&self.db, &sql, values).await
        } else {
            let _turn = self.write_turn().await;
            let txn = self.begin_write().await?;
            let (sql, values) = batch.command(backend);
            // Dropped on an error: rolled back.
            let rows = crate::import::fetch(&txn, &sql, values).await;
            if rows.is_ok() {
                commit(txn).await?;
            }
            rows
        };
        match rows {
            Ok(rows) => match rows.first() {
                Some(row) => Ok(Some(s.stored(get(row, "last_session_number")?))),
                None => Ok(None),
            },
            Err(Failure::Db(error)) if crate::idempotency::is_idempotency_violation(&error) => {
                Err(RepoError::IdempotencyKeyTaken)
            }
            Err(Failure::Db(error)) if is_foreign_key_violation(&error) => Ok(None),
            Err(Failure::Db(error)) => Err(repo_error(error)),
            Err(Failure::Repo(error)) => Err(error),
        }
    }

    /// The session in a write transaction: the application's key read (made) there, an
    /// unfinished session reused, the entity found or made.
    async fn create_in_transaction(
        &self, s: &NewSession, log: &LogEntry,
    ) -> Result<StoredSession, RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        if s.reuse_unfinished && s.vendor_data.is_some() {
            // The counter row, locked without a new number, serializes this choice with every
            // creation of the application's sessions; then an unfinished session is reused.
            lock_counter(&txn, s.application_id).await?;
            if let Some(reused) = reuse_unfinished(self, &txn, s).await? {
                commit(txn).await?;
                return Ok(reused);
            }
        }
        // The key first: a concurrent retry with it waits here, then writes nothing.
        crate::idempotency::claim(
            &txn,
            s.application_id,
            s.idempotency.as_ref(),
            IdempotentOperation::CreateSession,
            s.id.to_string(),
        )
        .await?;
        // The counter row is the lock that serializes session numbers of one application, on
        // PostgreSQL and across processes.
        let session_number = next_session_number(&txn, s.application_id).await?;
        let (key, wrapped) = self.new_session_key(&txn, s.application_id).await?;
        let entity_id = match &s.vendor_data {
            Some(vendor_data) => Some(
                ensure_entity(
                    &txn,
                    s.entity_id,
                    s.application_id,
                    s.kind,
                    vendor_data,
                    s.created_at,
                )
                .await?
                .0,
            ),
            None => None,
        };
        let number = SessionNumber::Known(session_number);
        let insert = session_insert(s, &key, wrapped, entity_id, number)?;
        run(&txn, &insert).await?;
        insert_log(&txn, s.id, log).await?;
        commit(txn).await?;
        Ok(s.stored(session_number))
    }
}

/// Where a new session's number comes from.
enum SessionNumber {
    Known(i64),
    /// The `last_session_number` of the row this selects from (the counter's): no session
    /// row written when there is none.
    Counted(Box<SelectStatement>),
}

/// The new session's row, its personal values sealed under `key`.
fn session_insert(
    s: &NewSession, key: &SessionKey, wrapped: Option<Vec<u8>>, entity_id: Option<Uuid>,
    number: SessionNumber,
) -> Result<sea_orm::sea_query::InsertStatement, RepoError> {
    let number_value = match &number {
        SessionNumber::Known(number) => Expr::val(*number),
        SessionNumber::Counted(_) => Expr::col(Applications::LastSessionNumber),
    };
    let values: [Expr; 22] = [
        s.id.as_uuid().into(),
        s.application_id.as_uuid().into(),
        s.kind.as_str().into(),
        number_value,
        s.session_token.clone().into(),
        s.session_url.clone().into(),
        s.status.as_str().into(),
        s.workflow_id.as_uuid().into(),
        features_text(&s.features).into(),
        s.vendor_data.as_ref().map(|v| v.as_str().to_owned()).into(),
        rows::sealed_json_text(s.metadata.as_ref(), "metadata", key)?.into(),
        s.callback.clone().into(),
        rows::sealed_json_text(s.contact_details.as_ref(), "contact_details", key)?.into(),
        rows::sealed_json_text(s.expected_details.as_ref(), "expected_details", key)?.into(),
        Option::<Uuid>::None.into(),
        String::new().into(),
        s.created_at.into(),
        s.expires_at.into(),
        rows::options_text(&s.options).into(),
        0i64.into(),
        wrapped.into(),
        entity_id.into(),
    ];
    let mut insert = Query::insert()
        .into_table(Sessions::Table)
        .columns(SESSION_READ.into_iter().chain([Sessions::EntityId]))
        .to_owned();
    match number {
        SessionNumber::Known(_) => insert.values(values).map(drop),
        SessionNumber::Counted(mut numbered) => {
            insert.select_from(numbered.exprs(values).to_owned()).map(drop)
        }
    }
    .map_err(crate::sql::insert_mismatch)?;
    Ok(insert)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};
    use handoff_domain::action::LogAction;
    use handoff_domain::ports::{ApplicationRepository, WorkflowRepository};
    use handoff_domain::workflow::Feature;
    use handoff_domain::{
        ApiKey, Application, SessionStatus, Workflow, WorkflowFeature, WorkflowId,
    };
    use handoff_migrations::{Migrator, MigratorTrait};
    use handoff_testdb::{Backend, TestDatabase, skip};

    use super::*;
    use crate::StoreOptions;

    /// A new session of `workflow`, without `vendor_data`.
    fn new_session(workflow: &Workflow) -> NewSession {
        let id = Uuid::new_v4();
        let created_at = Utc::now();
        NewSession {
            id: SessionId::from_uuid(id),
            application_id: workflow.application_id,
            kind: workflow.kind,
            workflow_id: workflow.id,
            features: workflow.decision_features(),
            session_token: id.simple().to_string(),
            session_url: format!("http://test/session/{}", id.simple()),
            status: SessionStatus::NotStarted,
            vendor_data: None,
            entity_id: EntityId::from_uuid(Uuid::new_v4()),
            metadata: Some(serde_json::json!({"k": "v"})),
            callback: None,
            options: Default::default(),
            contact_details: None,
            expected_details: None,
            created_at,
            expires_at: created_at + Duration::days(7),
            idempotency: None,
            reuse_unfinished: false,
        }
    }

    #[tokio::test]
    async fn a_key_changed_after_it_was_read_writes_nothing_and_the_transaction_answers_sqlite() {
        a_key_changed_after_it_was_read_writes_nothing_and_the_transaction_answers(Backend::Sqlite)
            .await;
    }

    #[tokio::test]
    async fn a_key_changed_after_it_was_read_writes_nothing_and_the_transaction_answers_postgres() {
        a_key_changed_after_it_was_read_writes_nothing_and_the_transaction_answers(
            Backend::Postgres,
        )
        .await;
    }

    async fn a_key_changed_after_it_was_read_writes_nothing_and_the_transaction_answers(
        backend: Backend,
    ) {
        if skip(backend) {
            return;
        }
        let db = TestDatabase::create(backend).await;
        let kek = || {
            handoff_token::KeyEncryptionKey::from_secret(b"the create test's key-encryption key")
                .unwrap()
        };
        let store =
            Store::connect(db.url(), &StoreOptions::default()).await.unwrap().sealing_with(kek());
        Migrator::up(store.connection(), None).await.unwrap();
        let application = ApplicationId::from_uuid(Uuid::new_v4());
        let (_, api_key) = ApiKey::generate(application).unwrap();
        let app = Application { id: application, name: "Test".into(), created_at: Utc::now() };
        store.create_application(&app, &api_key).await.unwrap();
        let workflow = Workflow {
            id: WorkflowId::from_uuid(Uuid::new_v4()),
            application_id: application,
            label: "wf".into(),
            kind: handoff_domain::SessionKind::User,
            features: vec![WorkflowFeature {
                feature: Feature::Ocr,
                config: serde_json::json!({}),
                label: None,
            }],
            is_default: false,
            session_expiration_time: 604_800,
            settings: Default::default(),
            created_at: Utc::now(),
            version: 1,
        };
        store.create_workflow(&workflow).await.unwrap();
        let log = LogEntry {
            kind: LogKind::Event,
            actor: "test".into(),
            action: LogAction::Created,
            old_status: None,
            new_status: None,
            comment: None,
            details: None,
            created_at: Utc::now(),
        };
        // The first session makes the application's key, in a transaction.
        let first = store.create(&new_session(&workflow), &log).await.unwrap();
        assert_eq!(first.session_number, 1);
        // The second's key is made under it (which this store now keeps); then another
        // process erases the application.
        let stale = store.new_session_key_to_check(&store.db, application).await.unwrap().unwrap();
        assert!(stale.stored.is_some());
        let other =
            Store::connect(db.url(), &StoreOptions::default()).await.unwrap().sealing_with(kek());
        other.erase_application(application).await.unwrap();
        let second = new_session(&workflow);
        assert!(store.write_in_one_command(&second, &log, stale).await.unwrap().is_none());
        let count = |sql: &'static str| {
            let store = &store;
            async move {
                let row = store
                    .db
                    .query_one_raw(Statement::from_string(store.backend(), sql))
                    .await
                    .unwrap()
                    .unwrap();
                row.try_get_by_index::<i64>(0).unwrap()
            }
        };
        assert_eq!(count("SELECT COUNT(*) FROM sessions").await, 1);
        assert_eq!(count("SELECT COUNT(*) FROM session_logs").await, 1);
        assert_eq!(count("SELECT MAX(last_session_number) FROM applications").await, 1);
        // Created again, it is written under the application's new key, and opens.
        let created = store.create(&second, &log).await.unwrap();
        assert_eq!(created.session_number, 2);
        // The kept key that was found changed is forgotten: the next creation's is the one
        // stored now (before a read opens a session, which keeps the key again).
        let next = store.new_session_key_to_check(&store.db, application).await.unwrap().unwrap();
        let stored = store
            .db
            .query_one_raw(Statement::from_string(
                store.backend(),
                "SELECT data_key FROM applications",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<Vec<u8>>(0)
            .unwrap();
        assert_eq!(next.stored, Some(stored));
        let found = store.find_session(application, second.id).await.unwrap().unwrap();
        assert_eq!(found.session.metadata, Some(serde_json::json!({"k": "v"})));
        let third = store.create(&new_session(&workflow), &log).await.unwrap();
        assert_eq!(third.session_number, 3);
    }
}
