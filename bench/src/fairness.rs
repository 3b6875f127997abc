//! The noisy-neighbour benchmark (`--fairness`), per backend, on one `handoff` process with
//! its default limits: tenant B does ordinary work (creates a session, reads its decision,
//! lists its sessions, 8 requests a second) alone, then while tenant A spends its whole rate
//! limit on the largest requests allowed — 2 MiB results uploads (5 a second, its write budget)
//! and reads of 2,000-item decisions (10 a second, its read budget) — then alone again: 90 s
//! with A and 90 s alone (8 s each, quick), so that a p99 is about the 8th-slowest of 720
//! requests. It reports B's p99 with A ÷ B's p99 alone, with 95 % intervals, B's errors, and
//! the server's resident memory: idle, at its peak, and a few seconds after A stopped.
//! `--pool` sets the server's pool size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use handoff_domain::FeatureBlock;
use handoff_domain::services::{CreateSession, Services};
use handoff_domain::session::RecordResults;
use handoff_domain::{FeatureItem, SessionStatus};
use handoff_testdb::Backend;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::fleet::{self, ServerProcess};
use crate::round;
use crate::seed::World;

/// The results body limit of a default server.
const BODY_LIMIT: usize = 2 * 1024 * 1024;
/// Items per block of a default server.
const ITEMS_PER_BLOCK: usize = 1_000;

/// One AML item with as many screening hits as let a block of [`ITEMS_PER_BLOCK`] fill most
/// of [`BODY_LIMIT`]. The hits vary as real ones do (names, scores, dates, ids), so that the
/// item compresses at rest about as a real one would, not as a run of one character.
fn padded_item() -> String {
    const FIRST: [&str; 12] = [
        "Ana", "Bruno", "Carmen", "Dmitri", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas",
        "Kemal", "Lucia",
    ];
    const LAST: [&str; 12] = [
        "Garcia", "Novak", "Okafor", "Petrov", "Quispe", "Rossi", "Sato", "Tanaka", "Ueda",
        "Varga", "Weber", "Yilmaz",
    ];
    const DATASETS: [&str; 4] = ["PEP", "Sanctions", "Adverse media", "Watchlist"];
    let target = (BODY_LIMIT - 4096) / ITEMS_PER_BLOCK - 1;
    // A fixed linear congruential sequence: the same item on every run.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |bound: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 32) % bound
    };
    let mut hits = Vec::new();
    let item = |hits: &[String]| {
        format!(
            r#"{{"node_id":"feature_aml","status":"Approved","entity_type":"person","total_hits":{},"hits":[{}]}}"#,
            hits.len(),
            hits.join(",")
        )
    };
    loop {
        let hit = format!(
            r#"{{"id":"{:08x}{:08x}","caption":"{} {}","score":0.{:02},"datasets":["{}"],"birth_date":"19{:02}-{:02}-{:02}","country":"{}"}}"#,
            next(1 << 32),
            next(1 << 32),
            FIRST[next(12) as usize],
            LAST[next(12) as usize],
            next(100),
            DATASETS[next(4) as usize],
            next(100),
            1 + next(12),
            1 + next(28),
            ["ES", "DE", "NG", "RU", "PE", "IT", "JP", "HU", "TR"][next(9) as usize],
        );
        hits.push(hit);
        if item(&hits).len() > target {
            hits.pop();
            return item(&hits);
        }
    }
}

/// The largest upload a default server accepts: one full block.
fn largest_upload(item: &str) -> String {
    let items = vec![item; ITEMS_PER_BLOCK].join(",");
    format!(r#"{{"aml_screenings":[{items}]}}"#)
}

/// A's sessions with two full blocks each: the largest decisions.
async fn largest_sessions(
    services: &Services, world: &World, item: &str, n: usize,
) -> Result<Vec<String>, String> {
    let raw = RawValue::from_string(item.to_owned()).map_err(|e| e.to_string())?;
    let item = FeatureItem::parse(&raw).map_err(|e| e.to_string())?;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let session = services
            .sessions
            .create(&world.source, CreateSession::of_workflow(world.source_workflow))
            .await
            .map_err(|e| e.to_string())?;
        let results = RecordResults {
            status: Some(SessionStatus::Approved),
            blocks: vec![
                (FeatureBlock::AmlScreenings, Some(vec![item.clone(); ITEMS_PER_BLOCK])),
                (FeatureBlock::DatabaseValidations, Some(vec![item.clone(); ITEMS_PER_BLOCK])),
            ],
            blocklist_keys: None,
        };
        services
            .sessions
            .record_results(&world.source, session.id, results)
            .await
            .map_err(|e| e.to_string())?;
        ids.push(session.id.to_string());
    }
    Ok(ids)
}

/// B's requests, in turn.
const B_REQUESTS: [&str; 3] = ["create", "decision", "list"];

/// B's ordinary work for `length`: every 125 ms one request, in turn a session created, its
/// decision read, and the list read. Latencies of the answered requests with the index of
/// their kind in [`B_REQUESTS`], and the errors.
async fn quiet_tenant(
    base: &str, key: &str, workflow: &str, length: Duration,
) -> (Vec<(usize, Duration)>, usize) {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_millis(125));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let last_session = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut i = 0usize;
    while started.elapsed() < length {
        tick.tick().await;
        let (client, base, key, workflow, last) = (
            client.clone(),
            base.to_owned(),
            key.to_owned(),
            workflow.to_owned(),
            last_session.clone(),
        );
        let step = i % 3;
        i += 1;
        tasks.spawn(async move {
            let began = Instant::now();
            let known = last.lock().map(|l| l.clone()).unwrap_or_default();
            let (step, request) = match (step, known) {
                (1, Some(session)) => {
                    (1, client.get(format!("{base}/v3/session/{session}/decision/")))
                }
                (2, _) => (2, client.get(format!("{base}/v3/sessions/?limit=20"))),
                _ => (
                    0,
                    client
                        .post(format!("{base}/v3/session/"))
                        .json(&json!({"workflow_id": workflow})),
                ),
            };
            let response = request.header("x-api-key", key).send().await;
            let ok = match response {
                Ok(r) if r.status().is_success() => {
                    let body: Value = r.json().await.unwrap_or_default();
                    if let Some(id) = body["session_id"].as_str()
                        && let Ok(mut l) = last.lock()
                    {
                        *l = Some(id.to_owned());
                    }
                    true
                }
                _ => false,
            };
            ok.then(|| (step, began.elapsed()))
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for answer in tasks.join_all().await {
        match answer {
            Some(latency) => latencies.push(latency),
            None => errors += 1,
        }
    }
    (latencies, errors)
}

/// A at its whole budget until `stop`: an upload every 200 ms and a read every 100 ms.
/// Its answers by status, and the median time of its uploads and of its reads.
async fn noisy_tenant(
    base: String, key: String, sessions: Vec<String>, upload: Arc<String>,
    stop: Arc<tokio::sync::Notify>,
) -> (std::collections::BTreeMap<u16, usize>, f64, f64) {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut tasks = tokio::task::JoinSet::new();
    let stopped = stop.notified();
    tokio::pin!(stopped);
    let mut i = 0usize;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {}
        }
        let session = &sessions[i % sessions.len()];
        let read =
            client.get(format!("{base}/v3/session/{session}/decision/")).header("x-api-key", &key);
        tasks.spawn(async move {
            let began = Instant::now();
            let status = read.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            (false, status, began.elapsed())
        });
        if i.is_multiple_of(2) {
            let write = client
                .put(format!("{base}/v3/session/{session}/decision/"))
                .header("x-api-key", &key)
                .header("content-type", "application/json")
                .body(upload.as_bytes().to_vec());
            tasks.spawn(async move {
                let began = Instant::now();
                let status = write.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
                (true, status, began.elapsed())
            });
        }
        i += 1;
    }
    let mut answers = std::collections::BTreeMap::new();
    let (mut uploads, mut reads) = (Vec::new(), Vec::new());
    for (upload, status, took) in tasks.join_all().await {
        *answers.entry(status).or_default() += 1;
        if upload { &mut uploads } else { &mut reads }.push(took);
    }
    (answers, median_ms(&mut uploads), median_ms(&mut reads))
}

fn median_ms(latencies: &mut [Duration]) -> f64 {
    latencies.sort();
    latencies.get(latencies.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// The 99th percentile of the latencies of the kind `kind`, or of all with `None`, in ms, with
/// its 95 % interval: the order statistics at ranks 0.99n ∓ 1.96√(0.0099n), which hold the
/// true percentile with 95 % confidence whatever the distribution.
fn p99_ms(latencies: &[(usize, Duration)], kind: Option<usize>) -> (f64, f64, f64) {
    let mut of_kind: Vec<f64> = latencies
        .iter()
        .filter(|(k, _)| kind.is_none_or(|kind| kind == *k))
        .map(|(_, d)| d.as_secs_f64() * 1000.0)
        .collect();
    of_kind.sort_by(f64::total_cmp);
    let Some(last) = of_kind.len().checked_sub(1) else {
        return (0.0, 0.0, 0.0);
    };
    let n = of_kind.len() as f64;
    let spread = 1.96 * (n * 0.99 * 0.01).sqrt();
    let rank = |r: f64| (r.round().max(1.0) as usize - 1).min(last);
    (
        of_kind[(of_kind.len() * 99 / 100).min(last)],
        of_kind[rank(n * 0.99 - spread)],
        of_kind[rank(1.0 + n * 0.99 + spread)],
    )
}

pub async fn run(backend: Backend, quick: bool, pool: u32) -> Result<Value, String> {
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let length = Duration::from_secs(if quick { 8 } else { 90 });
    // The source application is A, the noisy one; the receiver is B.
    let fleet::Seeded { db, store: _, services, world } = fleet::seeded(backend).await?;
    let item = padded_item();
    let upload = Arc::new(largest_upload(&item));
    let sessions = largest_sessions(&services, &world, &item, 4).await?;
    let pool = pool.to_string();
    let server = ServerProcess::start(db.url(), &[("HANDOFF_DB_MAX_CONNECTIONS", &pool)]).await?;
    let (base, b_key, b_workflow) =
        (server.base.clone(), world.receiver_key.clone(), world.receiver_workflow.to_string());

    // Warm the server with both tenants' requests, then let it settle.
    quiet_tenant(&base, &b_key, &b_workflow, Duration::from_secs(1)).await;
    let _ = reqwest::Client::new()
        .get(format!("{base}/v3/session/{}/decision/", sessions[0]))
        .header("x-api-key", &world.source_key)
        .send()
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, idle_mb) = server.memory_mb();

    let (mut alone, mut errors_alone) = quiet_tenant(&base, &b_key, &b_workflow, length / 2).await;
    let stop = Arc::new(tokio::sync::Notify::new());
    let noisy = tokio::spawn(noisy_tenant(
        base.clone(),
        world.source_key.clone(),
        sessions,
        upload,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (with_noise, errors_b) = quiet_tenant(&base, &b_key, &b_workflow, length).await;
    stop.notify_one();
    let (a_answers, a_upload_ms, a_read_ms) = noisy.await.map_err(|e| e.to_string())?;
    let (later, later_errors) = quiet_tenant(&base, &b_key, &b_workflow, length / 2).await;
    alone.extend(later);
    errors_alone += later_errors;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (peak_mb, after_mb) = server.memory_mb();

    let ((p99_alone, alone_low, alone_high), (p99_with, with_low, with_high)) =
        (p99_ms(&alone, None), p99_ms(&with_noise, None));
    let by_request: serde_json::Map<String, Value> = B_REQUESTS
        .iter()
        .enumerate()
        .map(|(kind, label)| {
            let ((a, ..), (w, ..)) = (p99_ms(&alone, Some(kind)), p99_ms(&with_noise, Some(kind)));
            println!("{name:8}   B's {label:9} p99 alone {a:7.2} ms, with A {w:7.2} ms");
            (label.to_string(), json!({"alone_ms": round(a), "with_a_ms": round(w)}))
        })
        .collect();
    let ratio = p99_with / p99_alone.max(f64::EPSILON);
    // Both ends of the ratio from the p99s' intervals: wider than the ratio's own.
    let (ratio_low, ratio_high) =
        (with_low / alone_high.max(f64::EPSILON), with_high / alone_low.max(f64::EPSILON));
    println!(
        "{name:8} B's p99 alone {p99_alone:.2} ms (95 % {alone_low:.2} to {alone_high:.2}; {} requests, {errors_alone} errors), with A {p99_with:.2} ms ({with_low:.2} to {with_high:.2}; {} requests, {errors_b} errors): ratio {ratio:.2} ({ratio_low:.2} to {ratio_high:.2})",
        alone.len(),
        with_noise.len()
    );
    println!(
        "{name:8} A's answers by status {a_answers:?}, median upload {a_upload_ms:.1} ms, median read {a_read_ms:.1} ms; server memory idle {idle_mb:.0} MB, peak {peak_mb:.0} MB, after {after_mb:.0} MB"
    );
    let a_answers: serde_json::Map<String, Value> =
        a_answers.into_iter().map(|(status, n)| (status.to_string(), json!(n))).collect();
    Ok(json!({
        "pool_connections": pool,
        "p99_ratio": round(ratio),
        "p99_ratio_95": [round(ratio_low), round(ratio_high)],
        "p99_alone_ms": round(p99_alone),
        "p99_alone_95_ms": [round(alone_low), round(alone_high)],
        "p99_with_a_ms": round(p99_with),
        "p99_with_a_95_ms": [round(with_low), round(with_high)],
        "p99_by_request": by_request,
        "errors_b": errors_b + errors_alone,
        "peak_rss_mb": round(peak_mb),
        "idle_rss_mb": round(idle_mb),
        "rss_after_mb": round(after_mb),
        "a_answers": a_answers,
        "a_upload_p50_ms": round(a_upload_ms),
        "a_read_p50_ms": round(a_read_ms),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_p99_of_720_is_the_8th_slowest_and_its_interval_the_12th_to_the_2nd() {
        // Latencies 1 to 720 ms, of the three kinds in turn.
        let latencies: Vec<(usize, Duration)> =
            (1..=720u64).map(|ms| ((ms % 3) as usize, Duration::from_millis(ms))).collect();
        let (p99, low, high) = p99_ms(&latencies, None);
        assert_eq!((p99, low, high), (713.0, 708.0, 719.0));
        // One kind: 240 of them, every third.
        let (p99, _, high) = p99_ms(&latencies, Some(0));
        assert_eq!((p99, high), (714.0, 720.0));
        assert_eq!(p99_ms(&[], None), (0.0, 0.0, 0.0));
    }

    #[test]
    fn the_largest_upload_is_one_full_block_just_under_the_body_limit() {
        let item = padded_item();
        let hits = serde_json::from_str::<Value>(&item).unwrap()["hits"].as_array().unwrap().len();
        assert!(hits > 10, "{hits} hits");
        let upload = largest_upload(&item);
        assert!(
            upload.len() <= BODY_LIMIT && upload.len() > BODY_LIMIT * 9 / 10,
            "{}",
            upload.len()
        );
        let block: Value = serde_json::from_str(&upload).unwrap();
        assert_eq!(block["aml_screenings"].as_array().unwrap().len(), ITEMS_PER_BLOCK);
    }
}
