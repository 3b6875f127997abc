//! Sharing across deployments: the partners an operator added, the issuer's side of an
//! exchange (the redemption recorded, the session read for the partner), and the receiver's
//! (the clone written from what the partner handed over). `docs/federation.md`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::federation::{
    HandOver, HandOverContext, HandOverOutcome, Partner, PartnerCloneState, PartnerSession,
    first_failed_issuer_check,
};
use handoff_domain::idempotency::IdempotentOperation;
use handoff_domain::ports::{PartnerImport, PartnerRepository};
use handoff_domain::session::Review;
use handoff_domain::{
    ApplicationId, FeatureItem, ImportOutcome, ImportWorkflow, LogEntry, LogKind, RecordedToken,
    RepoError, SessionId, SessionKind, SessionRecord, ShareClaims, StoredSession, WorkflowId,
};
use sea_orm::sea_query::{Expr, ExprTrait, LockType, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction, QueryResult};
use uuid::Uuid;

use crate::Store;
use crate::rows::{self, get, recorded_blocks_text, sealed_json_text};
use crate::schema::{PartnerRedemptions, Partners, SessionLogs, Sessions, ShareTokens};
use crate::sealing::{ListingTerms, SessionKey};
use crate::sessions::{
    LOG_COLUMNS, SESSION_READ, ensure_entity, features_text, item_inserts, log_insert, log_values,
    next_session_number, read_blocks, select_session,
};
use crate::sql::{Batch, commit, fetch_all, fetch_one, is_unique_violation, repo_error, run};

fn partner(row: &QueryResult) -> Result<Partner, RepoError> {
    let corrupt = |what: &str| RepoError::Internal(format!("stored partner {what}").into());
    let applications: Vec<Uuid> = serde_json::from_str(&get::<String>(row, "applications")?)
        .map_err(|_| corrupt("applications"))?;
    Ok(Partner {
        name: get(row, "name")?,
        url: get(row, "url")?,
        applications: applications.into_iter().map(ApplicationId::from_uuid).collect(),
        keys: serde_json::from_str(&get::<String>(row, "jwks")?).map_err(|_| corrupt("keys"))?,
        keys_fetched_at: get(row, "keys_fetched_at")?,
        added_at: get(row, "added_at")?,
    })
}

fn select_partners() -> sea_orm::sea_query::SelectStatement {
    Query::select().columns(Partners::COLUMNS.iter().copied()).from(Partners::Table).to_owned()
}

#[async_trait]
impl PartnerRepository for Store {
    async fn add_partner(&self, p: &Partner) -> Result<bool, RepoError> {
        let applications: Vec<Uuid> = p.applications.iter().map(|a| a.as_uuid()).collect();
        let insert = Query::insert()
            .into_table(Partners::Table)
            .columns(Partners::COLUMNS.iter().copied())
            .values([
                p.name.clone().into(),
                p.url.clone().into(),
                serde_json::Value::from(
                    applications.iter().map(ToString::to_string).collect::<Vec<_>>(),
                )
                .to_string()
                .into(),
                p.keys.to_string().into(),
                p.keys_fetched_at.into(),
                p.added_at.into(),
            ])
            .map_err(crate::sql::insert_mismatch)?
            .to_owned();
        let _turn = self.write_turn().await;
        match self.db.execute(&insert).await {
            Ok(_) => Ok(true),
            Err(error) if is_unique_violation(&error) => Ok(false),
            Err(error) => Err(repo_error(error)),
        }
    }

    async fn partners(&self) -> Result<Vec<Partner>, RepoError> {
        let select = select_partners().order_by(Partners::Name, Order::Asc).to_owned();
        fetch_all(&self.db, &select).await?.iter().map(partner).collect()
    }

    async fn remove_partner(&self, name: &str) -> Result<bool, RepoError> {
        let delete = Query::delete()
            .from_table(Partners::Table)
            .and_where(Expr::col(Partners::Name).eq(name))
            .to_owned();
        let _turn = self.write_turn().await;
        Ok(run(&self.db, &delete).await? > 0)
    }

    async fn partner_at(&self, url: &str) -> Result<Option<Partner>, RepoError> {
        let select = select_partners().and_where(Expr::col(Partners::Url).eq(url)).to_owned();
        fetch_one(&self.db, &select).await?.as_ref().map(partner).transpose()
    }

    async fn replace_partner_keys(
        &self, url: &str, keys: &serde_json::Value, at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let update = Query::update()
            .table(Partners::Table)
            .value(Partners::Jwks, keys.to_string())
            .value(Partners::KeysFetchedAt, at)
            .and_where(Expr::col(Partners::Url).eq(url))
            .to_owned();
        let _turn = self.write_turn().await;
        run(&self.db, &update).await.map(|_| ())
    }

    async fn hand_over(&self, hand_over: &HandOver) -> Result<HandOverOutcome, RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        let (context, recorded, key) = hand_over_context(self, &txn, &hand_over.claims).await?;
        if let Some(check) = first_failed_issuer_check(&context, hand_over) {
            txn.rollback().await.map_err(repo_error)?;
            return Ok(HandOverOutcome::Refused(check));
        }
        let Some(source) = context.source else {
            return Err(RepoError::Internal("the checked source vanished".into()));
        };
        // Only the blocks the share carries, as its ledger row names them.
        let (recorded, _) = hand_over.claims.split(&recorded);
        let (blocks, log) = if hand_over.redeem {
            let first = !context.token.as_ref().is_some_and(|t| t.redeemed);
            if first {
                // The token's row is the transaction's (locked on PostgreSQL; SQLite's writer),
                // so the redemption changes it: in one command with the source's log row and
                // its events.
                let mut batch = Batch::default();
                batch.push_built(Some(
                    Query::update()
                        .table(ShareTokens::Table)
                        .value(ShareTokens::RedeemedAt, hand_over.at)
                        .value(ShareTokens::RedeemedByPartner, hand_over.partner_url.clone())
                        .and_where(Expr::col(ShareTokens::Jti).eq(hand_over.claims.jti.clone()))
                        .and_where(Expr::col(ShareTokens::RedeemedAt).is_null())
                        .to_owned(),
                ));
                batch.push_built(Some(log_insert(source.id, &hand_over.source_log)?));
                batch.push_built(crate::outbox::events_insert(source.id, &hand_over.source_log)?);
                run_batch(&txn, batch).await?;
            }
            (
                read_blocks(&txn, source.id, &recorded, &key).await?,
                copied_log(&txn, source.id, &key).await?,
            )
        } else {
            (recorded.iter().map(|block| (*block, Vec::new())).collect(), Vec::new())
        };
        commit(txn).await?;
        Ok(HandOverOutcome::Handed(Box::new(PartnerSession {
            id: source.id,
            kind: source.kind,
            status: source.status,
            vendor_data: source.vendor_data,
            features: source.features,
            contact_details: source.contact_details,
            expected_details: source.expected_details,
            created_at: source.created_at,
            blocks,
            log,
        })))
    }

    async fn partner_clone_state(
        &self, application_id: ApplicationId, issuer: &str, jti: &str, source: SessionId,
        workflow: WorkflowId,
    ) -> Result<PartnerCloneState, RepoError> {
        clone_state(&self.db, application_id, issuer, jti, source, workflow).await
    }

    async fn import_from_partner(
        &self, import: &PartnerImport,
    ) -> Result<ImportOutcome, RepoError> {
        let attempt = &import.attempt;
        let clone_id = attempt.clone_id;
        let blocks: Vec<_> = import
            .source
            .blocks
            .iter()
            .map(|(block, items)| (*block, Some(items.clone())))
            .collect();
        // The clone's own data key: what the partner handed over comes in clear.
        let (key, wrapped) = self.new_session_key(&self.db, attempt.application_id).await?;
        // Built with `?` placeholders, as the clone's one command takes them on both backends.
        let inserts = item_inserts(DatabaseBackend::Sqlite, clone_id, &blocks, &key)?;
        let sealed = SealedClone { terms: self.listing_terms(&import.source.blocks), wrapped, key };
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        match write_partner_clone(&txn, import, inserts, sealed).await {
            Ok(Some(record)) => match commit(txn).await {
                Ok(()) => Ok(ImportOutcome::Imported(Box::new(record))),
                Err(error) => self.lost_race(import, Some(error)).await,
            },
            Ok(None) => {
                txn.rollback().await.map_err(repo_error)?;
                self.lost_race(import, None).await
            }
            Err(error) => {
                drop(txn);
                self.lost_race(import, Some(error)).await
            }
        }
    }
}

impl Store {
    /// After a write that did not happen — refused by a check inside the transaction
    /// (`error` `None`) or failed — the receiver's clone when it holds one (a concurrent import
    /// won), else a refusal when the token was redeemed here or a check refused, else the error.
    async fn lost_race(
        &self, import: &PartnerImport, error: Option<RepoError>,
    ) -> Result<ImportOutcome, RepoError> {
        if let Some(RepoError::IdempotencyKeyTaken) = error {
            return Err(RepoError::IdempotencyKeyTaken);
        }
        let attempt = &import.attempt;
        let state = clone_state(
            &self.db,
            attempt.application_id,
            &import.issuer,
            attempt.claims.jti.as_deref().unwrap_or_default(),
            import.source.id,
            attempt.workflow_id,
        )
        .await?;
        match (state.existing_clone, state.redeemed, error) {
            (Some(existing), ..) => Ok(ImportOutcome::AlreadyImported(existing)),
            (None, true, _) | (None, false, None) => Ok(ImportOutcome::Refused),
            (None, false, Some(error)) => Err(error),
        }
    }
}

/// Runs `batch` as one command in `txn`.
async fn run_batch(txn: &DatabaseTransaction, batch: Batch) -> Result<(), RepoError> {
    let (sql, values) = batch.command(txn.get_database_backend());
    crate::import::fetch(txn, &sql, values).await.map(drop).map_err(|failure| match failure {
        crate::sql::Failure::Db(error) => repo_error(error),
        crate::sql::Failure::Repo(error) => error,
    })
}

/// The token's ledger row (locked on PostgreSQL until the transaction ends) and the source.
async fn hand_over_context(
    store: &Store, txn: &DatabaseTransaction, claims: &ShareClaims,
) -> Result<(HandOverContext, Vec<handoff_domain::FeatureBlock>, SessionKey), RepoError> {
    let mut select = Query::select()
        .columns(ShareTokens::COLUMNS.iter().copied())
        .from(ShareTokens::Table)
        .and_where(Expr::col(ShareTokens::Jti).eq(claims.jti.clone()))
        .to_owned();
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        select.lock(LockType::Update);
    }
    let (token, redeemed_by_partner) = match fetch_one(txn, &select).await? {
        Some(row) => {
            let kind: String = get(&row, "session_kind")?;
            let token = RecordedToken {
                claims: ShareClaims {
                    session_id: SessionId::from_uuid(get(&row, "session_id")?),
                    session_kind: SessionKind::parse(&kind).ok_or_else(|| {
                        RepoError::Internal(format!("stored token kind {kind:?}").into())
                    })?,
                    from_application_id: ApplicationId::from_uuid(get(
                        &row,
                        "from_application_id",
                    )?),
                    for_application_id: ApplicationId::from_uuid(get(&row, "for_application_id")?),
                    issued_at: get(&row, "issued_at")?,
                    expires_at: get(&row, "expires_at")?,
                    jti: Some(get(&row, "jti")?),
                    blocks: rows::share_blocks(&row, "blocks")?,
                    consent: rows::share_consent(&row, "consent")?,
                },
                revoked: get::<Option<DateTime<Utc>>>(&row, "revoked_at")?.is_some(),
                redeemed: get::<Option<DateTime<Utc>>>(&row, "redeemed_at")?.is_some(),
            };
            (Some(token), get(&row, "redeemed_by_partner")?)
        }
        None => (None, None),
    };
    // An erased source is not there.
    let (mut source, mut recorded, mut key) = (None, Vec::new(), SessionKey::Clear);
    if let Some(row) = fetch_one(txn, &select_session(claims.session_id)).await? {
        key = store.row_key(txn, &row).await?;
        if !matches!(key, SessionKey::Erased) {
            let (session, blocks) = rows::session(&row, &key)?;
            (source, recorded) = (Some(session), blocks);
        }
    }
    Ok((HandOverContext { token, redeemed_by_partner, source }, recorded, key))
}

/// The source's log rows a clone copies, oldest first.
async fn copied_log(
    txn: &DatabaseTransaction, id: SessionId, key: &SessionKey,
) -> Result<Vec<handoff_domain::LogEntry>, RepoError> {
    let select = Query::select()
        .column(sea_orm::sea_query::Asterisk)
        .from(SessionLogs::Table)
        .and_where(Expr::col(SessionLogs::SessionId).eq(id.as_uuid()))
        .order_by(SessionLogs::Id, Order::Asc)
        .to_owned();
    let mut log = Vec::new();
    for row in fetch_all(txn, &select).await? {
        let entry = rows::log_entry(&row, key)?;
        if entry.copied_to_clones() {
            log.push(entry);
        }
    }
    Ok(log)
}

/// [`PartnerRepository::partner_clone_state`], on a connection or inside a transaction: one
/// query.
async fn clone_state<C: ConnectionTrait>(
    db: &C, application_id: ApplicationId, issuer: &str, jti: &str, source: SessionId,
    workflow: WorkflowId,
) -> Result<PartnerCloneState, RepoError> {
    const SQL: &str = "SELECT \
        (SELECT c.id FROM sessions c WHERE c.application_id = ? AND c.shared_from_session = ?) \
        AS clone_id, \
        (SELECT count(*) FROM partner_redemptions r WHERE r.issuer = ? AND r.jti = ?) AS redeemed, \
        w.kind AS workflow_kind, w.session_expiration_time AS workflow_expiration \
        FROM (SELECT 1 AS probe) AS probe \
        LEFT JOIN workflows w ON w.id = ? AND w.application_id = ? AND w.deleted_at IS NULL";
    let application = application_id.as_uuid();
    let rows = crate::import::fetch(
        db,
        SQL,
        vec![
            application.into(),
            source.as_uuid().into(),
            issuer.into(),
            jti.into(),
            workflow.as_uuid().into(),
            application.into(),
        ],
    )
    .await
    .map_err(|failure| match failure {
        crate::sql::Failure::Db(error) => repo_error(error),
        crate::sql::Failure::Repo(error) => error,
    })?;
    let row = rows.first().ok_or_else(|| RepoError::Internal("no state row".into()))?;
    let workflow = match get::<Option<String>>(row, "workflow_kind")? {
        Some(_) => Some(ImportWorkflow {
            kind: rows::kind(row, "workflow_kind")?,
            session_expiration_time: get(row, "workflow_expiration")?,
        }),
        None => None,
    };
    Ok(PartnerCloneState {
        existing_clone: get::<Option<Uuid>>(row, "clone_id")?.map(SessionId::from_uuid),
        redeemed: get::<i64>(row, "redeemed")? > 0,
        workflow,
    })
}

/// The clone's writes inside the transaction; `None` when a check fails there.
/// A partner's clone's data key, wrapped for its row, and what lists find it by.
struct SealedClone {
    key: SessionKey,
    wrapped: Option<Vec<u8>>,
    terms: ListingTerms,
}

async fn write_partner_clone(
    txn: &DatabaseTransaction, import: &PartnerImport, inserts: Vec<Vec<sea_orm::Statement>>,
    sealed: SealedClone,
) -> Result<Option<SessionRecord>, RepoError> {
    let (attempt, source) = (&import.attempt, &import.source);
    let receiver = attempt.application_id;
    let state = clone_state(
        txn,
        receiver,
        &import.issuer,
        attempt.claims.jti.as_deref().unwrap_or_default(),
        source.id,
        attempt.workflow_id,
    )
    .await?;
    if state.existing_clone.is_some() || state.redeemed {
        return Ok(None);
    }
    let Some(workflow) = state.workflow.filter(|w| w.kind == source.kind) else {
        return Ok(None);
    };

    if let Some(claim) = &attempt.idempotency {
        let insert = crate::idempotency::insert_claim(
            receiver,
            claim,
            IdempotentOperation::Import,
            attempt.clone_id.to_string(),
        )?;
        if let Err(error) = txn.execute(&insert).await {
            return Err(if crate::idempotency::is_idempotency_violation(&error) {
                RepoError::IdempotencyKeyTaken
            } else {
                repo_error(error)
            });
        }
    }
    let vendor_data = attempt.vendor_data.as_ref().or(source.vendor_data.as_ref());
    let entity = match vendor_data {
        Some(vendor_data) => Some(
            ensure_entity(
                txn,
                attempt.entity_id,
                receiver,
                source.kind,
                vendor_data,
                attempt.created_at,
            )
            .await?,
        ),
        None => None,
    };
    let status = attempt.status(source.status, entity.map(|(_, s)| s), &import.blocklisted);
    let session_number = next_session_number(txn, receiver).await?;
    let recorded: Vec<_> = source.blocks.iter().map(|(block, _)| *block).collect();
    let session = StoredSession {
        id: attempt.clone_id,
        application_id: receiver,
        kind: source.kind,
        session_number,
        session_token: attempt.session_token.clone(),
        session_url: attempt.session_url.clone(),
        status,
        workflow_id: attempt.workflow_id,
        features: source.features.clone(),
        vendor_data: vendor_data.cloned(),
        metadata: None,
        callback: None,
        options: Default::default(),
        revision: 0,
        contact_details: source.contact_details.clone(),
        expected_details: source.expected_details.clone(),
        shared_from_session: Some(source.id),
        created_at: attempt.created_at,
        expires_at: attempt.expires_at(workflow),
    };
    let insert = Query::insert()
        .into_table(Sessions::Table)
        .columns(SESSION_READ.into_iter().chain([
            Sessions::EntityId,
            Sessions::BlocklistKeys,
            Sessions::BlocklistIp,
            Sessions::NameWords,
            Sessions::Country,
        ]))
        .values([
            session.id.as_uuid().into(),
            receiver.as_uuid().into(),
            session.kind.as_str().into(),
            session_number.into(),
            session.session_token.clone().into(),
            session.session_url.clone().into(),
            status.as_str().into(),
            session.workflow_id.as_uuid().into(),
            features_text(&session.features).into(),
            session.vendor_data.as_ref().map(|v| v.as_str().to_owned()).into(),
            Option::<String>::None.into(),
            Option::<String>::None.into(),
            sealed_json_text(session.contact_details.as_ref(), "contact_details", &sealed.key)?
                .into(),
            sealed_json_text(session.expected_details.as_ref(), "expected_details", &sealed.key)?
                .into(),
            Some(source.id.as_uuid()).into(),
            recorded_blocks_text(&recorded).into(),
            session.created_at.into(),
            session.expires_at.into(),
            rows::options_text(&session.options).into(),
            0i64.into(),
            sealed.wrapped.into(),
            entity.map(|(id, _)| id).into(),
            import.keys.keys_json().into(),
            import.keys.ip.clone().into(),
            sealed.terms.name_words.into(),
            sealed.terms.country.into(),
        ])
        .map_err(crate::sql::insert_mismatch)?
        .to_owned();
    // The clone's rows in one command: its session row, items, copied log rows, the import's
    // row and its events, the redemption.
    let mut batch = Batch::default();
    batch.push_built(Some(insert));
    for insert in inserts.into_iter().flatten() {
        batch.push(&insert.sql, insert.values.map(|values| values.0).unwrap_or_default());
    }
    // The source's log rows, their actor the source application's.
    let mut reviews = Vec::new();
    let mut copied = Query::insert()
        .into_table(SessionLogs::Table)
        .columns(std::iter::once(SessionLogs::SessionId).chain(LOG_COLUMNS))
        .to_owned();
    for entry in &source.log {
        let entry = LogEntry { actor: attempt.copied_actor(), ..entry.clone() };
        let stored = LogEntry {
            comment: entry.comment.as_deref().map(|c| sealed.key.seal("comment", c)).transpose()?,
            ..entry.clone()
        };
        copied
            .values(
                std::iter::once(session.id.as_uuid().into())
                    .chain(log_values(&stored))
                    .map(Expr::val),
            )
            .map_err(crate::sql::insert_mismatch)?;
        if let (LogKind::Review, Some(new_status)) = (entry.kind, entry.new_status) {
            reviews.push(Review {
                user: entry.actor,
                new_status,
                comment: entry.comment,
                created_at: entry.created_at,
            });
        }
    }
    batch.push_built((!source.log.is_empty()).then_some(copied));
    let log = attempt.import_log(source.status, status, &import.blocklisted);
    batch.push_built(Some(log_insert(session.id, &log)?));
    batch.push_built(Some(
        Query::insert()
            .into_table(PartnerRedemptions::Table)
            .columns(PartnerRedemptions::COLUMNS.iter().copied())
            .values([
                import.issuer.clone().into(),
                attempt.claims.jti.clone().into(),
                receiver.as_uuid().into(),
                session.id.as_uuid().into(),
                attempt.created_at.into(),
            ])
            .map_err(crate::sql::insert_mismatch)?
            .to_owned(),
    ));
    batch.push_built(crate::outbox::events_insert_of(receiver, session.id, &log)?);
    run_batch(txn, batch).await?;
    let blocks: Vec<(handoff_domain::FeatureBlock, Vec<FeatureItem>)> = source.blocks.clone();
    Ok(Some(SessionRecord { session, blocks, reviews }))
}
