//! The retention sweep: deletes every application's sessions its retention no longer allows
//! ([`crate::retention`]), in bounded batches.

use super::{Error, Ports};
use crate::retention::DeletedSession;

/// The most sessions one transaction of the sweep deletes.
pub const RETENTION_BATCH: u32 = 500;

/// Deletes what retention no longer allows.
#[derive(Clone)]
pub struct RetentionService {
    ports: Ports,
}

impl RetentionService {
    pub(super) fn new(ports: Ports) -> Self {
        Self { ports }
    }

    /// Deletes, for each application with a retention, the sessions due now, batch after batch
    /// until none is left; what it deleted. A failure stops the sweep where it is: what was
    /// deleted stays deleted, the rest waits for the next sweep.
    pub async fn sweep(&self) -> Result<Vec<DeletedSession>, Error> {
        let now = self.ports.clock.now();
        let mut deleted = Vec::new();
        for (application_id, retention) in self.ports.applications.retention_policies().await? {
            let cutoff = retention.cutoff(now);
            loop {
                let batch = self
                    .ports
                    .sessions
                    .delete_finished_before(application_id, cutoff, RETENTION_BATCH, now)
                    .await?;
                let full = batch.len() >= RETENTION_BATCH as usize;
                deleted.extend(batch);
                if !full {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use crate::application::{ApplicationSettings, Caller};
    use crate::fakes::World;
    use crate::ids::{SessionId, WorkflowId};
    use crate::ports::Clock;
    use crate::retention::RetentionDays;
    use crate::services::{CreateSession, Services};
    use crate::session::RecordResults;
    use crate::status::SessionStatus;
    use crate::workflow::{Feature, NewWorkflow, WorkflowFeature};

    async fn application(services: &Services, retention: Option<u32>) -> (Caller, WorkflowId) {
        let (app, key) = services.applications.create_application("A").await.unwrap();
        let settings = ApplicationSettings {
            retention: retention.map(|days| RetentionDays::new(days).unwrap()),
            ..ApplicationSettings::default()
        };
        services.applications.update_settings(app.id, settings).await.unwrap();
        let caller = Caller::primary(app.id, key.prefix());
        let step =
            WorkflowFeature { feature: Feature::Ocr, config: serde_json::json!({}), label: None };
        let workflow = NewWorkflow::parse(None, vec![step], false, None).unwrap();
        let workflow = services.workflows.create(&caller, workflow).await.unwrap().id;
        (caller, workflow)
    }

    async fn session(services: &Services, caller: &Caller, workflow: WorkflowId) -> SessionId {
        services.sessions.create(caller, CreateSession::of_workflow(workflow)).await.unwrap().id
    }

    async fn finish(services: &Services, caller: &Caller, id: SessionId) {
        let results = RecordResults {
            status: Some(SessionStatus::Approved),
            blocks: vec![],
            blocklist_keys: None,
        };
        services.sessions.record_results(caller, id, results).await.unwrap();
    }

    #[tokio::test]
    async fn deletes_what_finished_before_the_retention_and_nothing_else() {
        let world = World::new();
        let services = Services::new(world.ports.clone(), "https://verify.test");
        let start = world.clock.now();
        let (kept_30, workflow) = application(&services, Some(30)).await;
        let (forever, forever_workflow) = application(&services, None).await;
        let never_finished = session(&services, &kept_30, workflow).await;
        let finished_early = session(&services, &kept_30, workflow).await;
        finish(&services, &kept_30, finished_early).await;
        let finished_late = session(&services, &kept_30, workflow).await;
        let unlimited = session(&services, &forever, forever_workflow).await;
        finish(&services, &forever, unlimited).await;
        world.clock.set(start + Duration::days(25));
        finish(&services, &kept_30, finished_late).await;
        world.clock.set(start + Duration::days(31));
        let deleted = services.retention.sweep().await.unwrap();
        let ids: Vec<SessionId> = deleted.iter().map(|d| d.id).collect();
        assert_eq!(ids, [never_finished, finished_early]);
        assert!(deleted.iter().all(|d| d.application_id == kept_30.application_id));
        assert_eq!(
            services.sessions.decision(&kept_30, finished_late).await.unwrap().session.id,
            finished_late
        );
        assert!(services.sessions.decision(&forever, unlimited).await.is_ok());
        assert!(services.sessions.decision(&kept_30, never_finished).await.is_err());
        assert!(services.retention.sweep().await.unwrap().is_empty(), "nothing left due");
    }

    #[tokio::test]
    async fn a_sweep_goes_on_batch_after_batch() {
        let world = World::new();
        let services = Services::new(world.ports.clone(), "https://verify.test");
        let start = world.clock.now();
        let (caller, workflow) = application(&services, Some(1)).await;
        let many = super::RETENTION_BATCH as usize + 3;
        for _ in 0..many {
            session(&services, &caller, workflow).await;
        }
        world.clock.set(start + Duration::days(2));
        assert_eq!(services.retention.sweep().await.unwrap().len(), many);
    }
}
