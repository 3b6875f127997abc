//! Applications and API keys.

use handoff_domain::ports::ApplicationRepository;
use handoff_domain::{ApiKey, ApplicationId};
use uuid::Uuid;

use crate::support::{TestStore, now, on_both_backends};

on_both_backends!(keys_are_found_by_prefix_until_revoked);
async fn keys_are_found_by_prefix_until_revoked(db: TestStore) {
    let app = db.application().await;
    let (key, stored) = ApiKey::generate(app).unwrap();
    assert!(db.add_api_key(&stored, now()).await.unwrap());
    let found = db.find_api_key(key.prefix()).await.unwrap().unwrap();
    assert_eq!(found.application_id, app);
    assert!(key.matches(&found.hash));
    assert_eq!(found.grant, handoff_domain::Grant::every_right());
    // Only a hash is stored: the clear key appears in no column.
    assert_eq!(db.count("api_keys").await, 2);

    let other = ApplicationId::from_uuid(Uuid::new_v4());
    assert!(
        !db.revoke_api_key(other, key.prefix(), now()).await.unwrap(),
        "another application cannot revoke it"
    );
    assert!(db.revoke_api_key(app, key.prefix(), now()).await.unwrap());
    assert!(db.find_api_key(key.prefix()).await.unwrap().is_none());
    assert!(!db.revoke_api_key(app, key.prefix(), now()).await.unwrap(), "already revoked");
}

on_both_backends!(a_named_keys_grant_is_stored_and_listed_as_given);
async fn a_named_keys_grant_is_stored_and_listed_as_given(db: TestStore) {
    use handoff_domain::grant::parse_address_block;
    use handoff_domain::{Grant, WorkflowId};
    let app = db.application().await;
    let (primary, stored) = ApiKey::generate(app).unwrap();
    assert!(db.add_api_key(&stored, now() + chrono::Duration::milliseconds(500)).await.unwrap());
    let grant = Grant {
        scopes: Some(vec!["sessions:read".parse().unwrap(), "reviews:write".parse().unwrap()]),
        workflows: Some(vec![WorkflowId::from_uuid(Uuid::new_v4())]),
        addresses: vec![
            parse_address_block("10.0.0.0/8").unwrap(),
            parse_address_block("2001:db8::1").unwrap(),
        ],
        expires_at: Some(now() + chrono::Duration::days(1)),
    };
    let (named, mut stored) = ApiKey::generate(app).unwrap();
    stored.name = Some("partner portal".into());
    stored.grant = grant.clone();
    let later = now() + chrono::Duration::seconds(1);
    assert!(db.add_api_key(&stored, later).await.unwrap());
    let found = db.find_api_key(named.prefix()).await.unwrap().unwrap();
    assert_eq!(found.grant, grant);
    db.revoke_api_key(app, primary.prefix(), later).await.unwrap();

    let listed = db.list_api_keys(app).await.unwrap();
    // The application's own first key, then the two added, oldest first.
    assert_eq!(listed.len(), 3);
    let [.., first, second] = listed.as_slice() else { unreachable!() };
    assert_eq!((first.prefix.as_str(), first.name.as_deref()), (primary.prefix(), None));
    assert!(first.revoked_at.is_some());
    assert_eq!(first.grant, Grant::every_right());
    assert_eq!(second.prefix, named.prefix());
    assert_eq!(second.name.as_deref(), Some("partner portal"));
    assert_eq!((&second.grant, second.revoked_at), (&grant, None));
    let other = db.application().await;
    assert_eq!(db.list_api_keys(other).await.unwrap().len(), 1, "another application's own key");
}

on_both_backends!(a_key_for_an_unknown_application_is_refused);
async fn a_key_for_an_unknown_application_is_refused(db: TestStore) {
    let (_, stored) = ApiKey::generate(ApplicationId::from_uuid(Uuid::new_v4())).unwrap();
    assert!(!db.add_api_key(&stored, now()).await.unwrap());
    assert_eq!(db.count("api_keys").await, 0);
}

on_both_backends!(applications_are_listed_oldest_first);
async fn applications_are_listed_oldest_first(db: TestStore) {
    let first = db.application().await;
    let second = db.application().await;
    let listed: Vec<_> = db.list_applications().await.unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&first) && listed.contains(&second));
    assert!(db.application_exists(first).await.unwrap());
    assert!(!db.application_exists(ApplicationId::from_uuid(Uuid::new_v4())).await.unwrap());
}

on_both_backends!(migrations_go_down_and_up_again);
async fn migrations_go_down_and_up_again(db: TestStore) {
    use handoff_migrations::{Migrator, MigratorTrait};
    db.application().await;
    Migrator::down(db.connection(), None).await.unwrap();
    Migrator::up(db.connection(), None).await.unwrap();
    assert_eq!(db.count("applications").await, 0);
}

on_both_backends!(console_sessions_end_when_idle_expired_or_closed);
async fn console_sessions_end_when_idle_expired_or_closed(db: TestStore) {
    use chrono::Duration;
    use handoff_domain::Caller;
    use handoff_domain::console::{ConsoleSession, ConsoleSessionHash};
    let app = db.application().await;
    let t0 = now();
    let session = ConsoleSession {
        caller: Caller::primary(app, "0123456789ab"),
        csrf: "c".repeat(32),
        expires_at: t0 + Duration::hours(8),
        reviewer: None,
        time_zone: None,
    };
    let idle = Duration::minutes(30);
    let touch = |id: &'static str, at: chrono::DateTime<chrono::Utc>| {
        let db = &db;
        async move { db.touch_console_session(ConsoleSessionHash::of(id), at, at - idle).await.unwrap() }
    };
    db.open_console_session(ConsoleSessionHash::of("a"), &session, t0, t0 - idle).await.unwrap();
    assert_eq!(touch("a", t0 + Duration::minutes(20)).await, Some(session.clone()));
    // Used 20 minutes in; idle from 50 minutes in.
    assert!(touch("a", t0 + Duration::minutes(49)).await.is_some());
    assert!(touch("a", t0 + Duration::minutes(80)).await.is_none(), "idle");
    assert!(touch("b", t0).await.is_none(), "another id");
    // Past its lifetime, however recently used.
    db.open_console_session(ConsoleSessionHash::of("c"), &session, t0, t0 - idle).await.unwrap();
    let mut at = t0;
    while at < t0 + Duration::hours(8) {
        at += Duration::minutes(25);
        let current = touch("c", at).await;
        assert_eq!(current.is_some(), at < t0 + Duration::hours(8), "at {at}");
    }
    // Closed: gone; only the hash is stored.
    db.open_console_session(ConsoleSessionHash::of("d"), &session, t0, t0 - idle).await.unwrap();
    db.close_console_session(ConsoleSessionHash::of("d")).await.unwrap();
    assert!(touch("d", t0).await.is_none());
}

on_both_backends!(settings_are_kept_and_retentions_listed);
async fn settings_are_kept_and_retentions_listed(db: TestStore) {
    use handoff_domain::application::ApplicationSettings;
    use handoff_domain::retention::RetentionDays;
    let kept = db.application().await;
    let forever = db.application().await;
    assert_eq!(db.application_settings(kept).await.unwrap(), Some(ApplicationSettings::default()));
    let settings = ApplicationSettings {
        require_consent: true,
        retention: RetentionDays::new(30),
        console_api_keys: true,
    };
    assert!(db.update_application_settings(kept, &settings).await.unwrap());
    assert_eq!(db.application_settings(kept).await.unwrap(), Some(settings));
    assert_eq!(db.retention_policies().await.unwrap(), [(kept, RetentionDays::new(30).unwrap())]);
    let unlimited = ApplicationSettings { retention: None, ..settings };
    assert!(db.update_application_settings(kept, &unlimited).await.unwrap());
    assert!(db.retention_policies().await.unwrap().is_empty());
    let nowhere = ApplicationId::from_uuid(Uuid::new_v4());
    assert!(!db.update_application_settings(nowhere, &settings).await.unwrap());
    assert_eq!(db.application_settings(nowhere).await.unwrap(), None);
    assert_eq!(
        db.application_settings(forever).await.unwrap(),
        Some(ApplicationSettings::default())
    );
}

on_both_backends!(reviewers_are_kept_found_and_removed_with_their_console_sessions);
async fn reviewers_are_kept_found_and_removed_with_their_console_sessions(db: TestStore) {
    use handoff_domain::console::{ConsoleSession, ConsoleSessionHash};
    use handoff_domain::reviewer::{Reviewer, ReviewerRole, StoredReviewer};
    use handoff_domain::webhook::SealedSecret;
    let app = db.application().await;
    let reviewer = |application, email: &str| StoredReviewer {
        reviewer: Reviewer {
            id: handoff_domain::ReviewerId::from_uuid(Uuid::new_v4()),
            application_id: application,
            email: email.into(),
            role: ReviewerRole::Admin,
            totp: true,
            time_zone: None,
            created_at: now(),
        },
        password_hash: "$argon2id$…".into(),
        totp_secret: Some(SealedSecret { bytes: vec![7; 40], sealed_with: "kek-1".into() }),
        failed_sign_ins: 0,
        locked_until: None,
    };
    let ana = reviewer(app, "ana@bank.example");
    assert!(db.add_reviewer(&ana).await.unwrap());
    let other_app = db.application().await;
    assert!(!db.add_reviewer(&reviewer(other_app, "ana@bank.example")).await.unwrap(), "taken");
    let nowhere = ApplicationId::from_uuid(Uuid::new_v4());
    assert!(!db.add_reviewer(&reviewer(nowhere, "ben@bank.example")).await.unwrap());
    assert_eq!(db.list_reviewers(app).await.unwrap(), std::slice::from_ref(&ana.reviewer));
    assert!(db.list_reviewers(other_app).await.unwrap().is_empty());
    let found = db.find_reviewer_by_email("ana@bank.example").await.unwrap().unwrap();
    assert_eq!(found.totp_secret.as_ref().map(|s| s.bytes.len()), Some(40));
    assert_eq!(found.password_hash, ana.password_hash);

    let until = now() + chrono::Duration::minutes(15);
    db.record_sign_in_failures(ana.reviewer.id, 0, Some(until)).await.unwrap();
    let locked = db.find_reviewer_by_email("ana@bank.example").await.unwrap().unwrap();
    assert_eq!(locked.locked_until, Some(until));

    // A console session of the reviewer ends with a password change, and with its removal.
    let open = |hash: [u8; 32]| {
        let session = ConsoleSession {
            caller: handoff_domain::Caller::primary(app, "reviewer-x"),
            csrf: "c".into(),
            expires_at: now() + chrono::Duration::hours(1),
            reviewer: Some(ana.reviewer.id),
            time_zone: None,
        };
        let db = &db;
        async move {
            db.open_console_session(
                ConsoleSessionHash(hash),
                &session,
                now(),
                now() - chrono::Duration::hours(1),
            )
            .await
            .unwrap();
        }
    };
    open([1; 32]).await;
    let touched = db
        .touch_console_session(
            ConsoleSessionHash([1; 32]),
            now(),
            now() - chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(touched.unwrap().reviewer, Some(ana.reviewer.id));
    assert!(db.set_reviewer_password(ana.reviewer.id, "$argon2id$new").await.unwrap());
    assert_eq!(db.count("console_sessions").await, 0, "ended by the change");
    open([2; 32]).await;
    assert!(!db.remove_reviewer(other_app, "ana@bank.example").await.unwrap(), "not theirs");
    assert!(db.remove_reviewer(app, "ana@bank.example").await.unwrap());
    assert_eq!(db.count("console_sessions").await, 0, "ended by the removal");
    assert!(db.find_reviewer(ana.reviewer.id).await.unwrap().is_none());
}

on_both_backends!(a_key_another_process_revokes_stops_authenticating_here);
/// A store watching for key changes keeps the keys it looked up, and forgets one when another
/// process revokes it, or when it stops hearing of changes (on PostgreSQL its listening
/// connection ends; on SQLite the count of changes cannot be read).
async fn a_key_another_process_revokes_stops_authenticating_here(db: TestStore) {
    use sea_orm::{ConnectionTrait, DatabaseBackend};
    let postgres = db.connection().get_database_backend() == DatabaseBackend::Postgres;
    let watch = tokio::spawn(db.store.clone().watch_api_keys());
    // Another process on the same database.
    let other = db.in_clear().await;
    let app = db.application().await;
    let key = || async {
        let (key, stored) = ApiKey::generate(app).unwrap();
        assert!(db.add_api_key(&stored, now()).await.unwrap());
        key.prefix().to_owned()
    };
    let forgotten = |prefix: String| {
        let db = &db;
        async move { wait_for(|| async { db.find_api_key(&prefix).await.unwrap().is_none() }).await }
    };
    let revoke_unheard = |prefix: String| {
        let (db, other) = (&db, &other);
        async move { revoke_unheard(db, other, app, postgres, &prefix).await }
    };
    // A key looked up, then revoked unheard, that this store still answers from memory: tried
    // again for as long as the store does not hear of changes yet.
    let kept_unheard = || async {
        for _ in 0..100 {
            let prefix = key().await;
            assert!(db.find_api_key(&prefix).await.unwrap().is_some());
            revoke_unheard(prefix.clone()).await;
            if db.find_api_key(&prefix).await.unwrap().is_some() {
                return Some(prefix);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        None
    };
    if postgres {
        let listening = wait_for(|| async { !db.rows(LISTENERS).await.is_empty() }).await;
        assert!(listening, "the store listens for key changes");
    }

    let revoked = key().await;
    assert!(db.find_api_key(&revoked).await.unwrap().is_some());
    assert!(other.revoke_api_key(app, &revoked, now()).await.unwrap());
    assert!(forgotten(revoked).await, "a revocation elsewhere is seen here");

    // A change that goes unheard is not seen while the key is kept…
    let unheard = kept_unheard().await.expect("a kept key is answered from memory");
    // …until the store stops hearing of changes, and forgets what it kept.
    let (lose, restore) = if postgres {
        (format!("SELECT pg_terminate_backend(pid) FROM ({LISTENERS}) AS listeners"), None)
    } else {
        let away = "ALTER TABLE api_key_changes RENAME TO api_key_changes_away";
        (away.to_owned(), Some("ALTER TABLE api_key_changes_away RENAME TO api_key_changes"))
    };
    db.connection().execute_unprepared(&lose).await.unwrap();
    assert!(forgotten(unheard).await, "a watch that stops hearing forgets every kept key");
    if let Some(restore) = restore {
        db.connection().execute_unprepared(restore).await.unwrap();
    }

    // It hears of changes again, and keeps keys again.
    assert!(kept_unheard().await.is_some(), "the store keeps keys again");
    let announced = key().await;
    assert!(db.find_api_key(&announced).await.unwrap().is_some());
    assert!(other.revoke_api_key(app, &announced, now()).await.unwrap());
    assert!(forgotten(announced).await);
    watch.abort();
}

/// Revokes `prefix` unheard by a watch: on PostgreSQL with the trigger off, on SQLite with the
/// count of changes put back in the same transaction.
async fn revoke_unheard(
    db: &TestStore, other: &handoff_store::Store, app: ApplicationId, postgres: bool, prefix: &str,
) {
    use sea_orm::ConnectionTrait;
    if postgres {
        let trigger = |on: &str| format!("ALTER TABLE api_keys {on} TRIGGER api_key_changed");
        db.connection().execute_unprepared(&trigger("DISABLE")).await.unwrap();
        assert!(other.revoke_api_key(app, prefix, now()).await.unwrap());
        db.connection().execute_unprepared(&trigger("ENABLE")).await.unwrap();
    } else {
        let revoke = format!(
            "BEGIN; UPDATE api_keys SET revoked_at = '2026-01-01 00:00:00' \
             WHERE prefix = '{prefix}'; \
             UPDATE api_key_changes SET generation = generation - 1; COMMIT"
        );
        db.connection().execute_unprepared(&revoke).await.unwrap();
    }
}

/// The connections of this test's database that listen (PostgreSQL).
const LISTENERS: &str = "SELECT pid FROM pg_stat_activity \
     WHERE datname = current_database() AND query LIKE 'LISTEN%'";

/// Whether `condition` holds within 5 seconds, asked every 20 ms.
async fn wait_for<F: std::future::Future<Output = bool>>(condition: impl Fn() -> F) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}
