//! A new key-encryption key for sealed identity data (`handoff signing-keys reseal`): each
//! application's key sealed again under it, and the names' blind index hashed again with it.

use handoff_domain::{FeatureBlock, RepoError, SessionId};
use handoff_token::KeyEncryptionKey;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use uuid::Uuid;

use crate::Store;
use crate::rows::get;
use crate::schema::{Applications, Entities, Sessions};
use crate::sealing::SessionKey;
use crate::sql::{fetch_all, run};

/// Sessions re-indexed per statement.
const PAGE: u64 = 500;

impl Store {
    /// Seals again under `current` every application key sealed under `previous`; how many.
    /// A key that already opens with `current` is left as it is.
    pub async fn reseal_application_keys(
        &self, previous: &KeyEncryptionKey, current: &KeyEncryptionKey,
    ) -> Result<u64, RepoError> {
        let select = Query::select()
            .columns([Applications::Id, Applications::DataKey])
            .from(Applications::Table)
            .and_where(Expr::col(Applications::DataKey).is_not_null())
            .to_owned();
        let mut resealed = 0;
        for row in fetch_all(&self.db, &select).await? {
            let id: Uuid = get(&row, "id")?;
            let sealed: Vec<u8> = get(&row, "data_key")?;
            if current.open_application_key(id, &sealed).is_ok() {
                continue;
            }
            let opened = previous.open_application_key(id, &sealed).map_err(|_| {
                RepoError::Internal(
                    format!(
                        "application {id}'s key opens with neither the previous nor the \
                         current key-encryption key"
                    )
                    .into(),
                )
            })?;
            let update = Query::update()
                .table(Applications::Table)
                .value(
                    Applications::DataKey,
                    current.seal_application_key(id, &opened).map_err(|_| {
                        RepoError::Internal("sealing an application's key failed".into())
                    })?,
                )
                .and_where(Expr::col(Applications::Id).eq(id))
                .and_where(Expr::col(Applications::DataKey).eq(sealed))
                .to_owned();
            let _turn = self.write_turn().await;
            resealed += run(&self.db, &update).await?;
        }
        Ok(resealed)
    }

    /// Hashes again, with this store's key-encryption key, the blind index of every session
    /// that has one, from its first document or registry check; how many.
    pub async fn reindex_names(&self) -> Result<u64, RepoError> {
        let mut reindexed = self.reindex_entity_names().await?;
        let mut after = Uuid::nil();
        loop {
            let select = Query::select()
                .columns([Sessions::Id, Sessions::ApplicationId, Sessions::DataKey])
                .column(Sessions::RecordedBlocks)
                .from(Sessions::Table)
                .and_where(Expr::col(Sessions::NameWords).is_not_null())
                .and_where(Expr::col(Sessions::Id).gt(after))
                .order_by(Sessions::Id, Order::Asc)
                .limit(PAGE)
                .to_owned();
            let rows = fetch_all(&self.db, &select).await?;
            let Some(last) = rows.last() else {
                return Ok(reindexed);
            };
            after = get(last, "id")?;
            for row in &rows {
                let key = self.row_key(&self.db, row).await?;
                if matches!(key, SessionKey::Erased) {
                    continue;
                }
                let id = SessionId::from_uuid(get(row, "id")?);
                let recorded =
                    crate::rows::recorded_blocks(&get::<String>(row, "recorded_blocks")?)?;
                let named: Vec<FeatureBlock> = recorded
                    .into_iter()
                    .filter(|b| {
                        matches!(b, FeatureBlock::IdVerifications | FeatureBlock::RegistryChecks)
                    })
                    .collect();
                let blocks = crate::sessions::read_blocks(&self.db, id, &named, &key).await?;
                let terms = self.listing_terms(&blocks);
                let update = Query::update()
                    .table(Sessions::Table)
                    .value(Sessions::NameWords, terms.name_words)
                    .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
                    .to_owned();
                let _turn = self.write_turn().await;
                reindexed += run(&self.db, &update).await?;
            }
        }
    }

    /// [`Self::reindex_names`] of Users' and Businesses' display names.
    async fn reindex_entity_names(&self) -> Result<u64, RepoError> {
        let select = Query::select()
            .columns([Entities::Id, Entities::ApplicationId, Entities::DisplayName])
            .from(Entities::Table)
            .and_where(Expr::col(Entities::NameWords).is_not_null())
            .to_owned();
        let mut reindexed = 0;
        for row in fetch_all(&self.db, &select).await? {
            let application: Uuid = get(&row, "application_id")?;
            let name = match get::<Option<String>>(&row, "display_name")? {
                Some(text) => Some(
                    self.open_for_application(&self.db, application, "display_name", text).await?,
                ),
                None => None,
            };
            let update = Query::update()
                .table(Entities::Table)
                .value(Entities::NameWords, self.name_words(name.as_deref()))
                .and_where(Expr::col(Entities::Id).eq(get::<Uuid>(&row, "id")?))
                .to_owned();
            let _turn = self.write_turn().await;
            reindexed += run(&self.db, &update).await?;
        }
        Ok(reindexed)
    }
}
