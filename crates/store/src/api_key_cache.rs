//! The API keys a server looked up, kept in memory so that a request's key costs no round trip
//! to the database, only while [`Store::watch_api_keys`] hears of every change to a key's row,
//! whichever process makes it: on PostgreSQL the database's announcements (migration
//! `000022`), a key forgotten when its change commits; on SQLite a count of changes that the
//! watch reads every [`POLL_EVERY`] (migration `000023`), every key forgotten when it moves.
//! Without them (a lost connection, a failed read) nothing is kept, and every request looks
//! its key up.
//!
//! What is kept is what the database answered: the application, the key's hash and its grant;
//! the presented key is still compared with the hash, and the grant's expiry still read from
//! the clock, on every request. An unknown prefix is never kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use handoff_domain::{RepoError, StoredApiKey};
use sea_orm::DatabaseBackend;
use sea_orm::sea_query::Query;
use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};

use crate::Store;
use crate::rows::get;
use crate::schema::ApiKeyChanges;
use crate::sql::fetch_one;

/// The channel migration `000022`'s trigger announces a changed key's prefix on.
const CHANNEL: &str = "handoff_api_keys";

/// At most this many keys are kept; a full cache starts again empty.
const MAX_KEPT: usize = 10_000;

/// How long a kept key is trusted without asking the database again: the longest a revocation
/// can go unseen should the announcements stop without the connection saying so.
pub(crate) const KEEP_FOR: Duration = Duration::from_secs(10);

/// How long the watcher waits before listening again after losing the connection.
const LISTEN_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// How often the watcher reads SQLite's count of key changes: the longest a change made by
/// another process (an operator's `handoff api-keys revoke`) goes unseen.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(100);

/// The keys kept, and whether they may be.
#[derive(Default)]
pub(crate) struct ApiKeyCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Whether the announcements are heard: nothing is kept or answered otherwise.
    listening: bool,
    /// Counts what made kept keys unsafe (a key forgotten, the announcements lost or back): a
    /// lookup that began before one is not kept, since its answer may predate a revocation.
    generation: u64,
    keys: HashMap<String, (StoredApiKey, Instant)>,
}

/// What the cache says of a prefix.
pub(crate) enum Kept {
    /// The key, as the database answered less than [`KEEP_FOR`] ago.
    Key(StoredApiKey),
    /// Ask the database, then hand the answer to [`ApiKeyCache::keep`] with this generation.
    Ask(u64),
}

impl std::fmt::Debug for ApiKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("ApiKeyCache")
            .field("listening", &state.listening)
            .field("kept", &state.keys.len())
            .finish()
    }
}

impl ApiKeyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, prefix: &str) -> Kept {
        let state = self.lock();
        match state.keys.get(prefix) {
            Some((key, at)) if state.listening && at.elapsed() < KEEP_FOR => Kept::Key(key.clone()),
            _ => Kept::Ask(state.generation),
        }
    }

    /// Keeps what the database answered for `prefix`, unless something made keys unsafe since
    /// the lookup began (`asked`, from [`ApiKeyCache::get`]).
    pub(crate) fn keep(&self, prefix: &str, key: &StoredApiKey, asked: u64) {
        let mut state = self.lock();
        if !state.listening || state.generation != asked {
            return;
        }
        if state.keys.len() >= MAX_KEPT {
            state.keys.clear();
        }
        state.keys.insert(prefix.to_owned(), (key.clone(), Instant::now()));
    }

    /// Forgets the key `prefix` names (announced changed, or changed by this store).
    pub(crate) fn forget(&self, prefix: &str) {
        let mut state = self.lock();
        state.generation += 1;
        state.keys.remove(prefix);
    }

    /// The changes heard (or, on SQLite, the count moved) or lost: either way what was kept
    /// is forgotten, since a change may have gone unheard meanwhile.
    fn listening(&self, listening: bool) {
        let mut state = self.lock();
        state.generation += 1;
        state.listening = listening;
        state.keys.clear();
    }
}

impl Store {
    /// Keeps the API keys this store looks up while the returned future runs, and forgets
    /// each when any process changes its row: on PostgreSQL by `LISTEN`, on a connection of
    /// its own, outside the pool; on SQLite by reading the count of changes every 0.1 s.
    pub async fn watch_api_keys(self) {
        match self.backend() {
            DatabaseBackend::Postgres => self.listen_for_key_changes().await,
            _ => self.poll_key_changes().await,
        }
    }

    async fn listen_for_key_changes(&self) {
        let options = self.db.get_postgres_connection_pool().connect_options();
        loop {
            match listen(&options).await {
                Ok(mut listener) => {
                    self.api_keys.listening(true);
                    // `Ok(None)`: the connection was lost (and is not re-established here).
                    while let Ok(Some(notification)) = listener.try_recv().await {
                        self.api_keys.forget(notification.payload());
                    }
                    self.api_keys.listening(false);
                    tracing::warn!(
                        "lost the database's announcements of API key changes: every request \
                         looks its key up until they are heard again"
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for API key changes; retrying");
                }
            }
            tokio::time::sleep(LISTEN_AGAIN_AFTER).await;
        }
    }

    /// SQLite: every key is forgotten when the count moves, and nothing is kept while it
    /// cannot be read. A lookup that raced the change is not kept (the cache's generation).
    async fn poll_key_changes(&self) {
        let select =
            Query::select().column(ApiKeyChanges::Generation).from(ApiKeyChanges::Table).to_owned();
        let mut seen: Option<i64> = None;
        let mut ticks = tokio::time::interval(POLL_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let count = match fetch_one(&self.db, &select).await {
                Ok(Some(row)) => get::<i64>(&row, "generation"),
                Ok(None) => Err(RepoError::Internal("api_key_changes has no row".into())),
                Err(error) => Err(error),
            };
            match count {
                Ok(count) if seen != Some(count) => {
                    self.api_keys.listening(true);
                    seen = Some(count);
                }
                Ok(_) => {}
                Err(error) => {
                    if seen.take().is_some() {
                        self.api_keys.listening(false);
                        tracing::warn!(
                            %error,
                            "cannot read the count of API key changes: every request looks \
                             its key up until it can"
                        );
                    }
                }
            }
        }
    }
}

/// A listener on [`CHANNEL`] over a connection of its own.
async fn listen(
    options: &sea_orm::sqlx::postgres::PgConnectOptions,
) -> Result<PgListener, sea_orm::sqlx::Error> {
    let pool = PgPoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    // A lost connection ends the watch's inner loop, which forgets every kept key before
    // listening again: reconnecting inside `try_recv` would hide the notifications lost.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use handoff_domain::ApplicationId;
    use handoff_domain::{ApiKeyHash, Grant};

    fn key() -> StoredApiKey {
        StoredApiKey {
            application_id: ApplicationId::from_uuid(uuid::Uuid::nil()),
            hash: ApiKeyHash([7; 32]),
            grant: Grant::default(),
        }
    }

    fn kept(cache: &ApiKeyCache, prefix: &str) -> bool {
        matches!(cache.get(prefix), Kept::Key(_))
    }

    /// Asks as a lookup does and keeps the answer.
    fn look_up(cache: &ApiKeyCache, prefix: &str) {
        let Kept::Ask(asked) = cache.get(prefix) else { panic!("{prefix} was kept already") };
        cache.keep(prefix, &key(), asked);
    }

    #[test]
    fn nothing_is_kept_unless_the_announcements_are_heard() {
        let cache = ApiKeyCache::default();
        look_up(&cache, "aaaaaaaaaaaa");
        assert!(!kept(&cache, "aaaaaaaaaaaa"));
        cache.listening(true);
        look_up(&cache, "aaaaaaaaaaaa");
        assert!(kept(&cache, "aaaaaaaaaaaa"));
        cache.listening(false);
        assert!(!kept(&cache, "aaaaaaaaaaaa"));
        cache.listening(true);
        assert!(!kept(&cache, "aaaaaaaaaaaa"), "a change may have gone unannounced meanwhile");
    }

    #[test]
    fn an_announced_key_is_forgotten_and_others_stay() {
        let cache = ApiKeyCache::default();
        cache.listening(true);
        look_up(&cache, "aaaaaaaaaaaa");
        look_up(&cache, "bbbbbbbbbbbb");
        cache.forget("aaaaaaaaaaaa");
        assert!(!kept(&cache, "aaaaaaaaaaaa"));
        assert!(kept(&cache, "bbbbbbbbbbbb"));
    }

    #[test]
    fn an_answer_read_before_a_change_was_announced_is_not_kept() {
        let cache = ApiKeyCache::default();
        cache.listening(true);
        let Kept::Ask(asked) = cache.get("aaaaaaaaaaaa") else { panic!("kept") };
        // The revocation commits and is announced while the lookup's answer is on its way.
        cache.forget("aaaaaaaaaaaa");
        cache.keep("aaaaaaaaaaaa", &key(), asked);
        assert!(!kept(&cache, "aaaaaaaaaaaa"));
    }

    #[test]
    fn a_key_kept_for_longer_than_keep_for_is_asked_for_again() {
        let cache = ApiKeyCache::default();
        cache.listening(true);
        look_up(&cache, "aaaaaaaaaaaa");
        let long_ago = Instant::now().checked_sub(KEEP_FOR).unwrap();
        cache.lock().keys.get_mut("aaaaaaaaaaaa").unwrap().1 = long_ago;
        assert!(!kept(&cache, "aaaaaaaaaaaa"));
    }

    #[test]
    fn a_full_cache_starts_again_empty() {
        let cache = ApiKeyCache::default();
        cache.listening(true);
        for i in 0..MAX_KEPT {
            look_up(&cache, &format!("{i:012x}"));
        }
        assert!(kept(&cache, &format!("{:012x}", 0)));
        look_up(&cache, "ffffffffffff");
        assert!(!kept(&cache, &format!("{:012x}", 0)));
        assert!(kept(&cache, "ffffffffffff"));
        assert_eq!(cache.lock().keys.len(), 1);
    }
}
