//! Identity data sealed at rest (`docs/privacy.md`): a store given the key-encryption key seals
//! each session's items and JSON columns under the session's data key, kept in `sessions.data_key`
//! wrapped by the application's key (`applications.data_key`, sealed under the KEK). A session
//! row without a data key is kept in clear (written by an earlier version, or by a store without
//! a KEK); an empty one was erased, and reads as absent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use handoff_domain::{ApplicationId, FeatureBlock, FeatureItem, RepoError};
use handoff_token::{ApplicationKey, DataKey, KeyEncryptionKey, is_sealed};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, QueryResult};
use uuid::Uuid;

use crate::Store;
use crate::rows::get;
use crate::schema::Applications;
use crate::sql::{fetch_one, run};

/// Whether a session's stored data key says it was erased: emptied, as `applications erase`
/// leaves it (the SQL of the list and of the import reads the same in `length(data_key) > 0`).
pub(crate) fn erased(wrapped: &[u8]) -> bool {
    wrapped.is_empty()
}

/// What a session list finds a session by without its items: `sessions.name_words` and
/// `sessions.country`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ListingTerms {
    pub(crate) name_words: Option<String>,
    pub(crate) country: Option<String>,
}

/// The KEK, and the application keys opened with it, by application.
pub(crate) struct DataProtection {
    kek: KeyEncryptionKey,
    /// Opened once per process, beside the sealed key as stored; an application's key changes
    /// only when it is erased, which also empties its sessions' data keys, so a stale entry
    /// opens nothing it should not (and a session created under it is not written:
    /// [`Store::new_session_key_to_check`]).
    application_keys: Mutex<HashMap<Uuid, CachedKey>>,
}

/// An application's key as stored (sealed), and opened.
#[derive(Clone)]
struct CachedKey {
    stored: Arc<[u8]>,
    key: Arc<ApplicationKey>,
}

impl std::fmt::Debug for DataProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataProtection").field("kek", &self.kek).finish_non_exhaustive()
    }
}

/// A session's data key, as its row holds it.
#[derive(Clone, Debug)]
pub(crate) enum SessionKey {
    /// No data key: its data is in clear.
    Clear,
    /// Erased: its data key was destroyed.
    Erased,
    /// Its data key.
    Open(DataKey),
}

fn sealing_failed(what: &str) -> RepoError {
    RepoError::Internal(format!("sealed data does not open: {what}").into())
}

impl SessionKey {
    /// `text` as stored for `field`: sealed under the data key, or as it is in clear.
    pub(crate) fn seal(&self, field: &str, text: &str) -> Result<String, RepoError> {
        match self {
            SessionKey::Open(key) => key.seal(field, text).map_err(|_| sealing_failed(field)),
            SessionKey::Clear => Ok(text.to_owned()),
            SessionKey::Erased => Err(sealing_failed("the session was erased")),
        }
    }

    /// The clear text of a stored `field`.
    pub(crate) fn open(&self, field: &str, stored: String) -> Result<String, RepoError> {
        if !is_sealed(&stored) {
            return Ok(stored);
        }
        match self {
            SessionKey::Open(key) => key.open(field, &stored).map_err(|_| sealing_failed(field)),
            _ => Err(sealing_failed(field)),
        }
    }
}

impl Store {
    /// This store seals what it writes of a session under `kek`'s keys, and opens it.
    pub fn sealing_with(mut self, kek: KeyEncryptionKey) -> Self {
        self.sealing = Some(Arc::new(DataProtection { kek, application_keys: Mutex::default() }));
        self
    }

    /// Whether this store seals.
    pub(crate) fn seals(&self) -> bool {
        self.sealing.is_some()
    }

    /// The application's key, opened; `None` when it has none (never made, or erased).
    async fn application_key<C: ConnectionTrait>(
        &self, db: &C, application: Uuid, fresh: bool,
    ) -> Result<Option<Arc<ApplicationKey>>, RepoError> {
        let Some(sealing) = &self.sealing else {
            return Ok(None);
        };
        if !fresh && let Some(cached) = sealing.cached(application) {
            return Ok(Some(cached.key));
        }
        Ok(sealing.read_application_key(db, application).await?.map(|cached| cached.key))
    }

    /// `text` of `application`'s own (a recorded answer, a webhook payload) as stored for
    /// `field`: sealed under the application's key (made when it has none), or as it is when
    /// this store does not seal.
    pub(crate) async fn seal_for_application<C: ConnectionTrait>(
        &self, db: &C, application: Uuid, field: &str, text: &str,
    ) -> Result<String, RepoError> {
        let Some(sealing) = &self.sealing else {
            return Ok(text.to_owned());
        };
        let key = match self.application_key(db, application, false).await? {
            Some(key) => key,
            None => Arc::new(
                sealing
                    .application_key_in(db, application)
                    .await?
                    .ok_or_else(|| RepoError::Internal("no such application".into()))?,
            ),
        };
        key.seal(field, text).map_err(|_| sealing_failed(field))
    }

    /// The clear text of `application`'s own stored `field` ([`Self::seal_for_application`]).
    pub(crate) async fn open_for_application<C: ConnectionTrait>(
        &self, db: &C, application: Uuid, field: &str, stored: String,
    ) -> Result<String, RepoError> {
        if !is_sealed(&stored) {
            return Ok(stored);
        }
        for fresh in [false, true] {
            let Some(key) = self.application_key(db, application, fresh).await? else {
                break;
            };
            if let Ok(text) = key.open(field, &stored) {
                return Ok(text);
            }
        }
        Err(sealing_failed(field))
    }

    /// The data key of a session of `application` whose row holds `wrapped`; its application's
    /// key read on `db` (a transaction's own connection: no second one while it holds one).
    pub(crate) async fn session_key<C: ConnectionTrait>(
        &self, db: &C, application: Uuid, wrapped: Option<Vec<u8>>,
    ) -> Result<SessionKey, RepoError> {
        let Some(wrapped) = wrapped else {
            return Ok(SessionKey::Clear);
        };
        if erased(&wrapped) {
            return Ok(SessionKey::Erased);
        }
        if self.sealing.is_none() {
            return Err(RepoError::Internal(
                "the session's data is sealed, and this process has no key-encryption key".into(),
            ));
        }
        // A cached key that does not open it is read again once: the application was erased
        // and given a new key since.
        for fresh in [false, true] {
            let Some(application_key) = self.application_key(db, application, fresh).await? else {
                return Ok(SessionKey::Erased);
            };
            if let Ok(key) = application_key.unwrap(&wrapped) {
                return Ok(SessionKey::Open(key));
            }
        }
        Err(sealing_failed("the session's data key"))
    }

    /// The data key of a session row read with `application_id` and `data_key`.
    pub(crate) async fn row_key<C: ConnectionTrait>(
        &self, db: &C, row: &QueryResult,
    ) -> Result<SessionKey, RepoError> {
        self.session_key(db, get(row, "application_id")?, get(row, "data_key")?).await
    }

    /// A new session's data key, and it wrapped for its row, in the transaction that writes
    /// it: the application's key is read there (made when it has none), never from the cache,
    /// so that no session is written under a key erased meanwhile.
    pub(crate) async fn new_session_key<C: ConnectionTrait>(
        &self, txn: &C, application: ApplicationId,
    ) -> Result<(SessionKey, Option<Vec<u8>>), RepoError> {
        let Some(sealing) = &self.sealing else {
            return Ok((SessionKey::Clear, None));
        };
        let application_key = sealing
            .application_key_in(txn, application.as_uuid())
            .await?
            .ok_or_else(|| RepoError::Internal("no such application".into()))?;
        let (key, wrapped) =
            application_key.new_data_key().map_err(|_| sealing_failed("a new data key"))?;
        Ok((SessionKey::Open(key), Some(wrapped)))
    }

    /// [`Store::new_session_key`] made outside the writing transaction, under the
    /// application's key this process keeps (else read on `db`), with that key as stored for
    /// the write to check that it still is (`None`: this store does not seal); `Ok(None)` when
    /// the application has no key yet, or no such application: [`Store::new_session_key`]
    /// makes one.
    pub(crate) async fn new_session_key_to_check<C: ConnectionTrait>(
        &self, db: &C, application: ApplicationId,
    ) -> Result<Option<NewSessionKey>, RepoError> {
        let Some(sealing) = &self.sealing else {
            return Ok(Some(NewSessionKey { key: SessionKey::Clear, wrapped: None, stored: None }));
        };
        let id = application.as_uuid();
        let cached = match sealing.cached(id) {
            Some(cached) => cached,
            None => match sealing.read_application_key(db, id).await? {
                Some(read) => read,
                None => return Ok(None),
            },
        };
        let (key, wrapped) =
            cached.key.new_data_key().map_err(|_| sealing_failed("a new data key"))?;
        Ok(Some(NewSessionKey {
            key: SessionKey::Open(key),
            wrapped: Some(wrapped),
            stored: Some(cached.stored.to_vec()),
        }))
    }

    /// Forgets the application's key this process keeps, when it was found changed.
    pub(crate) fn forget_application_key(&self, application: ApplicationId) {
        if let Some(sealing) = &self.sealing {
            sealing.forget(application.as_uuid());
        }
    }

    /// `key` wrapped for a clone in `receiver`, made at the share so that the import copies
    /// ciphertext without opening it; `None` when the source is in clear.
    pub(crate) async fn wrap_for<C: ConnectionTrait>(
        &self, txn: &C, key: &SessionKey, receiver: ApplicationId,
    ) -> Result<Option<Vec<u8>>, RepoError> {
        let (Some(sealing), SessionKey::Open(key)) = (&self.sealing, key) else {
            return Ok(None);
        };
        let Some(application_key) = sealing.application_key_in(txn, receiver.as_uuid()).await?
        else {
            return Ok(None);
        };
        application_key.wrap(key).map(Some).map_err(|_| sealing_failed("a clone's data key"))
    }

    /// What lists find a session by in `blocks` (the first item of its identity document or
    /// registry check); empty when no block among them names it.
    pub(crate) fn listing_terms<'a>(
        &self, blocks: impl IntoIterator<Item = &'a (FeatureBlock, Vec<FeatureItem>)>,
    ) -> ListingTerms {
        for (block, items) in blocks {
            let Some(first) = items.first() else {
                continue;
            };
            let Ok(first) = serde_json::from_str::<serde_json::Value>(first.json().get()) else {
                continue;
            };
            let (name, country) = handoff_domain::session::listing_terms(*block, &first);
            if name.is_some() || country.is_some() {
                return ListingTerms { name_words: self.name_words(name.as_deref()), country };
            }
        }
        ListingTerms::default()
    }

    /// What `sessions.name_words` holds for `name`: its words ([`handoff_domain::session::name_words`]),
    /// as keyed hashes when this store seals, each between spaces, so that a word is found by
    /// `LIKE '% word %'`.
    pub(crate) fn name_words(&self, name: Option<&str>) -> Option<String> {
        let words = handoff_domain::session::name_words(name?);
        if words.is_empty() {
            return None;
        }
        let words = self.search_words(&words);
        Some(format!(" {} ", words.join(" ")))
    }

    /// Words as `sessions.name_words` holds them.
    pub(crate) fn search_words(&self, words: &[String]) -> Vec<String> {
        match &self.sealing {
            Some(sealing) => sealing.kek.word_hashes(words.iter().map(String::as_str)),
            None => words.to_vec(),
        }
    }

    /// Destroys the application's key and its sessions' data keys, the clone keys of its
    /// shares and the blind index of its sessions and entities: none of its data opens again. Returns how many sessions it held;
    /// `None` when there is no such application.
    pub async fn erase_application(
        &self, application: ApplicationId,
    ) -> Result<Option<u64>, RepoError> {
        use crate::schema::{Sessions, ShareTokens};
        let id = application.as_uuid();
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        let exists = Query::select()
            .column(Applications::Id)
            .from(Applications::Table)
            .and_where(Expr::col(Applications::Id).eq(id))
            .to_owned();
        if fetch_one(&txn, &exists).await?.is_none() {
            return Ok(None);
        }
        let keys = Query::update()
            .table(Applications::Table)
            .value(Applications::DataKey, Option::<Vec<u8>>::None)
            .and_where(Expr::col(Applications::Id).eq(id))
            .to_owned();
        run(&txn, &keys).await?;
        let sessions = Query::update()
            .table(Sessions::Table)
            .value(Sessions::DataKey, Vec::<u8>::new())
            .value(Sessions::NameWords, Option::<String>::None)
            .and_where(Expr::col(Sessions::ApplicationId).eq(id))
            .to_owned();
        let erased = run(&txn, &sessions).await?;
        let entities = Query::update()
            .table(crate::schema::Entities::Table)
            .value(crate::schema::Entities::NameWords, Option::<String>::None)
            .and_where(Expr::col(crate::schema::Entities::ApplicationId).eq(id))
            .to_owned();
        run(&txn, &entities).await?;
        let shares = Query::update()
            .table(ShareTokens::Table)
            .value(ShareTokens::CloneDataKey, Option::<Vec<u8>>::None)
            .and_where(Expr::col(ShareTokens::FromApplicationId).eq(id))
            .to_owned();
        run(&txn, &shares).await?;
        crate::sql::commit(txn).await?;
        if let Some(sealing) = &self.sealing {
            sealing.forget(id);
        }
        Ok(Some(erased))
    }
}

impl DataProtection {
    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, CachedKey>> {
        self.application_keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, application: Uuid) -> Option<CachedKey> {
        self.keys().get(&application).cloned()
    }

    fn forget(&self, application: Uuid) {
        self.keys().remove(&application);
    }

    /// The application's key read on `db`, opened and kept; `None` when it has none.
    async fn read_application_key<C: ConnectionTrait>(
        &self, db: &C, application: Uuid,
    ) -> Result<Option<CachedKey>, RepoError> {
        let Some(Some(stored)) = stored_application_key(db, application).await? else {
            return Ok(None);
        };
        let key = Arc::new(self.open_application_key(application, &stored)?);
        let cached = CachedKey { stored: stored.into(), key };
        self.keys().insert(application, cached.clone());
        Ok(Some(cached))
    }

    fn open_application_key(
        &self, application: Uuid, sealed: &[u8],
    ) -> Result<ApplicationKey, RepoError> {
        self.kek.open_application_key(application, sealed).map_err(|_| {
            RepoError::Internal(
                "an application's key does not open with this key-encryption key".into(),
            )
        })
    }

    /// The application's key read in `txn`, made and stored when it has none; `None` when
    /// there is no such application.
    async fn application_key_in<C: ConnectionTrait>(
        &self, txn: &C, application: Uuid,
    ) -> Result<Option<ApplicationKey>, RepoError> {
        let Some(stored) = stored_application_key(txn, application).await? else {
            return Ok(None);
        };
        if let Some(sealed) = stored {
            return self.open_application_key(application, &sealed).map(Some);
        }
        let (key, sealed) = self
            .kek
            .new_application_key(application)
            .map_err(|_| sealing_failed("a new application key"))?;
        let update = Query::update()
            .table(Applications::Table)
            .value(Applications::DataKey, sealed)
            .and_where(Expr::col(Applications::Id).eq(application))
            .and_where(Expr::col(Applications::DataKey).is_null())
            .to_owned();
        // Two writers that both found none: the second's update matches no row, and it takes
        // the first's key.
        if run(txn, &update).await? == 0 {
            let sealed = stored_application_key(txn, application)
                .await?
                .flatten()
                .ok_or_else(|| sealing_failed("the application's key"))?;
            return self.open_application_key(application, &sealed).map(Some);
        }
        Ok(Some(key))
    }
}

/// A new session's data key, wrapped for its row, and the application's stored key it was
/// made under ([`Store::new_session_key_to_check`]).
pub(crate) struct NewSessionKey {
    pub(crate) key: SessionKey,
    pub(crate) wrapped: Option<Vec<u8>>,
    pub(crate) stored: Option<Vec<u8>>,
}

/// `applications.data_key` of `application`: `None` when there is no such application, `Some(None)`
/// when it has no key.
async fn stored_application_key<C: ConnectionTrait>(
    db: &C, application: Uuid,
) -> Result<Option<Option<Vec<u8>>>, RepoError> {
    let select = Query::select()
        .column(Applications::DataKey)
        .from(Applications::Table)
        .and_where(Expr::col(Applications::Id).eq(application))
        .to_owned();
    match fetch_one(db, &select).await? {
        Some(row) => Ok(Some(get(&row, "data_key")?)),
        None => Ok(None),
    }
}
