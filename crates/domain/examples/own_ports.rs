//! Calling handoff's import service directly, with ports of your own.
//!
//! The services take every port as `Arc<dyn …>`. Here the embedder brings three of its own:
//! share tokens that are opaque references into its own registry instead of signed JWTs, its
//! business clock, and ids from its own sequence. The repositories are the in-memory ones of
//! `handoff_domain::fakes` (feature `test-support`); a real service puts its database there.
//!
//! `cargo run -p handoff-domain --example own_ports` shares a session, imports it, tries the
//! token a second time, and exits non-zero if any answer is not the expected one (CI runs it).

use std::collections::HashMap;
use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use handoff_domain::fakes::World;
use handoff_domain::ports::{Clock, IdGenerator, ShareTokens};
use handoff_domain::services::{
    CreateSession, Error as ServiceError, ImportRequest, Services, ShareRequest,
};
use handoff_domain::session::RecordResults;
use handoff_domain::share::ShareTtl;
use handoff_domain::workflow::{Feature, NewWorkflow, WorkflowFeature};
use handoff_domain::{
    Caller, ImportCheck, RepoError, SessionStatus, ShareClaims, TokenError, VendorData,
};
use uuid::Uuid;

/// Share tokens as opaque references: the token is a key into this registry, and what it
/// means never leaves the process.
#[derive(Default)]
struct ReferenceTokens {
    issued: Mutex<HashMap<String, ShareClaims>>,
    next: AtomicU64,
}

impl ShareTokens for ReferenceTokens {
    fn issue(&self, claims: &ShareClaims) -> Result<String, TokenError> {
        let token = format!("ref-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let mut issued = self.issued.lock().map_err(|_| TokenError::Signing("poisoned".into()))?;
        issued.insert(token.clone(), claims.clone());
        Ok(token)
    }

    fn verify(&self, token: &str) -> Result<ShareClaims, TokenError> {
        let issued = self.issued.lock().map_err(|_| TokenError::Invalid)?;
        let claims = issued.get(token).cloned().ok_or(TokenError::Invalid)?;
        if Utc::now() > claims.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// The embedder's clock (here the system's, to the microsecond, as the port asks).
struct BusinessClock;

impl Clock for BusinessClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default()
    }
}

/// Ids from the embedder's own sequence.
#[derive(Default)]
struct SequenceIds(AtomicU64);

impl IdGenerator for SequenceIds {
    fn uuid(&self) -> Uuid {
        Uuid::from_u128(0xACE_u128 << 64 | u128::from(self.0.fetch_add(1, Ordering::Relaxed)))
    }

    fn token(&self, bytes: usize) -> Result<String, RepoError> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        Ok(format!("{n:0width$x}", width = bytes * 2))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    // The in-memory repositories, with the embedder's own tokens, clock and ids.
    let mut ports = World::new().ports;
    ports.tokens = Arc::new(ReferenceTokens::default());
    ports.clock = Arc::new(BusinessClock);
    ports.ids = Arc::new(SequenceIds::default());
    let services = Services::new(ports, "https://verify.acme.test");

    let caller = |(application, key): (handoff_domain::Application, handoff_domain::ApiKey)| {
        Caller::primary(application.id, key.prefix())
    };
    let bank = caller(services.applications.create_application("Bank").await?);
    let broker = caller(services.applications.create_application("Broker").await?);
    let kyc = || {
        let step =
            |feature| WorkflowFeature { feature, config: serde_json::json!({}), label: None };
        NewWorkflow::parse(None, vec![step(Feature::Ocr), step(Feature::Liveness)], false, None)
    };
    let bank_kyc = services.workflows.create(&bank, kyc()?).await?;
    let broker_kyc = services.workflows.create(&broker, kyc()?).await?;

    let session = services
        .sessions
        .create(
            &bank,
            CreateSession {
                vendor_data: Some(VendorData::parse("customer-7781")?),
                ..CreateSession::of_workflow(bank_kyc.id)
            },
        )
        .await?;
    let approved = RecordResults {
        status: Some(SessionStatus::Approved),
        blocks: vec![],
        blocklist_keys: None,
    };
    services.sessions.record_results(&bank, session.id, approved).await?;
    let shared = services
        .share
        .share(
            &bank,
            session.id,
            ShareRequest {
                for_application_id: broker.application_id,
                ttl: ShareTtl::DEFAULT,
                blocks: None,
                consent: None,
            },
        )
        .await?;
    assert!(
        shared.share_token.expose().starts_with("ref-"),
        "the token is the embedder's own reference"
    );
    println!("ok   the token is the embedder's own reference");

    let request = || ImportRequest {
        share_token: shared.share_token.clone(),
        workflow_id: Some(broker_kyc.id),
        trust_review: false,
        vendor_data: None,
        max_source_age_seconds: None,
    };
    let clone = services.import.import(&broker, request()).await?;
    assert!(
        clone.session.status == SessionStatus::InReview,
        "the broker's clone waits In Review (trust_review false)"
    );
    println!("ok   the broker's clone waits In Review (trust_review false)");
    assert!(
        clone.session.id.as_uuid().as_u128() >> 64 == 0xACE_u128,
        "the clone's id comes from the embedder's sequence"
    );
    println!("ok   the clone's id comes from the embedder's sequence");
    let again = services.import.import(&broker, request()).await;
    assert!(
        matches!(
            again,
            Err(ServiceError::ImportRefused {
                check: ImportCheck::NotImported,
                existing_clone: Some(id),
            }) if id == clone.session.id
        ),
        "a second import is refused as already imported, naming the clone"
    );
    println!("ok   a second import is refused as already imported, naming the clone");
    Ok(())
}
