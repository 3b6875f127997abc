//! User and Business entities.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::entity::{EntityFilter, EntityPage, EntityUpdate, NewEntity, SessionCounts};
use handoff_domain::ports::EntityRepository;
use handoff_domain::webhook::WebhookType;
use handoff_domain::{
    ApplicationId, Entity, EntityId, EntityStatus, RepoError, SessionKind, SessionStatus,
    VendorData,
};

use sea_orm::sea_query::{
    Alias, Cond, Expr, ExprTrait, Func, InsertStatement, LikeExpr, LockType, OnConflict, Order,
    Query, SelectStatement,
};

use handoff_domain::vendor_data::KEY_VERSION;
use sea_orm::{ConnectionTrait, DatabaseBackend, QueryResult};
use uuid::Uuid;

use crate::Store;
use crate::rows::{get, kind, text_or_null};
use crate::schema::{Entities, Sessions};
use crate::sql::{
    commit, fetch_all, fetch_one, insert_row, is_unique_violation, like_pattern, repo_error, run,
};

/// Entities with their sessions counted (what [`entity_of`] reads); conditions follow.
fn entity_select() -> SelectStatement {
    let (e, sessions) = (Entities::Table, Sessions::Table);
    let of_entity = |aggregate: Expr, status: Option<SessionStatus>| {
        let mut counted = Query::select()
            .expr(aggregate)
            .from(sessions)
            .and_where(Expr::col((sessions, Sessions::EntityId)).equals((e, Entities::Id)))
            .to_owned();
        if let Some(status) = status {
            counted.and_where(Expr::col((sessions, Sessions::Status)).eq(status.as_str()));
        }
        Expr::SubQuery(None, Box::new(counted.into()))
    };
    let count = || Func::count(Expr::col((sessions, Sessions::Id))).into();
    let created = || Expr::col((sessions, Sessions::CreatedAt));
    Query::select()
        .columns([
            (e, Entities::Id),
            (e, Entities::Kind),
            (e, Entities::VendorData),
            (e, Entities::Status),
            (e, Entities::DisplayName),
            (e, Entities::Metadata),
            (e, Entities::CreatedAt),
            (e, Entities::StatusReason),
            (e, Entities::StatusUpdatedAt),
        ])
        .expr_as(of_entity(count(), None), Alias::new("session_count"))
        .expr_as(of_entity(count(), Some(SessionStatus::Approved)), Alias::new("approved_count"))
        .expr_as(of_entity(count(), Some(SessionStatus::Declined)), Alias::new("declined_count"))
        .expr_as(of_entity(count(), Some(SessionStatus::InReview)), Alias::new("in_review_count"))
        .expr_as(of_entity(Func::min(created()).into(), None), Alias::new("first_session_at"))
        .expr_as(of_entity(Func::max(created()).into(), None), Alias::new("last_session_at"))
        .from(e)
        .to_owned()
}

impl Store {
    /// An entity row read with [`entity_select`], its sealed profile opened with `application`'s
    /// key.
    async fn open_entity(
        &self, application: ApplicationId, row: &QueryResult,
    ) -> Result<Entity, RepoError> {
        let (display_name, metadata) = self.open_profile(&self.db, application, row).await?;
        entity_of(row, display_name, metadata.as_deref())
    }

    /// The `display_name` and `metadata` texts of an entity row, opened.
    async fn open_profile<C: ConnectionTrait>(
        &self, db: &C, application: ApplicationId, row: &QueryResult,
    ) -> Result<(Option<String>, Option<String>), RepoError> {
        let mut opened = [None, None];
        for (slot, column) in opened.iter_mut().zip(["display_name", "metadata"]) {
            if let Some(text) = text_or_null(row, column)? {
                *slot =
                    Some(self.open_for_application(db, application.as_uuid(), column, text).await?);
            }
        }
        let [display_name, metadata] = opened;
        Ok((display_name, metadata))
    }

    /// [`Self::open_profile`], the metadata parsed.
    async fn open_entity_profile<C: ConnectionTrait>(
        &self, db: &C, application: ApplicationId, row: &QueryResult,
    ) -> Result<(Option<String>, Option<serde_json::Value>), RepoError> {
        let (display_name, metadata) = self.open_profile(db, application, row).await?;
        let metadata = metadata
            .map(|text| {
                serde_json::from_str(&text)
                    .map_err(|_| RepoError::Internal("stored metadata is not JSON".into()))
            })
            .transpose()?;
        Ok((display_name, metadata))
    }

    /// An entity's profile as its row keeps it: `display_name` and `metadata` sealed under the
    /// application's key, and the name's blind index.
    async fn sealed_profile<C: ConnectionTrait>(
        &self, db: &C, application: ApplicationId, display_name: Option<&str>,
        metadata: Option<&serde_json::Value>,
    ) -> Result<(Option<String>, Option<String>, Option<String>), RepoError> {
        let app = application.as_uuid();
        let name = match display_name {
            Some(name) => Some(self.seal_for_application(db, app, "display_name", name).await?),
            None => None,
        };
        let metadata = match metadata {
            Some(value) => {
                Some(self.seal_for_application(db, app, "metadata", &value.to_string()).await?)
            }
            None => None,
        };
        Ok((name, metadata, self.name_words(display_name)))
    }
}

fn entity_of(
    row: &QueryResult, display_name: Option<String>, metadata: Option<&str>,
) -> Result<Entity, RepoError> {
    let status: String = get(row, "status")?;
    let stored_vendor_data: String = get(row, "vendor_data")?;
    let moment = |column: &str| -> Result<Option<DateTime<Utc>>, RepoError> {
        // Aggregates come back as text on SQLite.
        match get::<Option<DateTime<Utc>>>(row, column) {
            Ok(value) => Ok(value),
            Err(_) => text_or_null(row, column)?
                .map(|text| {
                    DateTime::parse_from_rfc3339(&text)
                        .map(|t| t.with_timezone(&Utc))
                        .or_else(|_| {
                            chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f%:z")
                                .map(|t| t.and_utc())
                        })
                        .map_err(|_| RepoError::Internal(format!("stored time {text:?}").into()))
                })
                .transpose(),
        }
    };
    Ok(Entity {
        id: EntityId::from_uuid(get(row, "id")?),
        kind: kind(row, "kind")?,
        vendor_data: VendorData::parse(&stored_vendor_data)
            .map_err(|_| RepoError::Internal("stored vendor_data is not valid".into()))?,
        status: EntityStatus::parse(&status).ok_or_else(|| {
            RepoError::Internal(format!("stored entity status {status:?}").into())
        })?,
        display_name,
        metadata: metadata.and_then(|text| serde_json::from_str(text).ok()),
        counts: SessionCounts {
            session_count: get(row, "session_count")?,
            approved_count: get(row, "approved_count")?,
            declined_count: get(row, "declined_count")?,
            in_review_count: get(row, "in_review_count")?,
            first_session_at: moment("first_session_at")?,
            last_session_at: moment("last_session_at")?,
        },
        created_at: get(row, "created_at")?,
        status_reason: text_or_null(row, "status_reason")?,
        status_updated_at: get(row, "status_updated_at")?,
    })
}

#[async_trait]
impl EntityRepository for Store {
    async fn find_entity(
        &self, application_id: ApplicationId, entity_kind: SessionKind, vendor_data: &VendorData,
    ) -> Result<Option<Entity>, RepoError> {
        let select = entity_select()
            .and_where(
                Expr::col((Entities::Table, Entities::ApplicationId)).eq(application_id.as_uuid()),
            )
            .and_where(Expr::col((Entities::Table, Entities::Kind)).eq(entity_kind.as_str()))
            .and_where(Expr::col((Entities::Table, Entities::VendorDataKey)).eq(vendor_data.key()))
            .to_owned();
        match fetch_one(&self.db, &select).await? {
            Some(row) => self.open_entity(application_id, &row).await.map(Some),
            None => Ok(None),
        }
    }

    async fn update_entity(
        &self, application_id: ApplicationId, entity_kind: SessionKind, vendor_data: &VendorData,
        update: &EntityUpdate,
    ) -> Result<Option<Entity>, RepoError> {
        {
            let _turn = self.write_turn().await;
            let txn = self.begin_write().await?;
            let mut select = Query::select()
                .columns([
                    Entities::Id,
                    Entities::Status,
                    Entities::VendorData,
                    Entities::DisplayName,
                    Entities::Metadata,
                ])
                .from(Entities::Table)
                .and_where(Expr::col(Entities::ApplicationId).eq(application_id.as_uuid()))
                .and_where(Expr::col(Entities::Kind).eq(entity_kind.as_str()))
                .and_where(Expr::col(Entities::VendorDataKey).eq(vendor_data.key()))
                .to_owned();
            if self.backend() == DatabaseBackend::Postgres {
                select.lock(LockType::Update);
            }
            let Some(row) = fetch_one(&txn, &select).await? else {
                return Ok(None);
            };
            let id: Uuid = get(&row, "id")?;
            let mut update_row = Query::update()
                .table(Entities::Table)
                .and_where(Expr::col(Entities::Id).eq(id))
                .to_owned();
            // What changed of the profile, each field with its value before and after.
            let mut changes = serde_json::Map::new();
            let opened = self.open_entity_profile(&txn, application_id, &row).await?;
            if let Some(name) = &update.profile.display_name {
                let previous = opened.0.clone();
                if previous != *name {
                    let (sealed, _, words) =
                        self.sealed_profile(&txn, application_id, name.as_deref(), None).await?;
                    update_row
                        .value(Entities::DisplayName, sealed)
                        .value(Entities::NameWords, words);
                    changes.insert(
                        "display_name".into(),
                        serde_json::json!({"previous": previous, "current": name}),
                    );
                }
            }
            if let Some(metadata) = &update.profile.metadata {
                let previous = opened.1.clone();
                if previous != *metadata {
                    let (_, sealed, _) =
                        self.sealed_profile(&txn, application_id, None, metadata.as_ref()).await?;
                    update_row.value(Entities::Metadata, sealed);
                    changes.insert(
                        "metadata".into(),
                        serde_json::json!({"previous": previous, "current": metadata}),
                    );
                }
            }
            let previous: String = get(&row, "status")?;
            let changed_status =
                update.status.as_ref().filter(|change| change.status.as_str() != previous);
            if let Some(change) = changed_status {
                update_row
                    .value(Entities::Status, change.status.as_str())
                    .value(Entities::StatusReason, change.reason.clone())
                    .value(Entities::StatusUpdatedAt, update.at);
            }
            if changed_status.is_some() || !changes.is_empty() {
                run(&txn, &update_row).await?;
            }
            // Each event names the entity and who changed it, beside what changed.
            let mut events = Vec::new();
            if !changes.is_empty() {
                let fields: Vec<&String> = changes.keys().collect();
                let facts = serde_json::json!({"changed_fields": fields, "changes": changes});
                events.push((WebhookType::entity_data(entity_kind), facts));
            }
            if let Some(change) = changed_status {
                let facts = serde_json::json!({
                    "status": change.status.as_str(),
                    "previous_status": previous,
                    "reason": change.reason,
                });
                events.push((WebhookType::entity_status(entity_kind), facts));
            }
            let vendor_data: String = get(&row, "vendor_data")?;
            for (webhook_type, mut facts) in events {
                facts["vendor_data"] = vendor_data.clone().into();
                facts["uuid"] = id.to_string().into();
                facts["actor"] = update.actor.clone().into();
                // The facts may hold the profile's values: sealed, as the profile.
                let facts = self
                    .seal_for_application(
                        &txn,
                        application_id.as_uuid(),
                        "details",
                        &facts.to_string(),
                    )
                    .await?;
                crate::outbox::insert_application_event(
                    &txn,
                    application_id,
                    None,
                    webhook_type,
                    &facts,
                    update.at,
                )
                .await?;
            }
            commit(txn).await?;
        }
        self.find_entity(application_id, entity_kind, vendor_data).await
    }

    async fn create_entity(
        &self, application_id: ApplicationId, new: &NewEntity,
    ) -> Result<Option<Entity>, RepoError> {
        let (display_name, metadata, words) = self
            .sealed_profile(
                &self.db,
                application_id,
                new.display_name.as_deref(),
                new.metadata.as_ref(),
            )
            .await?;
        let insert = entity_insert_with(application_id, new, display_name, metadata, words)?
            .on_conflict(
                OnConflict::columns([
                    Entities::ApplicationId,
                    Entities::Kind,
                    Entities::VendorDataKey,
                ])
                .do_nothing()
                .to_owned(),
            )
            .to_owned();
        let inserted = {
            let _turn = self.write_turn().await;
            run(&self.db, &insert).await?
        };
        if inserted == 0 {
            return Ok(None);
        }
        self.find_entity(application_id, new.kind, &new.vendor_data).await
    }

    async fn list_entities(
        &self, application_id: ApplicationId, entity_kind: SessionKind, filter: &EntityFilter,
    ) -> Result<EntityPage, RepoError> {
        let e = Entities::Table;
        let mut condition = Cond::all()
            .add(Expr::col((e, Entities::ApplicationId)).eq(application_id.as_uuid()))
            .add(Expr::col((e, Entities::Kind)).eq(entity_kind.as_str()));
        if !filter.statuses.is_empty() {
            condition = condition.add(
                Expr::col((e, Entities::Status)).is_in(filter.statuses.iter().map(|s| s.as_str())),
            );
        }
        if let Some(search) = &filter.search {
            let pattern = like_pattern(search);
            let like = |column: Entities| {
                Func::lower(Expr::col((e, column)))
                    .like(LikeExpr::new(pattern.as_str()).escape('\\'))
            };
            // The display name by every word of the search, found whole in its blind index.
            let words = self.search_words(&handoff_domain::session::name_words(search));
            let mut any = Cond::any().add(like(Entities::VendorData));
            if !words.is_empty() {
                any = any.add(words.iter().fold(Cond::all(), |all, word| {
                    all.add(Expr::col((e, Entities::NameWords)).like(format!("% {word} %")))
                }));
            }
            condition = condition.add(any);
        }
        let counted = Query::select()
            .expr_as(Func::count(Expr::col((e, Entities::Id))), Alias::new("n"))
            .from(e)
            .cond_where(condition.clone())
            .to_owned();
        let count: i64 = match fetch_one(&self.db, &counted).await? {
            Some(row) => get(&row, "n")?,
            None => 0,
        };
        let page = entity_select()
            .cond_where(condition)
            .order_by((e, Entities::CreatedAt), Order::Desc)
            .order_by((e, Entities::Id), Order::Desc)
            .limit(filter.limit)
            .offset(filter.offset)
            .to_owned();
        let mut results = Vec::new();
        for row in fetch_all(&self.db, &page).await? {
            results.push(self.open_entity(application_id, &row).await?);
        }
        Ok(EntityPage { count: u64::try_from(count).unwrap_or(0), results })
    }

    async fn delete_entities(
        &self, application_id: ApplicationId, entity_kind: SessionKind,
        selection: Option<(&[VendorData], &[EntityId])>,
    ) -> Result<u64, RepoError> {
        let mut select = Query::select()
            .column(Entities::Id)
            .from(Entities::Table)
            .and_where(Expr::col(Entities::ApplicationId).eq(application_id.as_uuid()))
            .and_where(Expr::col(Entities::Kind).eq(entity_kind.as_str()))
            .to_owned();
        if let Some((names, ids)) = selection {
            select.cond_where(
                Cond::any()
                    .add(
                        Expr::col(Entities::VendorDataKey).is_in(names.iter().map(VendorData::key)),
                    )
                    .add(Expr::col(Entities::Id).is_in(ids.iter().map(EntityId::as_uuid))),
            );
        }
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        let ids: Vec<Uuid> = fetch_all(&txn, &select)
            .await?
            .iter()
            .map(|row| get(row, "id"))
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(0);
        }
        // Their sessions first (each with its rows, by cascade), then the entities.
        let sessions = Query::delete()
            .from_table(Sessions::Table)
            .and_where(Expr::col(Sessions::ApplicationId).eq(application_id.as_uuid()))
            .and_where(Expr::col(Sessions::EntityId).is_in(ids.iter().copied()))
            .to_owned();
        run(&txn, &sessions).await?;
        let entities = Query::delete()
            .from_table(Entities::Table)
            .and_where(Expr::col(Entities::Id).is_in(ids.iter().copied()))
            .to_owned();
        let deleted = run(&txn, &entities).await?;
        commit(txn).await?;
        Ok(deleted)
    }
}

/// What re-keying the entities did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rekeyed {
    /// Rows that took their new key.
    pub rekeyed: usize,
    /// Rows whose new key another row of their application and kind already holds, with that
    /// row: left as they were (old key, old version), for the operator to resolve.
    pub collisions: Vec<(Uuid, Uuid)>,
}

impl Store {
    /// Gives every entity keyed under an older rule than [`KEY_VERSION`] its key under
    /// today's ([`VendorData::key_of`]), one row at a time. A row whose new key is already
    /// another row's is not merged into it: it is left as it was and reported, and tried again
    /// at the next start.
    pub async fn rekey_entities(&self) -> Result<Rekeyed, RepoError> {
        let stale = Query::select()
            .columns([Entities::Id, Entities::ApplicationId, Entities::Kind, Entities::VendorData])
            .from(Entities::Table)
            .and_where(Expr::col(Entities::KeyVersion).lt(KEY_VERSION))
            .to_owned();
        let mut report = Rekeyed::default();
        for row in fetch_all(&self.db, &stale).await? {
            let id: Uuid = get(&row, "id")?;
            let application_id: Uuid = get(&row, "application_id")?;
            let entity_kind: String = get(&row, "kind")?;
            let key = VendorData::key_of(&get::<String>(&row, "vendor_data")?);
            let update = Query::update()
                .table(Entities::Table)
                .value(Entities::VendorDataKey, key.clone())
                .value(Entities::KeyVersion, KEY_VERSION)
                .and_where(Expr::col(Entities::Id).eq(id))
                .to_owned();
            match self.db.execute(&update).await {
                Ok(_) => report.rekeyed += 1,
                Err(error) if is_unique_violation(&error) => {
                    let holder = Query::select()
                        .column(Entities::Id)
                        .from(Entities::Table)
                        .and_where(Expr::col(Entities::ApplicationId).eq(application_id))
                        .and_where(Expr::col(Entities::Kind).eq(entity_kind))
                        .and_where(Expr::col(Entities::VendorDataKey).eq(key))
                        .to_owned();
                    if let Some(other) = fetch_one(&self.db, &holder).await? {
                        report.collisions.push((id, get(&other, "id")?));
                    }
                }
                Err(error) => return Err(repo_error(error)),
            }
        }
        Ok(report)
    }
}

/// The `INSERT` of `new` into the application's entities, conflict clause to add.
pub(crate) fn entity_insert(
    application_id: ApplicationId, new: &NewEntity,
) -> Result<InsertStatement, RepoError> {
    debug_assert!(new.display_name.is_none() && new.metadata.is_none(), "no profile to seal");
    entity_insert_with(application_id, new, None, None, None)
}

/// [`entity_insert`] with the profile as stored ([`Store::sealed_profile`]).
fn entity_insert_with(
    application_id: ApplicationId, new: &NewEntity, display_name: Option<String>,
    metadata: Option<String>, name_words: Option<String>,
) -> Result<InsertStatement, RepoError> {
    insert_row(
        Entities::Table,
        [
            (Entities::Id, new.id.as_uuid().into()),
            (Entities::ApplicationId, application_id.as_uuid().into()),
            (Entities::Kind, new.kind.as_str().into()),
            (Entities::VendorData, new.vendor_data.as_str().into()),
            (Entities::VendorDataKey, new.vendor_data.key().into()),
            (Entities::Status, new.status.as_str().into()),
            (Entities::CreatedAt, new.created_at.into()),
            (Entities::KeyVersion, KEY_VERSION.into()),
            (Entities::DisplayName, display_name.into()),
            (Entities::Metadata, metadata.into()),
            (Entities::NameWords, name_words.into()),
        ],
    )
}
