//! The delivery worker every server runs: it fans new outbox events out to the destinations
//! subscribed to them, claims due deliveries, POSTs them signed, and records each answer — a
//! 2xx delivers; anything else, or no answer within the timeout, is retried on the schedule
//! (with jitter) until it runs out, then the delivery is failed. At least once: a delivery
//! claimed by a process that dies comes due again after its lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use handoff_domain::RepoError;
use handoff_domain::delivery::{AttemptOutcome, Claim, DueDelivery};
use handoff_domain::ports::{Clock, DeliveryQueue, SessionRepository};
use handoff_domain::services::secret_context;
use handoff_domain::{DeliveryId, DestinationId, EventId};
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
    /// The most deliveries one worker has under way at once.
    pub in_flight: usize,
    /// The most of them to any one destination: a destination that is slow or down holds
    /// this many, and the others go on.
    pub per_destination: usize,
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
            in_flight: 64,
            per_destination: 16,
            timeout: Duration::from_secs(10),
            schedule: DEFAULT_SCHEDULE.iter().map(|s| Duration::from_secs(*s)).collect(),
            allow_private: false,
            keep_delivered: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Why a retry schedule is refused.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// A wait that is not a whole number of seconds from 1 to 86,400.
    #[error("{0:?} is not a number of seconds from 1 to 86400")]
    NotSeconds(String),
    /// None, or more than 20.
    #[error("give 1 to 20 waits")]
    Count,
}

/// Why a worker could not start or run a round.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The HTTP client could not be built.
    #[error("the webhook HTTP client could not be built: {0}")]
    Client(#[from] reqwest::Error),
    /// The queue did not answer.
    #[error("the webhook queue did not answer: {0}")]
    Queue(#[from] RepoError),
}

/// Why an attempt got no answer: what the delivery's `last_error` says.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("the event's payload is gone")]
    PayloadGone,
    #[error("the destination's secret does not open: {0}")]
    SecretDoesNotOpen(String),
    #[error("the url does not parse")]
    UrlDoesNotParse,
    #[error("http destinations are not allowed here")]
    HttpNotAllowed,
    #[error("{0} is not an address a webhook may be sent to")]
    Address(std::net::IpAddr),
    #[error(transparent)]
    NameRefused(client::RefusedName),
    #[error("the url names no host")]
    NoHost,
    #[error("{0}")]
    NoAnswer(&'static str),
}

/// Parses `HANDOFF_WEBHOOK_RETRY_SCHEDULE`: seconds between attempts, comma-separated.
pub fn parse_schedule(raw: &str) -> Result<Vec<Duration>, ScheduleError> {
    let schedule = raw
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=86_400).contains(s))
                .map(Duration::from_secs)
                .ok_or_else(|| ScheduleError::NotSeconds(part.to_owned()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if schedule.is_empty() || schedule.len() > 20 {
        Err(ScheduleError::Count)
    } else {
        Ok(schedule)
    }
}

/// What a worker works on: the outbox's queue, the sessions its payloads describe, the time.
#[derive(Clone)]
pub struct WorkerPorts {
    /// The outbox and its deliveries.
    pub queue: Arc<dyn DeliveryQueue>,
    /// The sessions, read to render payloads.
    pub sessions: Arc<dyn SessionRepository>,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

/// The most deliveries one claim takes.
const CLAIM_AT_ONCE: usize = 32;
/// The longest an answer waits to be recorded with others.
const RECORD_WITHIN: Duration = Duration::from_millis(25);

/// A delivery's destination, its id and what came of it.
type Finished = (DestinationId, DeliveryId, AttemptOutcome);

/// What a worker is sending: one task per delivery.
#[derive(Default)]
struct UnderWay {
    tasks: tokio::task::JoinSet<Finished>,
    by_destination: HashMap<DestinationId, usize>,
    /// Outcomes not yet recorded, and since when the oldest waits.
    ready: Vec<(DeliveryId, AttemptOutcome)>,
    ready_since: Option<tokio::time::Instant>,
}

impl UnderWay {
    fn start(&mut self, destination: DestinationId) {
        *self.by_destination.entry(destination).or_default() += 1;
    }

    /// Destinations with deliveries under way: the next claim takes none of theirs, so that
    /// a destination has at most one claim's share under way at once.
    fn busy(&self) -> Vec<DestinationId> {
        self.by_destination.keys().copied().collect()
    }

    fn done(&mut self, joined: Result<Finished, tokio::task::JoinError>) {
        // A task that panicked leaves its delivery claimed: it comes due after its lease.
        let Ok((destination, delivery, outcome)) = joined else {
            return;
        };
        if let Some(n) = self.by_destination.get_mut(&destination) {
            *n -= 1;
            if *n == 0 {
                self.by_destination.remove(&destination);
            }
        }
        self.ready.push((delivery, outcome));
        self.ready_since.get_or_insert_with(tokio::time::Instant::now);
    }

    /// Takes in the outcomes of the deliveries that finished.
    fn collect(&mut self) {
        while let Some(joined) = self.tasks.try_join_next() {
            self.done(joined);
        }
    }

    /// Whether to record the outcomes waiting now: when nothing else is under way, when a
    /// claim's worth waits, or when the oldest has waited [`RECORD_WITHIN`]. Answers that
    /// come together are recorded together, in one transaction.
    fn record_due(&self) -> bool {
        !self.ready.is_empty()
            && (self.tasks.is_empty()
                || self.ready.len() >= CLAIM_AT_ONCE
                || self.record_by().is_some_and(|at| at <= tokio::time::Instant::now()))
    }

    /// When the outcomes waiting must be recorded.
    fn record_by(&self) -> Option<tokio::time::Instant> {
        self.ready_since.map(|since| since + RECORD_WITHIN)
    }

    /// The outcomes waiting.
    fn take(&mut self) -> Vec<(DeliveryId, AttemptOutcome)> {
        self.ready_since = None;
        std::mem::take(&mut self.ready)
    }

    /// Waits until a delivery finishes; forever when none is under way.
    async fn one_finishes(&mut self) {
        match self.tasks.join_next().await {
            Some(joined) => self.done(joined),
            None => std::future::pending().await,
        }
    }

    /// Waits for every delivery under way; the outcomes not yet taken.
    async fn all_finish(&mut self) -> Vec<(DeliveryId, AttemptOutcome)> {
        while let Some(joined) = self.tasks.join_next().await {
            self.done(joined);
        }
        self.take()
    }
}

/// Delivers webhooks from the outbox.
#[derive(Clone)]
pub struct Worker {
    ports: WorkerPorts,
    kek: KeyEncryptionKey,
    decision: DecisionRenderer,
    settings: Arc<Settings>,
    /// The client of `https` destinations, and the addresses it may reach.
    https: (reqwest::Client, AddressPolicy),
    /// The client of `http` destinations (private addresses only), when they are allowed.
    http: Option<(reqwest::Client, AddressPolicy)>,
}

impl Worker {
    /// A worker over `ports`, opening secrets with `kek`.
    pub fn new(
        ports: WorkerPorts, kek: KeyEncryptionKey, decision: DecisionRenderer, settings: Settings,
    ) -> Result<Self, WorkerError> {
        let agent = format!("handoff-webhooks/{}", env!("CARGO_PKG_VERSION"));
        let https_policy = if settings.allow_private {
            AddressPolicy::AllowPrivate
        } else {
            AddressPolicy::PublicOnly
        };
        let checked = |policy| {
            client::client(policy, settings.timeout, &agent).map(|client| (client, policy))
        };
        let https = checked(https_policy)?;
        let http =
            if settings.allow_private { Some(checked(AddressPolicy::PrivateOnly)?) } else { None };
        Ok(Self { ports, kek, decision, settings: Arc::new(settings), https, http })
    }

    /// Runs until `stop` says so: claims what is due while it has room, sends each delivery
    /// as its own task, records the answers as they come (those that came together in one
    /// transaction), and polls when idle. On stop, what is under way finishes and is recorded
    /// (deliveries cut short come due again after their lease).
    pub fn spawn(
        self, mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut last_prune = std::time::Instant::now();
            let mut under_way = UnderWay::default();
            while !*stop.borrow() {
                let launched = match self.launch(&mut under_way).await {
                    Ok(launched) => launched,
                    Err(error) => {
                        tracing::warn!(%error, "webhook delivery stalled");
                        0
                    }
                };
                under_way.collect();
                let recorded =
                    if under_way.record_due() { self.record(under_way.take()).await } else { 0 };
                if last_prune.elapsed() > Duration::from_secs(3600) {
                    last_prune = std::time::Instant::now();
                    self.prune().await;
                }
                if launched == 0 && recorded == 0 {
                    let record_by = under_way.record_by();
                    tokio::select! {
                        _ = stop.changed() => {}
                        () = tokio::time::sleep(self.settings.poll) => {}
                        () = under_way.one_finishes() => {}
                        () = async {
                            match record_by {
                                Some(at) => tokio::time::sleep_until(at).await,
                                None => std::future::pending().await,
                            }
                        } => {}
                    }
                }
            }
            let last = under_way.all_finish().await;
            self.record(last).await;
        })
    }

    /// One round, start to end: dispatch new events, send what is due, wait for every answer,
    /// record them; how many events and deliveries it handled.
    pub async fn step(&self) -> Result<usize, WorkerError> {
        let mut under_way = UnderWay::default();
        let handled = self.launch(&mut under_way).await?;
        let outcomes = under_way.all_finish().await;
        self.ports.queue.record_webhook_attempts(&outcomes, self.ports.clock.now()).await?;
        Ok(handled)
    }

    /// Dispatches new events and starts sending what is due, as far as there is room; how
    /// many events and deliveries.
    async fn launch(&self, under_way: &mut UnderWay) -> Result<usize, WorkerError> {
        let now = self.ports.clock.now();
        let dispatched = self.ports.queue.dispatch_webhook_events(100, now).await?;
        let room = self.settings.in_flight.saturating_sub(under_way.tasks.len());
        if room == 0 {
            return Ok(dispatched);
        }
        let busy = under_way.busy();
        let claim = Claim {
            limit: room.min(CLAIM_AT_ONCE),
            per_destination: self.settings.per_destination,
            busy: &busy,
            lease: chrono::Duration::from_std(self.settings.timeout + Duration::from_secs(5))
                .unwrap_or_else(|_| chrono::Duration::seconds(15)),
        };
        let due = self.ports.queue.claim_webhook_deliveries(&claim, now).await?;
        let sent = due.len();
        let payloads = self.payloads(&due).await?;
        for delivery in due {
            under_way.start(delivery.destination_id);
            let worker = self.clone();
            let payload = payloads.get(&delivery.event_id).cloned();
            under_way.tasks.spawn(async move {
                let outcome = worker.deliver(&delivery, payload).await;
                (delivery.destination_id, delivery.id, outcome)
            });
        }
        Ok(dispatched + sent)
    }

    /// Records `outcomes` in one transaction; how many. Outcomes that cannot be recorded are
    /// let go: their deliveries come due again after their lease.
    async fn record(&self, outcomes: Vec<(DeliveryId, AttemptOutcome)>) -> usize {
        let count = outcomes.len();
        if let Err(error) =
            self.ports.queue.record_webhook_attempts(&outcomes, self.ports.clock.now()).await
        {
            tracing::warn!(%error, "could not record webhook attempts");
        }
        count
    }

    /// The payload of each event due: the one kept, or rendered now and kept (the first kept
    /// wins, so every attempt of an event sends the same body).
    async fn payloads(&self, due: &[DueDelivery]) -> Result<HashMap<EventId, String>, WorkerError> {
        let mut payloads = HashMap::new();
        let mut rendered: Vec<(EventId, String)> = Vec::new();
        for delivery in due {
            if let Some(payload) = &delivery.payload {
                payloads.insert(delivery.event_id, payload.clone());
            } else if !rendered.iter().any(|(id, _)| *id == delivery.event_id) {
                let record = match delivery.session_id {
                    Some(id) => {
                        self.ports.sessions.find_session(delivery.application_id, id).await?
                    }
                    None => None,
                };
                let payload = payload::render(delivery, record.as_ref(), &self.decision);
                rendered.push((delivery.event_id, payload.to_string()));
            }
        }
        let kept = self.ports.queue.keep_webhook_payloads(&rendered).await?;
        payloads.extend(kept);
        Ok(payloads)
    }

    async fn prune(&self) {
        let keep = chrono::Duration::from_std(self.settings.keep_delivered)
            .unwrap_or_else(|_| chrono::Duration::days(7));
        match self.ports.queue.prune_webhooks(self.ports.clock.now() - keep).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned delivered webhooks"),
            Err(error) => tracing::warn!(%error, "could not prune webhooks"),
        }
    }

    /// Sends one delivery of `payload`; what came of it.
    async fn deliver(&self, due: &DueDelivery, payload: Option<String>) -> AttemptOutcome {
        let attempt = match payload {
            Some(payload) => self.attempt(due, &payload).await,
            None => Err(AttemptError::PayloadGone),
        };
        let outcome = match attempt {
            Ok(status) if (200..300).contains(&status) => AttemptOutcome::Delivered { status },
            Ok(status) => self.failed(due, Some(status), format!("answered {status}")),
            // An address the policy refuses stays refused: no retry would reach it.
            Err(
                error @ (AttemptError::Address(_)
                | AttemptError::NameRefused(_)
                | AttemptError::HttpNotAllowed),
            ) => AttemptOutcome::Failed { status: None, error: error.to_string(), retry_at: None },
            Err(error) => self.failed(due, None, error.to_string()),
        };
        if let AttemptOutcome::Failed { retry_at: None, error, .. } = &outcome {
            tracing::warn!(delivery = %due.id, attempts = due.attempt, %error, "webhook delivery failed for good");
        }
        outcome
    }

    fn failed(&self, due: &DueDelivery, status: Option<u16>, error: String) -> AttemptOutcome {
        let index = usize::try_from(due.attempt.max(1) - 1).unwrap_or(usize::MAX);
        let retry_at = self.settings.schedule.get(index).map(|wait| {
            // ±20 % jitter, so that retries of one outage do not arrive together.
            let mut byte = [0u8; 1];
            let _ = getrandom::fill(&mut byte);
            let factor = 0.8 + 0.4 * f64::from(byte[0]) / 255.0;
            let wait = wait.mul_f64(factor);
            self.ports.clock.now()
                + chrono::Duration::from_std(wait).unwrap_or_else(|_| chrono::Duration::hours(1))
        });
        AttemptOutcome::Failed { status, error, retry_at }
    }

    /// One POST of `payload`: the answer's status, or why none came.
    async fn attempt(&self, due: &DueDelivery, payload: &str) -> Result<u16, AttemptError> {
        let secret = self
            .kek
            .open_for(&secret_context(due.destination_id), &due.secret.bytes)
            .map_err(|e| AttemptError::SecretDoesNotOpen(e.to_string()))?;
        let (body, value) = payload::with_timestamp(payload, self.ports.clock.now().timestamp());
        let signatures = sign::sign(&secret, &body, &value);
        let url = reqwest::Url::parse(&due.url).map_err(|_| AttemptError::UrlDoesNotParse)?;
        let (client, policy) = match (url.scheme(), &self.http) {
            ("https", _) => &self.https,
            ("http", Some(http)) => http,
            _ => return Err(AttemptError::HttpNotAllowed),
        };
        client::check_literal(&url, *policy).map_err(|refused| match refused {
            Some(ip) => AttemptError::Address(ip),
            None => AttemptError::NoHost,
        })?;
        let timestamp = value.get("timestamp").map(ToString::to_string).unwrap_or_default();
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
            .map_err(|e| match client::RefusedName::within(&e) {
                Some(refused) => AttemptError::NameRefused(refused.clone()),
                None => AttemptError::NoAnswer(describe(&e)),
            })?;
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
fn describe(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "no answer within the timeout"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "redirects are not followed"
    } else {
        "the request failed"
    }
}
