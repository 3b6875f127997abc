//! Lists and their entries. A name already taken, or a value already in the list, is the
//! unique index's to tell (no read before the write).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::lists::{Entry, EntrySelection, EntryType, List, ListId, ListType, NewEntry};
use handoff_domain::ports::ListRepository;
use handoff_domain::{ApplicationId, RepoError, SessionId};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, QueryResult};

use crate::Store;
use crate::rows::get;
use crate::schema::{ListEntries, Lists};
use crate::sql::{commit, fetch_all, fetch_one, insert_row, is_unique_violation, repo_error, run};

/// What an entry is shown with.
const ENTRY_COLUMNS: [ListEntries; 9] = [
    ListEntries::Id,
    ListEntries::ListId,
    ListEntries::EntryType,
    ListEntries::Value,
    ListEntries::DisplayLabel,
    ListEntries::Comment,
    ListEntries::ReferenceSessionId,
    ListEntries::AddedBy,
    ListEntries::CreatedAt,
];

fn unreadable(what: &str) -> RepoError {
    RepoError::Internal(format!("a stored {what} is unreadable").into())
}

fn list(row: &QueryResult) -> Result<List, RepoError> {
    Ok(List {
        id: get(row, "id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        list_type: ListType::parse(&get::<String>(row, "list_type")?)
            .ok_or_else(|| unreadable("list type"))?,
        entry_type: entry_type(row)?,
        is_system: false,
        entry_count: 0,
        last_entry_added_at: None,
        created_at: get(row, "created_at")?,
    })
}

fn entry_type(row: &QueryResult) -> Result<EntryType, RepoError> {
    EntryType::parse(&get::<String>(row, "entry_type")?).ok_or_else(|| unreadable("entry type"))
}

fn entry(row: &QueryResult) -> Result<Entry, RepoError> {
    Ok(Entry {
        id: get(row, "id")?,
        list_id: get(row, "list_id")?,
        entry_type: entry_type(row)?,
        value: get(row, "value")?,
        display_label: get(row, "display_label")?,
        comment: get(row, "comment")?,
        reference_session_id: get::<Option<uuid::Uuid>>(row, "reference_session_id")?
            .map(SessionId::from_uuid),
        added_by: get(row, "added_by")?,
        created_at: get(row, "created_at")?,
    })
}

/// `Ok(false)` for a unique violation (a name or value taken), else the outcome.
fn unless_taken(outcome: Result<u64, sea_orm::DbErr>) -> Result<bool, RepoError> {
    match outcome {
        Ok(_) => Ok(true),
        Err(error) if is_unique_violation(&error) => Ok(false),
        Err(error) => Err(repo_error(error)),
    }
}

/// A personal value of a list entry, sealed: what `signing-keys reseal` seals again.
#[derive(Debug)]
pub struct SealedEntry {
    /// The entry's id (the seal's context).
    pub id: uuid::Uuid,
    /// Its entry type (the keyed hash's context).
    pub entry_type: EntryType,
    /// The sealed value.
    pub sealed_value: Vec<u8>,
}

impl Store {
    /// The list entries whose personal value is sealed with the key-encryption key `kek_id`.
    pub async fn entries_sealed_with(&self, kek_id: &str) -> Result<Vec<SealedEntry>, RepoError> {
        let select = Query::select()
            .columns([ListEntries::Id, ListEntries::EntryType, ListEntries::SealedValue])
            .from(ListEntries::Table)
            .and_where(Expr::col(ListEntries::SealedWith).eq(kek_id))
            .to_owned();
        fetch_all(&self.db, &select)
            .await?
            .iter()
            .map(|row| {
                Ok(SealedEntry {
                    id: get(row, "id")?,
                    entry_type: entry_type(row)?,
                    sealed_value: get(row, "sealed_value")?,
                })
            })
            .collect()
    }

    /// Stores an entry's value sealed again, and its keyed hash, under the key-encryption key
    /// `sealed_with`, if it is still sealed with `previously`.
    pub async fn reseal_entry(
        &self, id: uuid::Uuid, sealed_value: Vec<u8>, match_key: &str, sealed_with: &str,
        previously: &str,
    ) -> Result<bool, RepoError> {
        let update = Query::update()
            .table(ListEntries::Table)
            .value(ListEntries::SealedValue, sealed_value)
            .value(ListEntries::MatchKey, match_key)
            .value(ListEntries::SealedWith, sealed_with)
            .and_where(Expr::col(ListEntries::Id).eq(id))
            .and_where(Expr::col(ListEntries::SealedWith).eq(previously))
            .to_owned();
        let _turn = self.write_turn().await;
        Ok(run(&self.db, &update).await? == 1)
    }
}

#[async_trait]
impl ListRepository for Store {
    async fn lists(
        &self, application_id: ApplicationId,
    ) -> Result<(Vec<List>, Vec<(ListId, u64, DateTime<Utc>)>), RepoError> {
        let app = application_id.as_uuid();
        let select = Query::select()
            .columns([
                Lists::Id,
                Lists::Name,
                Lists::Description,
                Lists::ListType,
                Lists::EntryType,
                Lists::CreatedAt,
            ])
            .from(Lists::Table)
            .and_where(Expr::col(Lists::ApplicationId).eq(app))
            .order_by(Lists::CreatedAt, Order::Asc)
            .order_by(Lists::Id, Order::Asc)
            .to_owned();
        let lists =
            fetch_all(&self.db, &select).await?.iter().map(list).collect::<Result<_, _>>()?;
        let counts = Query::select()
            .column(ListEntries::ListId)
            .expr_as(Expr::col(ListEntries::Id).count(), Alias::new("entries"))
            .expr_as(Expr::col(ListEntries::CreatedAt).max(), Alias::new("newest"))
            .from(ListEntries::Table)
            .and_where(Expr::col(ListEntries::ApplicationId).eq(app))
            .group_by_col(ListEntries::ListId)
            .to_owned();
        let counts = fetch_all(&self.db, &counts)
            .await?
            .iter()
            .map(|row| {
                let entries: i64 = get(row, "entries")?;
                Ok((get(row, "list_id")?, entries.unsigned_abs(), get(row, "newest")?))
            })
            .collect::<Result<_, RepoError>>()?;
        Ok((lists, counts))
    }

    async fn create_list(
        &self, application_id: ApplicationId, l: &List,
    ) -> Result<bool, RepoError> {
        let insert = insert_row(
            Lists::Table,
            [
                (Lists::Id, l.id.into()),
                (Lists::ApplicationId, application_id.as_uuid().into()),
                (Lists::Name, l.name.clone().into()),
                (Lists::Description, l.description.clone().into()),
                (Lists::ListType, l.list_type.as_str().into()),
                (Lists::EntryType, l.entry_type.as_str().into()),
                (Lists::CreatedAt, l.created_at.into()),
            ],
        )?;
        let _turn = self.write_turn().await;
        unless_taken(self.db.execute(&insert).await.map(|r| r.rows_affected()))
    }

    async fn update_list(
        &self, application_id: ApplicationId, l: &List,
    ) -> Result<bool, RepoError> {
        let update = Query::update()
            .table(Lists::Table)
            .value(Lists::Name, l.name.clone())
            .value(Lists::Description, l.description.clone())
            .and_where(Expr::col(Lists::Id).eq(l.id))
            .and_where(Expr::col(Lists::ApplicationId).eq(application_id.as_uuid()))
            .to_owned();
        let _turn = self.write_turn().await;
        unless_taken(self.db.execute(&update).await.map(|r| r.rows_affected()))
    }

    async fn delete_list(
        &self, application_id: ApplicationId, id: ListId,
    ) -> Result<bool, RepoError> {
        let app = application_id.as_uuid();
        let entries = Query::delete()
            .from_table(ListEntries::Table)
            .and_where(Expr::col(ListEntries::ListId).eq(id))
            .and_where(Expr::col(ListEntries::ApplicationId).eq(app))
            .to_owned();
        let list = Query::delete()
            .from_table(Lists::Table)
            .and_where(Expr::col(Lists::Id).eq(id))
            .and_where(Expr::col(Lists::ApplicationId).eq(app))
            .to_owned();
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        let deleted = run(&txn, &list).await? == 1;
        if deleted {
            run(&txn, &entries).await?;
        }
        commit(txn).await?;
        Ok(deleted)
    }

    async fn entries(
        &self, application_id: ApplicationId, list_id: ListId, limit: u64, offset: u64,
    ) -> Result<(u64, Vec<Entry>), RepoError> {
        let of_list = Expr::col(ListEntries::ListId)
            .eq(list_id)
            .and(Expr::col(ListEntries::ApplicationId).eq(application_id.as_uuid()));
        let count = Query::select()
            .expr_as(Expr::col(ListEntries::Id).count(), Alias::new("entries"))
            .from(ListEntries::Table)
            .cond_where(of_list.clone())
            .to_owned();
        let count: i64 = match fetch_one(&self.db, &count).await? {
            Some(row) => get(&row, "entries")?,
            None => 0,
        };
        let page = Query::select()
            .columns(ENTRY_COLUMNS)
            .from(ListEntries::Table)
            .cond_where(of_list)
            .order_by(ListEntries::CreatedAt, Order::Desc)
            .order_by(ListEntries::Id, Order::Desc)
            .limit(limit)
            .offset(offset)
            .to_owned();
        let entries =
            fetch_all(&self.db, &page).await?.iter().map(entry).collect::<Result<_, _>>()?;
        Ok((count.unsigned_abs(), entries))
    }

    async fn add_entry(
        &self, application_id: ApplicationId, new: &NewEntry,
    ) -> Result<bool, RepoError> {
        let e = &new.entry;
        let insert = insert_row(
            ListEntries::Table,
            [
                (ListEntries::Id, e.id.into()),
                (ListEntries::ApplicationId, application_id.as_uuid().into()),
                (ListEntries::ListId, e.list_id.into()),
                (ListEntries::ListType, new.list_type.as_str().into()),
                (ListEntries::EntryType, e.entry_type.as_str().into()),
                (ListEntries::MatchKey, new.match_key.clone().into()),
                (ListEntries::RangeStart, new.range.as_ref().map(|r| r.0.clone()).into()),
                (ListEntries::RangeEnd, new.range.as_ref().map(|r| r.1.clone()).into()),
                (ListEntries::Value, e.value.clone().into()),
                (
                    ListEntries::SealedValue,
                    new.sealed_value.as_ref().map(|s| s.bytes.clone()).into(),
                ),
                (
                    ListEntries::SealedWith,
                    new.sealed_value.as_ref().map(|s| s.sealed_with.clone()).into(),
                ),
                (ListEntries::DisplayLabel, e.display_label.clone().into()),
                (ListEntries::Comment, e.comment.clone().into()),
                (
                    ListEntries::ReferenceSessionId,
                    e.reference_session_id.map(|s| s.as_uuid()).into(),
                ),
                (ListEntries::AddedBy, e.added_by.clone().into()),
                (ListEntries::CreatedAt, e.created_at.into()),
            ],
        )?;
        let _turn = self.write_turn().await;
        unless_taken(self.db.execute(&insert).await.map(|r| r.rows_affected()))
    }

    async fn listed(
        &self, application_id: ApplicationId, lists: &[ListId], keys: &[String],
    ) -> Result<Vec<(EntryType, String)>, RepoError> {
        let select = Query::select()
            .columns([ListEntries::EntryType, ListEntries::MatchKey])
            .from(ListEntries::Table)
            .and_where(Expr::col(ListEntries::ApplicationId).eq(application_id.as_uuid()))
            .and_where(Expr::col(ListEntries::ListId).is_in(lists.iter().copied()))
            .cond_where(
                Expr::col(ListEntries::EntryType)
                    .eq(EntryType::IpAddress.as_str())
                    .or(Expr::col(ListEntries::MatchKey).is_in(keys.iter().cloned())),
            )
            .to_owned();
        fetch_all(&self.db, &select)
            .await?
            .iter()
            .map(|row| Ok((entry_type(row)?, get(row, "match_key")?)))
            .collect()
    }

    async fn delete_entries(
        &self, application_id: ApplicationId, list_id: ListId, which: EntrySelection<'_>,
    ) -> Result<u64, RepoError> {
        let mut delete = Query::delete()
            .from_table(ListEntries::Table)
            .and_where(Expr::col(ListEntries::ListId).eq(list_id))
            .and_where(Expr::col(ListEntries::ApplicationId).eq(application_id.as_uuid()))
            .to_owned();
        match which {
            EntrySelection::Id(id) => delete.and_where(Expr::col(ListEntries::Id).eq(id)),
            EntrySelection::MatchKey(key) => {
                delete.and_where(Expr::col(ListEntries::MatchKey).eq(key))
            }
        };
        let _turn = self.write_turn().await;
        run(&self.db, &delete).await
    }
}
