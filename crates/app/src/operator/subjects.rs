//! `handoff subjects`: a data subject's request, answered from the command line — everything
//! an application keeps of one `vendor_data` exported as JSON, then erased.

use handoff_domain::ApplicationId;
use handoff_domain::services::SubjectSession;
use handoff_http::decision::V3DecisionWithEvents;
use handoff_http::wire::{SessionEvent, ShareLedgerEntry};
use serde_json::{Value, json};

use super::{no_tokens, operator, store};
use crate::cli::{Cli, SubjectsCommand};
use crate::error::CommandError;
use crate::services;

/// A session as the export shows it: its V3 decision with its `events` and its `shares`.
fn session(subject: &SubjectSession) -> Result<Value, CommandError> {
    let events: Vec<SessionEvent> = subject.events.iter().map(SessionEvent::from).collect();
    let mut value = serde_json::to_value(V3DecisionWithEvents(&subject.record, &events))
        .map_err(|e| CommandError::Refused(format!("the session could not be written: {e}")))?;
    let shares: Vec<ShareLedgerEntry> = subject.shares.iter().map(ShareLedgerEntry::from).collect();
    value["shares"] = json!(shares);
    Ok(value)
}

pub(super) async fn run(cli: &Cli, command: &SubjectsCommand) -> Result<(), CommandError> {
    let services = services(&store(cli).await?, "", no_tokens());
    let (SubjectsCommand::Export { application, vendor_data }
    | SubjectsCommand::Erase { application, vendor_data }) = command;
    // An application that does not exist is an error, not an empty answer.
    services.applications.settings(ApplicationId::from_uuid(*application)).await?;
    let caller = operator(application);
    match command {
        SubjectsCommand::Export { .. } => {
            let data = services.subjects.export(&caller, vendor_data).await?;
            let entities: Vec<handoff_http::wire::Entity> =
                data.entities.into_iter().map(handoff_http::wire::Entity::from).collect();
            let sessions = data.sessions.iter().map(session).collect::<Result<Vec<_>, _>>()?;
            println!(
                "{}",
                json!({
                    "application_id": application.to_string(),
                    "vendor_data": vendor_data.as_str(),
                    "exported_at": handoff_http::decision::timestamp(chrono::Utc::now()),
                    "entities": entities,
                    "sessions": sessions,
                })
            );
        }
        SubjectsCommand::Erase { .. } => {
            let erased = services.subjects.erase(&caller, vendor_data).await?;
            println!(
                "{}",
                json!({
                    "application_id": application.to_string(),
                    "vendor_data": vendor_data.as_str(),
                    "deleted_sessions": erased.sessions,
                    "deleted_entities": erased.entities,
                })
            );
        }
    }
    Ok(())
}
