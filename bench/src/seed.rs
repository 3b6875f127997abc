//! Seeding: two applications, their workflows, and finished source sessions filled from the
//! fixtures, each shared with the receiver.

use handoff_domain::ports::ShareTokens;
use handoff_domain::services::{CreateSession, Services, ShareRequest};
use handoff_domain::session::RecordResults;
use handoff_domain::{Caller, FeatureBlock, FeatureItem, SessionId, VendorData, WorkflowId};
use serde_json::value::RawValue;
use std::sync::Arc;

/// A shared source session.
pub struct Source {
    pub session_id: SessionId,
    pub token: String,
    /// The token's id, read when it was seeded: the hand-written limits redeem it as handoff
    /// does, without verifying the token.
    pub jti: String,
}

/// The applications and workflows of a run.
pub struct World {
    pub source: Caller,
    pub receiver: Caller,
    pub receiver_key: String,
    pub source_key: String,
    pub source_workflow: WorkflowId,
    pub receiver_workflow: WorkflowId,
    results: RecordResults,
    counter: std::sync::atomic::AtomicUsize,
    tokens: Arc<dyn ShareTokens>,
}

impl World {
    pub async fn new(services: &Services, tokens: Arc<dyn ShareTokens>) -> Result<World, String> {
        let (source, source_key) = handoff::demo::application(services, "Bench source")
            .await
            .map_err(|e| e.to_string())?;
        let (receiver, receiver_key) = handoff::demo::application(services, "Bench receiver")
            .await
            .map_err(|e| e.to_string())?;
        Ok(World {
            source_workflow: handoff::demo::workflow(services, &source, "user")
                .await
                .map_err(|e| e.to_string())?,
            receiver_workflow: handoff::demo::workflow(services, &receiver, "user")
                .await
                .map_err(|e| e.to_string())?,
            source,
            receiver,
            receiver_key,
            source_key,
            results: handoff::demo::example_results("user").map_err(|e| e.to_string())?,
            counter: std::sync::atomic::AtomicUsize::new(0),
            tokens,
        })
    }

    /// `n` finished sessions shared with the receiver. With `rows` > 0, each has about that
    /// many related rows: its AML block holds `rows - 2` items, beside its 2 log rows.
    pub async fn sources(
        &self, services: &Services, n: usize, rows: usize,
    ) -> Result<Vec<Source>, String> {
        self.sources_for(services, n, rows, self.receiver.application_id).await
    }

    /// [`World::sources`] shared with the application `receiver` (a partner's, for one).
    pub async fn sources_for(
        &self, services: &Services, n: usize, rows: usize, receiver: handoff_domain::ApplicationId,
    ) -> Result<Vec<Source>, String> {
        let mut results = self.results.clone();
        if rows > 0 {
            let item = r#"{"node_id":"feature_aml","status":"Approved","entity_type":"person","total_hits":1,"hits":[{"name":"Example Hit","score":0.1}]}"#;
            let raw = RawValue::from_string(item.to_owned()).map_err(|e| e.to_string())?;
            let aml = FeatureItem::parse(&raw).map_err(|e| e.to_string())?;
            results.blocks =
                vec![(FeatureBlock::AmlScreenings, Some(vec![aml; rows.saturating_sub(2)]))];
        }
        let mut sources = Vec::with_capacity(n);
        for _ in 0..n {
            let i = self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let request = CreateSession {
                vendor_data: Some(
                    VendorData::parse(&format!("person-{i}")).map_err(str::to_owned)?,
                ),
                ..CreateSession::of_workflow(self.source_workflow)
            };
            let session =
                services.sessions.create(&self.source, request).await.map_err(|e| e.to_string())?;
            services
                .sessions
                .record_results(&self.source, session.id, results.clone())
                .await
                .map_err(|e| e.to_string())?;
            let shared = services
                .share
                .share(
                    &self.source,
                    session.id,
                    ShareRequest {
                        for_application_id: receiver,
                        ttl: handoff_domain::share::ShareTtl::parse(86_400)?,
                        blocks: None,
                        consent: None,
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            let token = shared.share_token.expose().to_owned();
            let jti = self
                .tokens
                .verify(&token)
                .map_err(|e| e.to_string())?
                .jti
                .ok_or("a share token without an id")?;
            sources.push(Source { session_id: session.id, token, jti });
        }
        Ok(sources)
    }
}
