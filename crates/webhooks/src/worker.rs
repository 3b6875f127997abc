//! The delivery worker every server runs: it fans new outbox events out to the destinations
//! subscribed to them, claims due deliveries, POSTs them signed, and records each answer — a
//! 2xx delivers; anything else, or no answer within the timeout, is retried on the schedule
//! (with jitter) until it runs out, then the delivery is failed. At least once: a delivery
//! claimed by a process that dies comes due again after its lease.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use handoff_domain::ports::SessionRepository;
use handoff_domain::services::secret_context;
use handoff_store::{AttemptOutcome, DueDelivery, Store};
use handoff_token::KeyEncryptionKey;

use crate::client::{self, AddressPolicy, MAX_RESPONSE_BYTES};
use crate::payload::{self, DecisionRenderer};
use crate::sign;

/// The waits between attempts, in seconds, by default: about five and a half hours in all,
/// eight attempts.
pub const DEFAULT_SCHEDULE: [u64; 7] = [10, 30, 120, 600, 1800, 3600, 14_400];

/// How the worker runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How often an idle worker looks for work.
    pub poll: Duration,
    /// The most deliveries sent at once by one worker.
    pub batch: u64,
    /// How long an answer is waited for.
    pub timeout: Duration,
    /// The waits between attempts; after the last, the delivery is failed.
    pub schedule: Vec<Duration>,
    /// Whether `http` destinations and private addresses may be reached.
    pub allow_private: bool,
    /// How long delivered rows are kept.
    pub keep_delivered: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(100),
            batch: 32,
            timeout: Duration::from_secs(10),
            schedule: DEFAULT_SCHEDULE
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            allow_private: false,
            keep_delivered: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Parses `HANDOFF_WEBHOOK_RETRY_SCHEDULE`: seconds between attempts, comma-separated.
pub fn parse_schedule(raw: &str) -> Result<Vec<Duration>, String> {
    raw.split(',')
        .map(|part| {
            part.trim()
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=86_400).contains(s))
                .map(Duration::from_secs)
                .ok_or_else(|| format!("{part:?} is not a number of seconds from 1 to 86400"))
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|schedule| {
            if schedule.is_empty() || schedule.len() > 20 {
                Err("give 1 to 20 waits".to_owned())
            } else {
                Ok(schedule)
            }
        })
}

/// Delivers webhooks from the outbox.
#[derive(Clone)]
pub struct Worker {
    store: Store,
    kek: KeyEncryptionKey,
    decision: DecisionRenderer,
    settings: Arc<Settings>,
    /// The client of `https` destinations, and the addresses it may reach.
    https: (reqwest::Client, AddressPolicy),
    /// The client of `http` destinations (private addresses only), when they are allowed.
    http: Option<(reqwest::Client, AddressPolicy)>,
}

impl Worker {
    /// A worker over `store`, opening secrets with `kek`.
    pub fn new(
        store: Store,
        kek: KeyEncryptionKey,
        decision: DecisionRenderer,
        settings: Settings,
    ) -> Result<Self, String> {
        let agent = format!("handoff-webhooks/{}", env!("CARGO_PKG_VERSION"));
        let https_policy = if settings.allow_private {
            AddressPolicy::AllowPrivate
        } else {
            AddressPolicy::PublicOnly
        };
        let checked = |policy| {
            client::client(policy, settings.timeout, &agent)
                .map(|client| (client, policy))
                .map_err(|e| e.to_string())
        };
        let https = checked(https_policy)?;
        let http = if settings.allow_private {
            Some(checked(AddressPolicy::PrivateOnly)?)
        } else {
            None
        };
        Ok(Self {
            store,
            kek,
            decision,
            settings: Arc::new(settings),
            https,
            http,
        })
    }

    /// Runs until `stop` says so: work while there is some, then poll. A round under way when
    /// the stop comes finishes first (deliveries cut short come due again after their lease).
    pub fn spawn(
        self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut last_prune = std::time::Instant::now();
            while !*stop.borrow() {
                let busy = match self.step().await {
                    Ok(done) => done > 0,
                    Err(error) => {
                        tracing::warn!(%error, "webhook delivery stalled");
                        false
                    }
                };
                if last_prune.elapsed() > Duration::from_secs(3600) {
                    last_prune = std::time::Instant::now();
                    self.prune().await;
                }
                if !busy {
                    tokio::select! {
                        _ = stop.changed() => {}
                        () = tokio::time::sleep(self.settings.poll) => {}
                    }
                }
            }
        })
    }

    /// One round: dispatch new events, send what is due; how many of either.
    pub async fn step(&self) -> Result<usize, String> {
        let now = Utc::now();
        let dispatched = self
            .store
            .dispatch_webhook_events(100, now)
            .await
            .map_err(|e| e.to_string())?;
        let lease = chrono::Duration::from_std(self.settings.timeout + Duration::from_secs(5))
            .unwrap_or_else(|_| chrono::Duration::seconds(15));
        let due = self
            .store
            .claim_webhook_deliveries(self.settings.batch, now, lease)
            .await
            .map_err(|e| e.to_string())?;
        let sent = due.len();
        let mut tasks = tokio::task::JoinSet::new();
        for delivery in due {
            let worker = self.clone();
            tasks.spawn(async move { worker.deliver(delivery).await });
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok(Err(error)) = done {
                tracing::warn!(%error, "could not record a webhook attempt");
            }
        }
        Ok(dispatched + sent)
    }

    async fn prune(&self) {
        let keep = chrono::Duration::from_std(self.settings.keep_delivered)
            .unwrap_or_else(|_| chrono::Duration::days(7));
        match self.store.prune_webhooks(Utc::now() - keep).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned delivered webhooks"),
            Err(error) => tracing::warn!(%error, "could not prune webhooks"),
        }
    }

    /// Sends one delivery and records what came of it.
    async fn deliver(&self, due: DueDelivery) -> Result<(), handoff_domain::RepoError> {
        let outcome = match self.attempt(&due).await {
            Ok(status) if (200..300).contains(&status) => AttemptOutcome::Delivered { status },
            Ok(status) => self.failed(&due, Some(status), format!("answered {status}")),
            Err(error) => self.failed(&due, None, error),
        };
        if let AttemptOutcome::Failed {
            retry_at: None,
            error,
            ..
        } = &outcome
        {
            tracing::warn!(delivery = %due.id, attempts = due.attempt, %error, "webhook delivery failed for good");
        }
        self.store
            .record_webhook_attempt(due.id, &outcome, Utc::now())
            .await
    }

    fn failed(&self, due: &DueDelivery, status: Option<u16>, error: String) -> AttemptOutcome {
        let index = usize::try_from(due.attempt.max(1) - 1).unwrap_or(usize::MAX);
        let retry_at = self.settings.schedule.get(index).map(|wait| {
            // ±20 % jitter, so that retries of one outage do not arrive together.
            let mut byte = [0u8; 1];
            let _ = getrandom::fill(&mut byte);
            let factor = 0.8 + 0.4 * f64::from(byte[0]) / 255.0;
            let wait = wait.mul_f64(factor);
            Utc::now()
                + chrono::Duration::from_std(wait).unwrap_or_else(|_| chrono::Duration::hours(1))
        });
        AttemptOutcome::Failed {
            status,
            error,
            retry_at,
        }
    }

    /// One POST: the answer's status, or why none came.
    async fn attempt(&self, due: &DueDelivery) -> Result<u16, String> {
        let payload = match &due.payload {
            Some(payload) => payload.clone(),
            None => {
                let record = match due.session_id {
                    Some(id) => self
                        .store
                        .find_session(due.application_id, id)
                        .await
                        .map_err(|e| e.to_string())?,
                    None => None,
                };
                let rendered = payload::render(due, record.as_ref(), &self.decision).to_string();
                self.store
                    .keep_webhook_payload(due.event_id, &rendered)
                    .await
                    .map_err(|e| e.to_string())?
            }
        };
        let secret = self
            .kek
            .open_for(&secret_context(due.destination_id), &due.secret.bytes)
            .map_err(|e| format!("the destination's secret does not open: {e}"))?;
        let (body, value) = payload::with_timestamp(&payload, Utc::now().timestamp());
        let signatures = sign::sign(&secret, &body, &value);
        let url = reqwest::Url::parse(&due.url).map_err(|_| "the url does not parse".to_owned())?;
        let (client, policy) = match (url.scheme(), &self.http) {
            ("https", _) => &self.https,
            ("http", Some(http)) => http,
            _ => return Err("http destinations are not allowed here".into()),
        };
        client::check_literal(&url, *policy)?;
        let timestamp = value
            .get("timestamp")
            .map(ToString::to_string)
            .unwrap_or_default();
        let mut response = client
            .post(url)
            .header("content-type", "application/json")
            .header("x-signature", &signatures.raw)
            .header("x-signature-v2", &signatures.v2)
            .header("x-signature-simple", &signatures.simple)
            .header("x-timestamp", timestamp)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        // Read a little of the answer, at most 64 KiB, so the connection can be reused.
        let mut read = 0;
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read >= MAX_RESPONSE_BYTES {
                break;
            }
        }
        Ok(status)
    }
}

/// Why a request got no answer, without the URL's query or anything sent.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "no answer within the timeout".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else if error.is_redirect() {
        "redirects are not followed".into()
    } else {
        "the request failed".into()
    }
}
