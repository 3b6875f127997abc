//! The API keys a server looked up, kept in memory so that a request's key costs no round trip
//! to the database — on PostgreSQL, and only while [`Store::watch_api_keys`] listens to the
//! database's announcements of key changes (migration `000022`): a key revoked by any process
//! is forgotten when its revocation commits. Without the announcements (SQLite, a lost
//! connection) nothing is kept, and every request looks its key up as before.
//!
//! What is kept is what the database answered: the application, the key's hash and its grant;
//! the presented key is still compared with the hash, and the grant's expiry still read from
//! the clock, on every request. An unknown prefix is never kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use handoff_domain::StoredApiKey;
use sea_orm::DatabaseBackend;
use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};

use crate::Store;

/// The channel migration `000022`'s trigger announces a changed key's prefix on.
const CHANNEL: &str = "handoff_api_keys";

/// At most this many keys are kept; a full cache starts again empty.
const MAX_KEPT: usize = 10_000;

/// How long a kept key is trusted without asking the database again: the longest a revocation
/// can go unseen should the announcements stop without the connection saying so.
pub(crate) const KEEP_FOR: Duration = Duration::from_secs(10);

/// How long the watcher waits before listening again after losing the connection.
const LISTEN_AGAIN_AFTER: Duration = Duration::from_secs(1);

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

    /// The announcements heard or lost: either way what was kept is forgotten, since a change
    /// may have gone unannounced meanwhile.
    fn listening(&self, listening: bool) {
        let mut state = self.lock();
        state.generation += 1;
        state.listening = listening;
        state.keys.clear();
    }
}

impl Store {
    /// Keeps the API keys this store looks up while the returned future runs, and forgets
    /// each when any process changes its row (PostgreSQL's `LISTEN`, on a connection of its
    /// own, outside the pool). On SQLite it returns at once, and nothing is kept: another
    /// process (an operator's `handoff keys revoke`) could change a key unannounced.
    pub async fn watch_api_keys(self) {
        if self.backend() != DatabaseBackend::Postgres {
            return;
        }
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
