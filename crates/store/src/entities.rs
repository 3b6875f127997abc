//! User and Business entities.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::entity::{
    EntityFilter, EntityPage, EntityStatusChange, NewEntity, ProfileChange, SessionCounts,
};
use handoff_domain::ports::EntityRepository;
use handoff_domain::webhook::WebhookType;
use handoff_domain::{ApplicationId, Entity, EntityStatus, RepoError, SessionKind, VendorData};

use sea_orm::sea_query::{Cond, Expr, ExprTrait, LockType, OnConflict, Query};

use handoff_domain::vendor_data::KEY_VERSION;
use sea_orm::{ConnectionTrait, DatabaseBackend, QueryResult, Value};
use uuid::Uuid;

use crate::Store;
use crate::rows::{get, kind, text_or_null};
use crate::schema::{Entities, Sessions};
use crate::sql::{
    begin_write, commit, fetch_all, fetch_one, is_unique_violation, like_pattern, repo_error, run,
    stmt,
};

/// An entity with its sessions counted; `e` is its row.
const ENTITY_SELECT: &str = "SELECT e.id, e.kind, e.vendor_data, e.status, e.display_name, \
     e.metadata, e.created_at, e.status_reason, e.status_updated_at, \
     (SELECT COUNT(*) FROM sessions s WHERE s.entity_id = e.id) AS session_count, \
     (SELECT COUNT(*) FROM sessions s WHERE s.entity_id = e.id AND s.status = 'Approved') \
     AS approved_count, \
     (SELECT COUNT(*) FROM sessions s WHERE s.entity_id = e.id AND s.status = 'Declined') \
     AS declined_count, \
     (SELECT COUNT(*) FROM sessions s WHERE s.entity_id = e.id AND s.status = 'In Review') \
     AS in_review_count, \
     (SELECT MIN(s.created_at) FROM sessions s WHERE s.entity_id = e.id) AS first_session_at, \
     (SELECT MAX(s.created_at) FROM sessions s WHERE s.entity_id = e.id) AS last_session_at \
     FROM entities e";

fn entity_of(row: &QueryResult) -> Result<Entity, RepoError> {
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
        id: get(row, "id")?,
        kind: kind(row, "kind")?,
        vendor_data: VendorData::parse(&stored_vendor_data)
            .map_err(|_| RepoError::Internal("stored vendor_data is not valid".into()))?,
        status: EntityStatus::parse(&status).ok_or_else(|| {
            RepoError::Internal(format!("stored entity status {status:?}").into())
        })?,
        display_name: text_or_null(row, "display_name")?,
        metadata: text_or_null(row, "metadata")?.and_then(|text| serde_json::from_str(&text).ok()),
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
        &self,
        application_id: ApplicationId,
        entity_kind: SessionKind,
        vendor_data: &VendorData,
    ) -> Result<Option<Entity>, RepoError> {
        let sql = format!(
            "{ENTITY_SELECT} WHERE e.application_id = ? AND e.kind = ? AND e.vendor_data_key = ?"
        );
        let values = vec![
            application_id.as_uuid().into(),
            entity_kind.as_str().into(),
            vendor_data.key().into(),
        ];
        self.db
            .query_one_raw(stmt(self.backend(), &sql, values))
            .await
            .map_err(repo_error)?
            .as_ref()
            .map(entity_of)
            .transpose()
    }

    async fn update_entity(
        &self,
        application_id: ApplicationId,
        entity_kind: SessionKind,
        vendor_data: &VendorData,
        profile: &ProfileChange,
        status: Option<&EntityStatusChange>,
    ) -> Result<Option<Entity>, RepoError> {
        {
            let _turn = self.write_turn().await;
            let txn = begin_write(&self.db).await?;
            let mut select = Query::select()
                .columns([Entities::Id, Entities::Status, Entities::VendorData])
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
            let mut update = Query::update()
                .table(Entities::Table)
                .and_where(Expr::col(Entities::Id).eq(id))
                .to_owned();
            let mut changes = false;
            if let Some(name) = &profile.display_name {
                update.value(Entities::DisplayName, name.clone());
                changes = true;
            }
            if let Some(metadata) = &profile.metadata {
                update.value(
                    Entities::Metadata,
                    metadata.as_ref().map(ToString::to_string),
                );
                changes = true;
            }
            let previous: String = get(&row, "status")?;
            let changed_status = status.filter(|change| change.status.as_str() != previous);
            if let Some(change) = changed_status {
                update
                    .value(Entities::Status, change.status.as_str())
                    .value(Entities::StatusReason, change.reason.clone())
                    .value(Entities::StatusUpdatedAt, change.at);
                changes = true;
            }
            if changes {
                run(&txn, &update).await?;
            }
            if let Some(change) = changed_status {
                let facts = serde_json::json!({
                    "vendor_data": get::<String>(&row, "vendor_data")?,
                    "status": change.status.as_str(),
                    "previous_status": previous,
                });
                crate::outbox::insert_application_event(
                    &txn,
                    application_id,
                    WebhookType::entity_status(entity_kind),
                    &facts,
                    change.at,
                )
                .await?;
            }
            commit(txn).await?;
        }
        self.find_entity(application_id, entity_kind, vendor_data)
            .await
    }

    async fn create_entity(
        &self,
        application_id: ApplicationId,
        new: &NewEntity,
    ) -> Result<Option<Entity>, RepoError> {
        let insert = Query::insert()
            .into_table(Entities::Table)
            .columns([
                Entities::Id,
                Entities::ApplicationId,
                Entities::Kind,
                Entities::VendorData,
                Entities::VendorDataKey,
                Entities::Status,
                Entities::CreatedAt,
                Entities::KeyVersion,
                Entities::DisplayName,
                Entities::Metadata,
            ])
            .values([
                new.id.into(),
                application_id.as_uuid().into(),
                new.kind.as_str().into(),
                new.vendor_data.as_str().into(),
                new.vendor_data.key().into(),
                new.status.as_str().into(),
                new.created_at.into(),
                KEY_VERSION.into(),
                new.display_name.clone().into(),
                new.metadata.as_ref().map(ToString::to_string).into(),
            ])
            .map_err(crate::sql::insert_mismatch)?
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
        self.find_entity(application_id, new.kind, &new.vendor_data)
            .await
    }

    async fn list_entities(
        &self,
        application_id: ApplicationId,
        entity_kind: SessionKind,
        filter: &EntityFilter,
    ) -> Result<EntityPage, RepoError> {
        let mut conditions = vec!["e.application_id = ?".to_owned(), "e.kind = ?".to_owned()];
        let mut values: Vec<Value> =
            vec![application_id.as_uuid().into(), entity_kind.as_str().into()];
        if !filter.statuses.is_empty() {
            conditions.push(format!(
                "e.status IN ({})",
                vec!["?"; filter.statuses.len()].join(", ")
            ));
            values.extend(filter.statuses.iter().map(|s| Value::from(s.as_str())));
        }
        if let Some(search) = &filter.search {
            conditions.push(
                "(LOWER(e.vendor_data) LIKE ? ESCAPE '\\' \
                 OR LOWER(e.display_name) LIKE ? ESCAPE '\\')"
                    .to_owned(),
            );
            let pattern = like_pattern(search);
            values.push(pattern.clone().into());
            values.push(pattern.into());
        }
        let conditions = conditions.join(" AND ");
        let backend = self.backend();
        let counted = format!("SELECT COUNT(*) AS n FROM entities e WHERE {conditions}");
        let count: i64 = match self
            .db
            .query_one_raw(stmt(backend, &counted, values.clone()))
            .await
            .map_err(repo_error)?
        {
            Some(row) => get(&row, "n")?,
            None => 0,
        };
        let page = format!(
            "{ENTITY_SELECT} WHERE {conditions} ORDER BY e.created_at DESC, e.id DESC \
             LIMIT ? OFFSET ?"
        );
        values.push(i64::try_from(filter.limit).unwrap_or(i64::MAX).into());
        values.push(i64::try_from(filter.offset).unwrap_or(i64::MAX).into());
        let results = self
            .db
            .query_all_raw(stmt(backend, &page, values))
            .await
            .map_err(repo_error)?
            .iter()
            .map(entity_of)
            .collect::<Result<_, _>>()?;
        Ok(EntityPage {
            count: u64::try_from(count).unwrap_or(0),
            results,
        })
    }

    async fn delete_entities(
        &self,
        application_id: ApplicationId,
        entity_kind: SessionKind,
        selection: Option<(&[VendorData], &[Uuid])>,
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
                    .add(Expr::col(Entities::Id).is_in(ids.iter().copied())),
            );
        }
        let _turn = self.write_turn().await;
        let txn = begin_write(&self.db).await?;
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
            .columns([
                Entities::Id,
                Entities::ApplicationId,
                Entities::Kind,
                Entities::VendorData,
            ])
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
