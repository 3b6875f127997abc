//! A fresh migrated store per test, and small builders for the rows tests need.

use chrono::{DateTime, Duration, Utc};
use handoff_domain::action::LogAction;
use handoff_domain::ports::{ApplicationRepository, SessionRepository, WorkflowRepository};
use handoff_domain::workflow::Feature;
use handoff_domain::{
    ApiKey, Application, ApplicationId, LogEntry, LogKind, NewSession, SessionId, SessionKind,
    SessionStatus, StoredSession, VendorData, Workflow, WorkflowFeature, WorkflowId,
};
use handoff_migrations::{Migrator, MigratorTrait};
use handoff_store::{Store, StoreOptions};
use handoff_testdb::{Backend, TestDatabase};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

/// Runs each named test body — a plain `async fn name(db: TestStore)` beside the call — once per
/// backend, on a fresh migrated store (`handoff_testdb::on_each_backend`).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        handoff_testdb::on_each_backend!($crate::support::TestStore::new; $($name),*);
    };
}
pub(crate) use on_both_backends;

/// The backend itself, for tests that make their own database.
pub async fn backend(backend: Backend) -> Backend {
    backend
}

/// A migrated store on a throwaway database.
pub struct TestStore {
    pub store: Store,
    _db: TestDatabase,
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl TestStore {
    pub async fn new(backend: Backend) -> TestStore {
        let db = TestDatabase::create(backend).await;
        // Sealing, as every server's store.
        let store = Store::connect(db.url(), &StoreOptions::default())
            .await
            .unwrap()
            .sealing_with(test_kek());
        Migrator::up(store.connection(), None).await.unwrap();
        TestStore { store, _db: db }
    }

    /// How many rows a table holds.
    pub async fn count(&self, table: &str) -> i64 {
        let backend = self.store.connection().get_database_backend();
        let row = self
            .store
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                backend,
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }

    /// Makes a destination of `application` subscribed to `events`; its id.
    pub async fn destination(
        &self, application: ApplicationId, events: Vec<handoff_domain::webhook::WebhookType>,
    ) -> handoff_domain::DestinationId {
        use handoff_domain::ports::WebhookRepository;
        use handoff_domain::webhook::{Destination, DestinationUrl, SealedSecret};
        let destination = Destination {
            id: Uuid::new_v4().into(),
            application_id: application,
            label: "hook".into(),
            url: DestinationUrl::parse("https://hooks.example.com/x", false).unwrap(),
            enabled: true,
            webhook_version: "v3".into(),
            subscribed_events: events,
            created_at: now(),
            updated_at: now(),
            previous_secret_until: None,
        };
        let secret = SealedSecret { bytes: vec![1; 40], sealed_with: "k-test".into() };
        self.store.create_destination(&destination, &secret).await.unwrap();
        destination.id
    }

    /// The rows a query selects.
    pub async fn rows(&self, sql: &str) -> Vec<sea_orm::QueryResult> {
        let backend = self.store.connection().get_database_backend();
        self.store
            .connection()
            .query_all_raw(sea_orm::Statement::from_string(backend, sql.to_owned()))
            .await
            .unwrap()
    }

    pub async fn application(&self) -> ApplicationId {
        let id = ApplicationId::from_uuid(Uuid::new_v4());
        let (_, key) = ApiKey::generate(id).unwrap();
        let app = Application { id, name: "Test".into(), created_at: now() };
        self.store.create_application(&app, &key).await.unwrap();
        id
    }

    pub async fn workflow(&self, application_id: ApplicationId, kind: SessionKind) -> Workflow {
        let features = match kind {
            SessionKind::User => vec![Feature::Ocr, Feature::Liveness, Feature::Aml],
            SessionKind::Business => vec![Feature::KybRegistry, Feature::Aml],
        };
        let workflow = Workflow {
            id: WorkflowId::from_uuid(Uuid::new_v4()),
            application_id,
            label: "wf".into(),
            kind,
            features: features
                .into_iter()
                .map(|feature| WorkflowFeature {
                    feature,
                    config: serde_json::json!({}),
                    label: None,
                })
                .collect(),
            is_default: false,
            session_expiration_time: 604_800,
            settings: Default::default(),
            created_at: now(),
            version: 1,
        };
        self.store.create_workflow(&workflow).await.unwrap();
        workflow
    }

    pub async fn session(&self, workflow: &Workflow, vendor_data: Option<&str>) -> StoredSession {
        self.session_in(&self.store, workflow, vendor_data).await
    }

    /// [`Self::session`], written through `store` (on the same database).
    pub async fn session_in(
        &self, store: &Store, workflow: &Workflow, vendor_data: Option<&str>,
    ) -> StoredSession {
        let created_at = now();
        let id = Uuid::new_v4();
        let session = NewSession {
            id: SessionId::from_uuid(id),
            application_id: workflow.application_id,
            kind: workflow.kind,
            workflow_id: workflow.id,
            features: workflow.decision_features(),
            session_token: id.simple().to_string(),
            session_url: format!("http://test/session/{}", id.simple()),
            status: SessionStatus::NotStarted,
            vendor_data: vendor_data.map(|v| VendorData::parse(v).unwrap()),
            entity_id: handoff_domain::EntityId::from_uuid(Uuid::new_v4()),
            metadata: Some(serde_json::json!({"k": "v"})),
            callback: None,
            options: Default::default(),
            contact_details: None,
            expected_details: None,
            created_at,
            expires_at: created_at + Duration::seconds(workflow.session_expiration_time),
            idempotency: None,
            reuse_unfinished: false,
        };
        store.create_session(&session, &event(LogAction::Created)).await.unwrap()
    }

    /// Another store on this database that keeps everything in clear, as versions before
    /// sealing did.
    pub async fn in_clear(&self) -> Store {
        Store::connect(self._db.url(), &StoreOptions::default()).await.unwrap()
    }
}

pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

pub fn event(action: LogAction) -> LogEntry {
    LogEntry {
        kind: LogKind::Event,
        actor: "test".into(),
        action,
        old_status: None,
        new_status: None,
        comment: None,
        details: None,
        created_at: now(),
    }
}

/// The key-encryption key of the tests' stores.
pub fn test_kek() -> handoff_token::KeyEncryptionKey {
    handoff_token::KeyEncryptionKey::from_secret(b"the store tests' key-encryption key, 32+ bytes")
        .unwrap()
}
