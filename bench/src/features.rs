//! The feature matrix: the plain import beside the same import with one webhook destination
//! subscribed to every event, with an `Idempotency-Key`, with both, and with EdDSA share
//! tokens, each through applications of its own, in alternating rounds at one worker. Each is
//! reported as its cost ÷ the plain import's in the same run (`feature_cost`), in wall and CPU
//! time.

use std::sync::Arc;

use handoff_domain::idempotency::{IdempotencyClaim, IdempotencyKey};
use handoff_domain::services::{NewDestination, Services};
use handoff_domain::webhook::WebhookType;
use handoff_store::Store;
use handoff_token::{JwtShareTokens, KeyEncryptionKey, Keyring, SigningKey, TokenAlgorithm};
use serde_json::{Value, json};

use crate::cpu::{CpuMeter, median_with_interval};
use crate::seed::World;
use crate::{PUBLIC_URL, import_request, measure, round};

/// What an import carries besides the plain request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feature {
    Plain,
    Webhook,
    IdempotencyKey,
    WebhookAndIdempotencyKey,
    EdDsa,
}

impl Feature {
    const ALL: [Feature; 5] = [
        Feature::Plain,
        Feature::Webhook,
        Feature::IdempotencyKey,
        Feature::WebhookAndIdempotencyKey,
        Feature::EdDsa,
    ];

    fn label(self) -> &'static str {
        match self {
            Feature::Plain => "plain",
            Feature::Webhook => "webhook",
            Feature::IdempotencyKey => "idempotency_key",
            Feature::WebhookAndIdempotencyKey => "webhook_and_idempotency_key",
            Feature::EdDsa => "eddsa",
        }
    }

    fn keyed(self) -> bool {
        matches!(self, Feature::IdempotencyKey | Feature::WebhookAndIdempotencyKey)
    }
}

/// A feature's applications and the services that import for them.
struct Setting {
    feature: Feature,
    services: Services,
    world: World,
}

/// Measures the matrix in `rounds` rounds of `per_round` imports per feature; the JSON of
/// `feature_cost`.
pub async fn run(
    store: &Store, tokens: Arc<JwtShareTokens>, rounds: usize, per_round: usize,
) -> Result<Value, String> {
    let settings = settings(store, tokens).await?;
    let meter = CpuMeter::new(store);
    let features = settings.len();
    let (mut wall, mut cpu) = (vec![Vec::new(); features], vec![Vec::new(); features]);
    for r in 0..rounds {
        for k in 0..features {
            let setting = &settings[(k + r) % features];
            let sources = setting.world.sources(&setting.services, per_round, 0).await?;
            let (services, receiver, workflow) = (
                setting.services.clone(),
                setting.world.receiver.clone(),
                setting.world.receiver_workflow,
            );
            let keyed = setting.feature.keyed();
            let before = meter.sample().await;
            let batch = measure(sources, 1, move |source| {
                let (services, receiver) = (services.clone(), receiver.clone());
                async move {
                    // A key that cannot be made counts as a failed import.
                    let Ok(claim) = keyed.then(claim).transpose() else { return false };
                    let request = import_request(&source, workflow);
                    services.import.import_guarded(&receiver, request, claim).await.is_ok()
                }
            })
            .await;
            let spent = meter.sample().await.since(before).total();
            if batch.errors > 0 {
                return Err(format!(
                    "{}: {} imports failed",
                    setting.feature.label(),
                    batch.errors
                ));
            }
            let imports = batch.latencies.len().max(1) as f64;
            wall[(k + r) % features].push(batch.elapsed.as_secs_f64() / imports);
            cpu[(k + r) % features].push(spent.as_secs_f64() / imports);
        }
    }
    let mut report = serde_json::Map::new();
    for (i, setting) in settings.iter().enumerate().skip(1) {
        let cost = |per_import: &[Vec<f64>]| {
            let mut ratios: Vec<f64> =
                per_import[i].iter().zip(&per_import[0]).map(|(f, plain)| f / plain).collect();
            let total = per_import[i].iter().sum::<f64>() / per_import[0].iter().sum::<f64>();
            let (median, low, high) = median_with_interval(&mut ratios).unwrap_or_default();
            json!({"ratio": round(total), "median": round(median), "low_95": round(low), "high_95": round(high)})
        };
        let (wall, cpu) = (cost(&wall), cost(&cpu));
        println!(
            "feature {:28} wall {} × plain, CPU {} × plain (per-round median {}, 95 % {} to {})",
            setting.feature.label(),
            wall["ratio"],
            cpu["ratio"],
            cpu["median"],
            cpu["low_95"],
            cpu["high_95"]
        );
        report.insert(setting.feature.label().into(), json!({"wall": wall, "cpu": cpu}));
    }
    Ok(Value::Object(report))
}

/// A fresh key for each keyed import, as a client sends one per request.
fn claim() -> Result<IdempotencyClaim, &'static str> {
    Ok(IdempotencyClaim {
        key: IdempotencyKey::parse(&uuid::Uuid::new_v4().to_string())?,
        request_hash: "0".repeat(64),
        created_at: chrono::Utc::now(),
    })
}

/// Each feature's own source and receiver applications: a receiver with a destination for the
/// webhook features, a signer of EdDSA tokens for that one.
async fn settings(store: &Store, tokens: Arc<JwtShareTokens>) -> Result<Vec<Setting>, String> {
    let kek = KeyEncryptionKey::from_secret(b"the benchmark's key-encryption key, 32+ bytes")
        .map_err(|e| e.to_string())?;
    let sealer = Arc::new(handoff::webhooks::KekSealer(kek));
    let hmac = handoff::services_sealing(store, PUBLIC_URL, tokens.clone(), sealer.clone());
    let ed25519 =
        SigningKey::ed25519("bench-ed25519", &[7u8; 32], None).map_err(|e| e.to_string())?;
    let eddsa_tokens = Arc::new(JwtShareTokens::new(
        Keyring::new(vec![ed25519]).signing_with(TokenAlgorithm::EdDsa),
    ));
    let eddsa = handoff::services_sealing(store, PUBLIC_URL, eddsa_tokens.clone(), sealer);
    let mut settings = Vec::new();
    for feature in Feature::ALL {
        let (services, signer): (Services, Arc<JwtShareTokens>) = match feature {
            Feature::EdDsa => (eddsa.clone(), eddsa_tokens.clone()),
            _ => (hmac.clone(), tokens.clone()),
        };
        let world = World::new(&services, signer).await?;
        if matches!(feature, Feature::Webhook | Feature::WebhookAndIdempotencyKey) {
            let destination = NewDestination {
                label: Some("bench".into()),
                url: Some("https://hooks.example.com/bench".into()),
                enabled: Some(true),
                webhook_version: None,
                subscribed_events: Some(
                    WebhookType::ALL.iter().map(|t| t.as_str().to_owned()).collect(),
                ),
            };
            services
                .webhooks
                .create(&world.receiver, destination)
                .await
                .map_err(|e| e.to_string())?;
        }
        settings.push(Setting { feature, services, world });
    }
    Ok(settings)
}
