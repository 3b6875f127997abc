//! Sealing what an earlier version wrote in clear (run at start-up, `open_store`): each session
//! without a data key gets one, and its items, JSON columns and comments are sealed under it, its blind
//! index and country written, and its open share tokens given the clone's wrapped key; each
//! User's and Business's profile is sealed under its application's key.

use handoff_domain::{ApplicationId, FeatureBlock, FeatureItem, RepoError, SessionId};
use handoff_token::{SEALED_PREFIXES, is_sealed};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LockType, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction};
use uuid::Uuid;

use crate::Store;
use crate::rows::{self, get, text_or_null};
use crate::schema::{BlockItems, Entities, SessionLogs, Sessions, ShareTokens};
use crate::sealing::SessionKey;
use crate::sql::{commit, fetch_all, fetch_one, run};

/// Sessions sealed per transaction.
const BATCH: u64 = 100;

/// What [`Store::seal_clear_data`] sealed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backfilled {
    /// Sessions given a data key.
    pub sessions: u64,
    /// Users and Businesses whose profile was sealed.
    pub entities: u64,
}

impl Store {
    /// Seals every session and entity profile kept in clear; a store that does not seal does
    /// nothing. Servers starting together share the work: each session is sealed once, under
    /// its row's lock.
    pub async fn seal_clear_data(&self) -> Result<Backfilled, RepoError> {
        let mut done = Backfilled::default();
        if !self.seals() {
            return Ok(done);
        }
        loop {
            let clear = Query::select()
                .column(Sessions::Id)
                .from(Sessions::Table)
                .and_where(Expr::col(Sessions::DataKey).is_null())
                .order_by(Sessions::Id, Order::Asc)
                .limit(BATCH)
                .to_owned();
            let ids: Vec<Uuid> = fetch_all(&self.db, &clear)
                .await?
                .iter()
                .map(|row| get(row, "id"))
                .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                break;
            }
            let _turn = self.write_turn().await;
            let txn = self.begin_write().await?;
            for id in ids {
                done.sessions += self.seal_session(&txn, SessionId::from_uuid(id)).await?;
            }
            commit(txn).await?;
        }
        done.entities = self.seal_clear_entities().await?;
        Ok(done)
    }

    /// Seals one session in `txn`, unless another server did first: 1 when it did.
    async fn seal_session(
        &self, txn: &DatabaseTransaction, id: SessionId,
    ) -> Result<u64, RepoError> {
        let mut select = Query::select()
            .columns([
                Sessions::ApplicationId,
                Sessions::DataKey,
                Sessions::RecordedBlocks,
                Sessions::Metadata,
                Sessions::ContactDetails,
                Sessions::ExpectedDetails,
            ])
            .from(Sessions::Table)
            .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
            .to_owned();
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            select.lock(LockType::Update);
        }
        let Some(row) = fetch_one(txn, &select).await? else {
            return Ok(0);
        };
        if get::<Option<Vec<u8>>>(&row, "data_key")?.is_some() {
            return Ok(0);
        }
        let application = ApplicationId::from_uuid(get(&row, "application_id")?);
        let (key, wrapped) = self.new_session_key(txn, application).await?;
        let mut update = Query::update()
            .table(Sessions::Table)
            .value(Sessions::DataKey, wrapped)
            .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
            .to_owned();
        for column in [Sessions::Metadata, Sessions::ContactDetails, Sessions::ExpectedDetails] {
            let name = sea_orm::sea_query::Iden::to_string(&column);
            if let Some(text) = text_or_null(&row, &name)? {
                update.value(column, key.seal(&name, &text)?);
            }
        }
        // Every item, sealed where it is; what lists find the session by, from them.
        let recorded = rows::recorded_blocks(&get::<String>(&row, "recorded_blocks")?)?;
        let mut named: Vec<(FeatureBlock, Vec<FeatureItem>)> = Vec::new();
        for block in recorded {
            let items = Query::select()
                .columns([BlockItems::Id, BlockItems::Position, BlockItems::NodeId])
                .expr_as(Expr::col(BlockItems::Status), Alias::new("item_status"))
                .column(BlockItems::Item)
                .expr_as(Expr::val(block.v3_key()), Alias::new("block"))
                .from(Alias::new(block.v3_key()))
                .and_where(Expr::col(BlockItems::SessionId).eq(id.as_uuid()))
                .order_by(BlockItems::Position, Order::Asc)
                .to_owned();
            let mut opened = Vec::new();
            for item in fetch_all(txn, &items).await? {
                let text: String = get(&item, "item")?;
                if is_sealed(&text) {
                    continue;
                }
                opened.push(rows::item(&item, &SessionKey::Clear)?.2);
                let seal = Query::update()
                    .table(Alias::new(block.v3_key()))
                    .value(BlockItems::Item, key.seal(block.v3_key(), &text)?)
                    .and_where(Expr::col(BlockItems::Id).eq(get::<i64>(&item, "id")?))
                    .to_owned();
                run(txn, &seal).await?;
            }
            if matches!(block, FeatureBlock::IdVerifications | FeatureBlock::RegistryChecks) {
                named.push((block, opened));
            }
        }
        // Reviews' comments.
        let comments = Query::select()
            .columns([SessionLogs::Id, SessionLogs::Comment])
            .from(SessionLogs::Table)
            .and_where(Expr::col(SessionLogs::SessionId).eq(id.as_uuid()))
            .and_where(Expr::col(SessionLogs::Comment).is_not_null())
            .to_owned();
        for log in fetch_all(txn, &comments).await? {
            let comment: String = get(&log, "comment")?;
            let seal = Query::update()
                .table(SessionLogs::Table)
                .value(SessionLogs::Comment, key.seal("comment", &comment)?)
                .and_where(Expr::col(SessionLogs::Id).eq(get::<i64>(&log, "id")?))
                .to_owned();
            run(txn, &seal).await?;
        }
        let terms = self.listing_terms(&named);
        update.value(Sessions::NameWords, terms.name_words);
        if terms.country.is_some() {
            update.value(Sessions::Country, terms.country);
        }
        run(txn, &update).await?;
        // Its open share tokens: the clone will hold its data key, wrapped for the receiver.
        let open = Query::select()
            .columns([ShareTokens::Jti, ShareTokens::ForApplicationId])
            .from(ShareTokens::Table)
            .and_where(Expr::col(ShareTokens::SessionId).eq(id.as_uuid()))
            .and_where(Expr::col(ShareTokens::RedeemedAt).is_null())
            .to_owned();
        for token in fetch_all(txn, &open).await? {
            let receiver = ApplicationId::from_uuid(get(&token, "for_application_id")?);
            let Some(wrapped) = self.wrap_for(txn, &key, receiver).await? else {
                continue;
            };
            let update = Query::update()
                .table(ShareTokens::Table)
                .value(ShareTokens::CloneDataKey, wrapped)
                .and_where(Expr::col(ShareTokens::Jti).eq(get::<String>(&token, "jti")?))
                .to_owned();
            run(txn, &update).await?;
        }
        Ok(1)
    }

    /// Seals the profiles of Users and Businesses kept in clear; how many.
    async fn seal_clear_entities(&self) -> Result<u64, RepoError> {
        let select = Query::select()
            .columns([
                Entities::Id,
                Entities::ApplicationId,
                Entities::DisplayName,
                Entities::Metadata,
            ])
            .from(Entities::Table)
            .cond_where(
                sea_orm::sea_query::Cond::any()
                    .add(in_clear(Entities::DisplayName))
                    .add(in_clear(Entities::Metadata)),
            )
            .to_owned();
        let mut sealed = 0;
        for row in fetch_all(&self.db, &select).await? {
            let application: Uuid = get(&row, "application_id")?;
            let mut update = Query::update()
                .table(Entities::Table)
                .and_where(Expr::col(Entities::Id).eq(get::<Uuid>(&row, "id")?))
                .to_owned();
            if let Some(name) = text_or_null(&row, "display_name")?.filter(|t| !is_sealed(t)) {
                let stored =
                    self.seal_for_application(&self.db, application, "display_name", &name).await?;
                update
                    .value(Entities::DisplayName, stored)
                    .value(Entities::NameWords, self.name_words(Some(&name)));
                update.and_where(Expr::col(Entities::DisplayName).eq(name));
            }
            if let Some(metadata) = text_or_null(&row, "metadata")?.filter(|t| !is_sealed(t)) {
                let stored =
                    self.seal_for_application(&self.db, application, "metadata", &metadata).await?;
                update.value(Entities::Metadata, stored);
                update.and_where(Expr::col(Entities::Metadata).eq(metadata));
            }
            let _turn = self.write_turn().await;
            sealed += run(&self.db, &update).await?;
        }
        Ok(sealed)
    }
}

/// Whether `column` holds a text in clear: it has neither prefix of a sealed text
/// ([`is_sealed`]).
fn in_clear(column: Entities) -> sea_orm::sea_query::Cond {
    SEALED_PREFIXES.iter().fold(sea_orm::sea_query::Cond::all(), |all, prefix| {
        all.add(Expr::col(column).not_like(format!("{prefix}%")))
    })
}
