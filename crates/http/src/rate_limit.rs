//! Rate limits per API key: a fixed 60-second window, one budget for reads (GET) and one for
//! writes (every other method), as Didit does; and per client address, a budget of requests
//! without a valid key, spent before the key is looked up. Counted per server process, or in
//! a [`SharedCounter`] that every server on one database spends together.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use handoff_domain::RepoError;
use sha2::{Digest, Sha256};

/// The window, in seconds.
pub const WINDOW_SECONDS: u64 = 60;

/// Requests allowed per key and window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// GET requests per minute (Didit: 600).
    pub reads_per_minute: u32,
    /// Other requests per minute (Didit: 300).
    pub writes_per_minute: u32,
    /// Requests without a valid key per client address and minute; once spent, the address's
    /// requests are refused before their key is looked up, until the window ends.
    pub unauthenticated_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { reads_per_minute: 600, writes_per_minute: 300, unauthenticated_per_minute: 60 }
    }
}

/// A `HANDOFF_RATE_LIMIT` that is neither `off` nor `READS,WRITES[,UNAUTHENTICATED]`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "HANDOFF_RATE_LIMIT must be `off` or `READS,WRITES[,UNAUTHENTICATED]` per minute, e.g. \
     `600,300,60` (got {0:?})"
)]
pub struct RateLimitSettingError(String);

impl RateLimits {
    /// Parses `HANDOFF_RATE_LIMIT`: `off`, or `READS,WRITES[,UNAUTHENTICATED]` per minute.
    /// `Ok(None)` is off.
    pub fn parse(setting: &str) -> Result<Option<RateLimits>, RateLimitSettingError> {
        let setting = setting.trim();
        if setting.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let invalid = || RateLimitSettingError(setting.to_owned());
        let numbers: Vec<u32> = setting
            .split(',')
            .map(|n| n.trim().parse::<u32>().ok().filter(|n| *n > 0))
            .collect::<Option<_>>()
            .ok_or_else(invalid)?;
        match numbers[..] {
            [reads, writes] => Ok(Some(RateLimits {
                reads_per_minute: reads,
                writes_per_minute: writes,
                ..RateLimits::default()
            })),
            [reads, writes, unauthenticated] => Ok(Some(RateLimits {
                reads_per_minute: reads,
                writes_per_minute: writes,
                unauthenticated_per_minute: unauthenticated,
            })),
            _ => Err(invalid()),
        }
    }
}

/// Which budget a request draws on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Budget {
    /// GET.
    Read,
    /// Everything else.
    Write,
    /// Requests without a valid key, per client address.
    Unauthenticated,
}

/// What the limiter decided, with what the `X-RateLimit-*` headers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// The budget of the window.
    pub limit: u32,
    /// Requests left in the window after this one.
    pub remaining: u32,
    /// When the window ends, in epoch seconds.
    pub reset: u64,
    /// Seconds until then.
    pub retry_after: u64,
}

/// Counts requests in a store shared by every server, so that they spend one budget.
#[async_trait::async_trait]
pub trait SharedCounter: Send + Sync {
    /// Counts one request of `bucket` in the window starting at `window_start` (epoch seconds);
    /// answers the window's count, this request included.
    async fn count(&self, bucket: &str, window_start: u64) -> Result<u64, RepoError>;
}

/// Counts requests per key and budget in the current window: in this process, or in a
/// [`SharedCounter`] when it has one.
pub struct RateLimiter {
    limits: RateLimits,
    /// Per key and budget, the window and its count: every count without a shared counter;
    /// with one, the last count it answered, so that a spent budget is seen without asking.
    windows: Mutex<HashMap<(String, Budget), (u64, u64)>>,
    shared: Option<Arc<dyn SharedCounter>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limits", &self.limits)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// Keys tracked before old windows are swept.
const SWEEP_AT: usize = 10_000;

fn now_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// The start of the window `now` falls in.
pub fn window_start(now: u64) -> u64 {
    now - now % WINDOW_SECONDS
}

/// The shared counter's name for a key's budget. Client addresses are hashed, so that the
/// database holds none.
fn bucket(key: &str, budget: Budget) -> String {
    match budget {
        Budget::Read => format!("read:{key}"),
        Budget::Write => format!("write:{key}"),
        Budget::Unauthenticated => {
            let digest = Sha256::digest(key.as_bytes());
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("address:{hex}")
        }
    }
}

impl RateLimiter {
    /// A limiter with these budgets, counting in this process.
    pub fn new(limits: RateLimits) -> Self {
        Self { limits, windows: Mutex::new(HashMap::new()), shared: None }
    }

    /// The same limiter counting in `counter`, shared with other servers.
    pub fn sharing(self, counter: Arc<dyn SharedCounter>) -> Self {
        Self { shared: Some(counter), ..self }
    }

    /// Counts one request of `key` against `budget` at the current time.
    pub async fn check(&self, key: &str, budget: Budget) -> Result<Decision, RepoError> {
        let now = now_seconds();
        let Some(counter) = &self.shared else {
            return Ok(self.check_at(key, budget, now));
        };
        let window = window_start(now);
        let used = counter.count(&bucket(key, budget), window).await?;
        let mut windows = self.windows();
        let entry = windows.entry((key.to_owned(), budget)).or_insert((window, 0));
        // Counts answered out of order keep the highest.
        if entry.0 != window || entry.1 < used {
            *entry = (window, used);
        }
        Ok(self.decide(budget, used, now))
    }

    /// Whether `key`'s `budget` is spent in the current window, without counting a request.
    /// With a shared counter, this is the count this process last saw.
    pub fn spent(&self, key: &str, budget: Budget) -> Option<Decision> {
        self.spent_at(key, budget, now_seconds())
    }

    /// [`RateLimiter::spent`] at `now` (epoch seconds).
    pub fn spent_at(&self, key: &str, budget: Budget, now: u64) -> Option<Decision> {
        let window = window_start(now);
        let used = self
            .windows()
            .get(&(key.to_owned(), budget))
            .filter(|(start, _)| *start == window)
            .map_or(0, |(_, used)| *used);
        let decision = self.decide(budget, used + 1, now);
        (!decision.allowed).then_some(decision)
    }

    fn limit(&self, budget: Budget) -> u32 {
        match budget {
            Budget::Read => self.limits.reads_per_minute,
            Budget::Write => self.limits.writes_per_minute,
            Budget::Unauthenticated => self.limits.unauthenticated_per_minute,
        }
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Budget), (u64, u64)>> {
        self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The decision on a request that is the `used`th of its window.
    fn decide(&self, budget: Budget, used: u64, now: u64) -> Decision {
        let limit = self.limit(budget);
        let reset = window_start(now) + WINDOW_SECONDS;
        Decision {
            allowed: used <= u64::from(limit),
            limit,
            remaining: u32::try_from(u64::from(limit).saturating_sub(used)).unwrap_or(0),
            reset,
            retry_after: reset - now,
        }
    }

    /// Counts one request at `now` (epoch seconds), in this process.
    pub fn check_at(&self, key: &str, budget: Budget, now: u64) -> Decision {
        let window = window_start(now);
        let used = {
            let mut windows = self.windows();
            if windows.len() >= SWEEP_AT {
                windows.retain(|_, (start, _)| *start == window);
            }
            let entry = windows.entry((key.to_owned(), budget)).or_insert((window, 0));
            if entry.0 != window {
                *entry = (window, 0);
            }
            entry.1 = entry.1.saturating_add(1);
            entry.1
        };
        self.decide(budget, used, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_per_key_kind_and_window() {
        let limiter = RateLimiter::new(RateLimits {
            reads_per_minute: 2,
            writes_per_minute: 1,
            unauthenticated_per_minute: 1,
        });
        let t = 1_800_000_010; // 10 s into a window (1_800_000_000 is a multiple of 60)
        assert_eq!(
            limiter.check_at("a", Budget::Read, t),
            Decision { allowed: true, limit: 2, remaining: 1, reset: t - 10 + 60, retry_after: 50 }
        );
        assert!(limiter.check_at("a", Budget::Read, t).allowed);
        let refused = limiter.check_at("a", Budget::Read, t + 1);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after, 49);
        assert!(limiter.check_at("a", Budget::Write, t).allowed, "writes have their own budget");
        assert!(!limiter.check_at("a", Budget::Write, t).allowed);
        assert!(limiter.check_at("b", Budget::Read, t).allowed, "other keys have their own");
        assert!(limiter.check_at("a", Budget::Read, t + 50).allowed, "a new window starts afresh");
        // A budget is seen spent without spending it.
        assert_eq!(limiter.spent_at("ip", Budget::Unauthenticated, t), None);
        assert!(limiter.check_at("ip", Budget::Unauthenticated, t).allowed);
        let spent = limiter.spent_at("ip", Budget::Unauthenticated, t + 1).unwrap();
        assert_eq!((spent.allowed, spent.retry_after), (false, 49));
        assert_eq!(limiter.spent_at("ip", Budget::Unauthenticated, t + 50), None);
    }

    /// A counter other servers have spent from already.
    struct Elsewhere(Mutex<u64>);

    #[async_trait::async_trait]
    impl SharedCounter for Elsewhere {
        async fn count(&self, bucket: &str, _: u64) -> Result<u64, RepoError> {
            assert!(bucket.starts_with("read:") || bucket.starts_with("address:"));
            assert!(!bucket.contains("10.0.0.1"), "addresses are hashed");
            let mut hits = self.0.lock().unwrap();
            *hits += 1;
            Ok(*hits)
        }
    }

    #[tokio::test]
    async fn a_shared_counter_decides_and_is_remembered() {
        let limits =
            RateLimits { reads_per_minute: 3, writes_per_minute: 3, unauthenticated_per_minute: 3 };
        let limiter = RateLimiter::new(limits).sharing(Arc::new(Elsewhere(Mutex::new(2))));
        let last = limiter.check("key", Budget::Read).await.unwrap();
        assert_eq!((last.allowed, last.remaining), (true, 0));
        assert!(!limiter.check("key", Budget::Read).await.unwrap().allowed);
        // The address's budget is spent too (the same counter here), and seen without asking.
        assert!(!limiter.check("10.0.0.1", Budget::Unauthenticated).await.unwrap().allowed);
        assert!(limiter.spent("10.0.0.1", Budget::Unauthenticated).is_some());
        assert!(limiter.spent("10.0.0.2", Budget::Unauthenticated).is_none());
    }

    #[test]
    fn settings() {
        assert_eq!(RateLimits::parse("off"), Ok(None));
        assert_eq!(RateLimits::parse("OFF"), Ok(None));
        assert_eq!(
            RateLimits::parse("10, 5"),
            Ok(Some(RateLimits {
                reads_per_minute: 10,
                writes_per_minute: 5,
                unauthenticated_per_minute: 60
            }))
        );
        assert_eq!(
            RateLimits::parse("10,5,3"),
            Ok(Some(RateLimits {
                reads_per_minute: 10,
                writes_per_minute: 5,
                unauthenticated_per_minute: 3
            }))
        );
        for bad in ["", "10", "a,b", "0,5", "-1,5", "10,5,0", "10,5,1,1"] {
            assert!(RateLimits::parse(bad).is_err(), "{bad}");
        }
    }
}
