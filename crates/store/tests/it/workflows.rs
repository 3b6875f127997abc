//! Workflows.

use handoff_domain::SessionKind;
use handoff_domain::ports::WorkflowRepository;

use crate::support::{TestStore, now, on_both_backends};

on_both_backends!(workflows_round_trip_and_are_scoped);
async fn workflows_round_trip_and_are_scoped(db: TestStore) {
    let app = db.application().await;
    let other = db.application().await;
    let workflow = db.workflow(app, SessionKind::Business).await;
    let found = db.find_workflow(app, workflow.id).await.unwrap().unwrap();
    assert_eq!(found, workflow);
    assert!(db.find_workflow(other, workflow.id).await.unwrap().is_none());
    assert!(!db.delete_workflow(other, workflow.id, now()).await.unwrap());
    assert_eq!(db.list_workflows(app).await.unwrap().len(), 1);
    assert!(db.list_workflows(other).await.unwrap().is_empty());
}

on_both_backends!(one_default_per_kind);
async fn one_default_per_kind(db: TestStore) {
    let app = db.application().await;
    let mut first = db.workflow(app, SessionKind::User).await;
    first.id = handoff_domain::WorkflowId::from_uuid(uuid::Uuid::new_v4());
    first.is_default = true;
    db.create_workflow(&first).await.unwrap();
    let mut second = first.clone();
    second.id = handoff_domain::WorkflowId::from_uuid(uuid::Uuid::new_v4());
    db.create_workflow(&second).await.unwrap();
    let defaults: Vec<_> = db
        .list_workflows(app)
        .await
        .unwrap()
        .into_iter()
        .filter(|w| w.is_default)
        .map(|w| w.id)
        .collect();
    assert_eq!(defaults, vec![second.id]);
}

on_both_backends!(deleted_workflows_vanish_but_their_sessions_stay);
async fn deleted_workflows_vanish_but_their_sessions_stay(db: TestStore) {
    let app = db.application().await;
    let workflow = db.workflow(app, SessionKind::User).await;
    let session = db.session(&workflow, None).await;
    assert!(db.delete_workflow(app, workflow.id, now()).await.unwrap());
    assert!(db.find_workflow(app, workflow.id).await.unwrap().is_none());
    assert!(db.list_workflows(app).await.unwrap().is_empty());
    use handoff_domain::ports::SessionRepository;
    let kept = db.find_session(app, session.id).await.unwrap().unwrap();
    assert_eq!(kept.session.workflow_id, workflow.id);
}
