//! `handoff demo`: a fresh SQLite database in a temporary directory, two applications with
//! workflows, a finished KYC and a finished KYB session of the first (from the fixtures), the
//! KYC one shared with the second and imported into review; then the server, and a walk-through
//! to copy and paste (share → preview → import → review) that the tests run as printed.

use std::sync::Arc;

use handoff_domain::json::RawObject;
use handoff_domain::reviewer::ReviewerRole;
use handoff_domain::services::{CreateSession, ImportRequest, Services, ShareRequest};
use handoff_domain::session::RecordResults;
use handoff_domain::share::ShareTtl;
use handoff_domain::workflow::Feature;
use handoff_domain::{
    Caller, FeatureBlock, FeatureItem, NewWorkflow, SessionId, SessionStatus, ShareToken,
    VendorData, WorkflowFeature, WorkflowId,
};
use handoff_token::JwtShareTokens;
use serde_json::value::RawValue;

use crate::{Application, CommandError, Config, load_keyring};

/// What the demo's setup made, for the walk-through.
struct Seeded {
    source: Caller,
    source_key: String,
    receiver: Caller,
    receiver_key: String,
    kyb_session: SessionId,
    receiver_kyb_workflow: WorkflowId,
    imported: SessionId,
    imported_url: String,
    /// Beta's reviewer's first password (its email is [`DEMO_REVIEWER`]).
    reviewer_password: String,
}

/// The demo's reviewer of Beta Lending.
const DEMO_REVIEWER: &str = "reviewer@beta.example";

/// The example results of a kind (`user` or `business`, from `fixtures/`), as a verification
/// engine records them; the benchmarks seed with them too.
pub fn example_results(kind: &str) -> Result<RecordResults, CommandError> {
    let text = match kind {
        "user" => include_str!("../../../fixtures/record-results-user.json"),
        _ => include_str!("../../../fixtures/record-results-business.json"),
    };
    let example = |e: &dyn std::fmt::Display| CommandError::Example(e.to_string());
    let body = RawObject::parse(text).map_err(|e| example(&e))?;
    let mut results = RecordResults {
        status: Some(SessionStatus::Approved),
        blocks: Vec::new(),
        blocklist_keys: None,
    };
    for (key, raw) in &body.0 {
        let Some(block) = FeatureBlock::from_v3_key(key) else {
            continue;
        };
        if raw.get() == "null" {
            continue;
        }
        let items: Vec<Box<RawValue>> = serde_json::from_str(raw.get()).map_err(|e| example(&e))?;
        let items = items
            .iter()
            .map(|i| FeatureItem::parse(i).map_err(|e| example(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        results.blocks.push((block, Some(items)));
    }
    Ok(results)
}

/// A workflow of `kind` (`user` or `business`) with every step the example results need.
pub async fn workflow(
    services: &Services, caller: &Caller, kind: &str,
) -> Result<WorkflowId, CommandError> {
    let features: &[Feature] = match kind {
        "user" => &[
            Feature::Ocr,
            Feature::Liveness,
            Feature::FaceMatch,
            Feature::ProofOfAddress,
            Feature::PhoneVerification,
            Feature::EmailVerification,
            Feature::Aml,
            Feature::IpAnalysis,
            Feature::DatabaseValidation,
        ],
        _ => &[Feature::KybRegistry, Feature::KybKeyPeople, Feature::KybDocuments, Feature::Aml],
    };
    let steps = features
        .iter()
        .map(|feature| WorkflowFeature {
            feature: *feature,
            config: serde_json::json!({}),
            label: None,
        })
        .collect();
    let label = if kind == "user" { "KYC" } else { "KYB" };
    let new = NewWorkflow::parse(Some(label.into()), steps, false, None)
        .map_err(handoff_domain::services::Error::Invalid)?;
    Ok(services.workflows.create(caller, new).await?.id)
}

/// A new application named `name`: its caller and its API key.
pub async fn application(
    services: &Services, name: &str,
) -> Result<(Caller, String), CommandError> {
    let (application, key) = services.applications.create_application(name).await?;
    Ok((Caller::primary(application.id, key.prefix()), key.reveal().to_owned()))
}

async fn finished(
    services: &Services, caller: &Caller, workflow: WorkflowId, kind: &str, vendor_data: &str,
) -> Result<SessionId, CommandError> {
    let session = services
        .sessions
        .create(
            caller,
            CreateSession {
                vendor_data: Some(
                    VendorData::parse(vendor_data)
                        .map_err(|e| CommandError::Example(e.to_owned()))?,
                ),
                ..CreateSession::of_workflow(workflow)
            },
        )
        .await?;
    services.sessions.record_results(caller, session.id, example_results(kind)?).await?;
    Ok(session.id)
}

async fn seed(services: &Services) -> Result<Seeded, CommandError> {
    let (source, source_key) = application(services, "Acme Bank").await?;
    let (receiver, receiver_key) = application(services, "Beta Lending").await?;
    let kyc = workflow(services, &source, "user").await?;
    let kyb = workflow(services, &source, "business").await?;
    let receiver_kyc = workflow(services, &receiver, "user").await?;
    let receiver_kyb_workflow = workflow(services, &receiver, "business").await?;
    let kyc_session = finished(services, &source, kyc, "user", "customer-0042").await?;
    let kyb_session = finished(services, &source, kyb, "business", "company-0007").await?;
    let shared = services
        .share
        .share(
            &source,
            kyc_session,
            ShareRequest {
                for_application_id: receiver.application_id,
                ttl: ShareTtl::parse(3600).map_err(|e| CommandError::Example(e.to_owned()))?,
                blocks: None,
                consent: None,
            },
        )
        .await?;
    let clone = services
        .import
        .import(
            &receiver,
            ImportRequest {
                share_token: ShareToken::new(shared.share_token.expose().to_owned()),
                workflow_id: Some(receiver_kyc),
                trust_review: false,
                vendor_data: None,
                max_source_age_seconds: None,
            },
        )
        .await?;
    let reviewer = services
        .reviewers
        .add(receiver.application_id, DEMO_REVIEWER, ReviewerRole::Reviewer, false)
        .await?;
    Ok(Seeded {
        reviewer_password: reviewer.password,
        source,
        source_key,
        receiver,
        receiver_key,
        kyb_session,
        receiver_kyb_workflow,
        imported: clone.session.id,
        imported_url: clone.session.session_url,
    })
}

/// The walk-through, each step a command that can be pasted into a shell as printed.
fn walkthrough(base: &str, seeded: &Seeded) -> String {
    let (a, b) = (&seeded.source_key, &seeded.receiver_key);
    let (reviewer, password) = (DEMO_REVIEWER, &seeded.reviewer_password);
    let (receiver_id, kyb, workflow) =
        (seeded.receiver.application_id, seeded.kyb_session, seeded.receiver_kyb_workflow);
    format!(
        r#"handoff demo is serving {base}

Acme Bank (shares):      application {source_id}
  export ACME_KEY={a}
Beta Lending (receives): application {receiver_id}
  export BETA_KEY={b}

Already done: Acme's finished KYC session was shared with Beta and imported into review:
  {imported} (In Review), its end-user page: {imported_url}

Review console: {base}/console/ (sign in as {reviewer} with the password {password} to clear
Beta's queue)

Walk-through: share Acme's finished KYB session with Beta, preview, import, review. Pasted
again, it shares anew, and Beta's preview and import answer already_imported (an application
imports a source once) with the clone's session_id, which steps 4 and 5 then use.

# 1. Acme shares its KYB session with Beta (the token is kept in $TOKEN; an answer without one is printed)
SHARED=$(curl -sS -X POST {base}/v3/session/{kyb}/share/ -H "x-api-key: $ACME_KEY" -H 'content-type: application/json' -d '{{"for_application_id": "{receiver_id}"}}'); TOKEN=$(echo "$SHARED" | grep -o '"share_token":"[^"]*"' | cut -d'"' -f4); [ -n "$TOKEN" ] || echo "$SHARED"

# 2. Beta previews what the import would create (nothing is written)
curl -sS -w '\n' -X POST {base}/v3/session/import-shared/preview/ -H "x-api-key: $BETA_KEY" -H 'content-type: application/json' -d "{{\"share_token\": \"$TOKEN\", \"workflow_id\": \"{workflow}\"}}"

# 3. Beta imports it into review (trust_review false); the clone's id is kept in $CLONE, the answer's start printed
IMPORTED=$(curl -sS -X POST {base}/v3/session/import-shared/ -H "x-api-key: $BETA_KEY" -H 'content-type: application/json' -d "{{\"share_token\": \"$TOKEN\", \"workflow_id\": \"{workflow}\", \"trust_review\": false}}"); CLONE=$(echo "$IMPORTED" | grep -o '"session_id":"[^"]*"' | head -n 1 | cut -d'"' -f4); echo "$IMPORTED" | cut -c1-200

# 4. Beta's reviewer approves the clone
curl -sS -w '\n' -X PATCH {base}/v3/session/$CLONE/update-status/ -H "x-api-key: $BETA_KEY" -H 'content-type: application/json' -d '{{"new_status": "Approved", "comment": "Registry and key people checked"}}'

# 5. The clone's decision, with where it came from
curl -sS -w '\n' "{base}/v3/session/$CLONE/decision/?include=events" -H "x-api-key: $BETA_KEY"

Stop with Ctrl-C. The database is a temporary file; nothing is kept.
"#,
        source_id = seeded.source.application_id,
        imported = seeded.imported,
        imported_url = seeded.imported_url,
    )
}

/// A directory removed, with what it holds, when dropped: the demo leaves nothing behind,
/// whether it stops on a signal or fails to start.
struct TemporaryDir(std::path::PathBuf);

impl Drop for TemporaryDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the demo on `bind` until the process is stopped.
pub async fn run(bind: &str) -> Result<(), CommandError> {
    let dir =
        TemporaryDir(std::env::temp_dir().join(format!("handoff-demo-{}", uuid::Uuid::new_v4())));
    handoff_store::create_private_dir(&dir.0)?;
    let database_url = format!("sqlite:{}?mode=rwc", dir.0.join("handoff.db").display());
    let mut kek = [0u8; 32];
    getrandom::fill(&mut kek)
        .map_err(|e| CommandError::Setting(format!("the random source failed: {e}")))?;
    let config = Config {
        bind: bind.to_owned(),
        key_encryption_key: Some(crate::config::Secret(
            kek.iter().map(|b| format!("{b:02x}")).collect(),
        )),
        ..Config::new(&database_url)
    };
    let app = Application::build(config.clone()).await.map_err(|e| match e {
        crate::StartError::Bind { address, source, .. } => {
            crate::StartError::Bind { address, setting: "--bind", source }
        }
        other => other,
    })?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let tokens = Arc::new(JwtShareTokens::new(load_keyring(&config, app.store()).await?));
    let services = crate::services_with_keys(&config, app.store(), &base, tokens)?;
    let seeded = seed(&services).await?;
    // One write, its failure ignored: a reader that stopped reading must not stop the demo.
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let _ =
            stdout.write_all(walkthrough(&base, &seeded).as_bytes()).and_then(|()| stdout.flush());
    }
    Ok(app.run_until_signalled().await?)
}
