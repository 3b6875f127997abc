//! Rate limits per API key: a fixed 60-second window, one budget for reads (GET) and one for
//! writes (every other method), as Didit does; and per client address, a budget of requests
//! without a valid key, spent before the key is looked up. Counted per server process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

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
        Self {
            reads_per_minute: 600,
            writes_per_minute: 300,
            unauthenticated_per_minute: 60,
        }
    }
}

impl RateLimits {
    /// Parses `HANDOFF_RATE_LIMIT`: `off`, or `READS,WRITES[,UNAUTHENTICATED]` per minute.
    /// `Ok(None)` is off.
    pub fn parse(setting: &str) -> Result<Option<RateLimits>, String> {
        let setting = setting.trim();
        if setting.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let invalid = || {
            format!(
                "HANDOFF_RATE_LIMIT must be `off` or `READS,WRITES[,UNAUTHENTICATED]` per minute, e.g. `600,300,60` (got {setting:?})"
            )
        };
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

/// Counts requests per key and budget in the current window.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    windows: Mutex<HashMap<(String, Budget), (u64, u32)>>,
}

/// Keys tracked before old windows are swept.
const SWEEP_AT: usize = 10_000;

impl RateLimiter {
    /// A limiter with these budgets.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `key` against `budget` at the current time.
    pub fn check(&self, key: &str, budget: Budget) -> Decision {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        self.check_at(key, budget, now)
    }

    /// Whether `key`'s `budget` is spent in the current window, without counting a request.
    pub fn spent(&self, key: &str, budget: Budget) -> Option<Decision> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        self.spent_at(key, budget, now)
    }

    /// [`RateLimiter::spent`] at `now` (epoch seconds).
    pub fn spent_at(&self, key: &str, budget: Budget, now: u64) -> Option<Decision> {
        let limit = self.limit(budget);
        let window = now - now % WINDOW_SECONDS;
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let used = windows
            .get(&(key.to_owned(), budget))
            .filter(|(start, _)| *start == window)
            .map_or(0, |(_, used)| *used);
        (used >= limit).then_some(Decision {
            allowed: false,
            limit,
            remaining: 0,
            reset: window + WINDOW_SECONDS,
            retry_after: window + WINDOW_SECONDS - now,
        })
    }

    fn limit(&self, budget: Budget) -> u32 {
        match budget {
            Budget::Read => self.limits.reads_per_minute,
            Budget::Write => self.limits.writes_per_minute,
            Budget::Unauthenticated => self.limits.unauthenticated_per_minute,
        }
    }

    /// Counts one request at `now` (epoch seconds).
    pub fn check_at(&self, key: &str, budget: Budget, now: u64) -> Decision {
        let limit = self.limit(budget);
        let window = now - now % WINDOW_SECONDS;
        let reset = window + WINDOW_SECONDS;
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, (start, _)| *start == window);
        }
        let entry = windows
            .entry((key.to_owned(), budget))
            .or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        let allowed = entry.1 < limit;
        if allowed {
            entry.1 += 1;
        }
        Decision {
            allowed,
            limit,
            remaining: limit - entry.1,
            reset,
            retry_after: reset - now,
        }
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
            Decision {
                allowed: true,
                limit: 2,
                remaining: 1,
                reset: t - 10 + 60,
                retry_after: 50
            }
        );
        assert!(limiter.check_at("a", Budget::Read, t).allowed);
        let refused = limiter.check_at("a", Budget::Read, t + 1);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after, 49);
        assert!(
            limiter.check_at("a", Budget::Write, t).allowed,
            "writes have their own budget"
        );
        assert!(!limiter.check_at("a", Budget::Write, t).allowed);
        assert!(
            limiter.check_at("b", Budget::Read, t).allowed,
            "other keys have their own"
        );
        assert!(
            limiter.check_at("a", Budget::Read, t + 50).allowed,
            "a new window starts afresh"
        );
        // A budget is seen spent without spending it.
        assert_eq!(limiter.spent_at("ip", Budget::Unauthenticated, t), None);
        assert!(limiter.check_at("ip", Budget::Unauthenticated, t).allowed);
        let spent = limiter
            .spent_at("ip", Budget::Unauthenticated, t + 1)
            .unwrap();
        assert_eq!((spent.allowed, spent.retry_after), (false, 49));
        assert_eq!(
            limiter.spent_at("ip", Budget::Unauthenticated, t + 50),
            None
        );
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
