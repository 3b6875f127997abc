//! `handoff reviewers`: the people who sign in to an application's review console, added
//! (their first password printed once), listed and removed.

use handoff_domain::ApplicationId;
use handoff_domain::reviewer::Reviewer;
use serde_json::json;

use super::{no_tokens, store};
use crate::cli::{Cli, ReviewersCommand};
use crate::error::CommandError;

/// A reviewer as `reviewers list` prints it.
fn line(reviewer: &Reviewer) -> serde_json::Value {
    json!({
        "reviewer_id": reviewer.id.to_string(),
        "application_id": reviewer.application_id.to_string(),
        "email": reviewer.email,
        "role": reviewer.role.as_str(),
        "totp": reviewer.totp,
        "created_at": handoff_http::decision::timestamp(reviewer.created_at),
    })
}

pub(super) async fn run(cli: &Cli, command: &ReviewersCommand) -> Result<(), CommandError> {
    let config = cli.base_config()?;
    let store = store(cli).await?;
    // One-time-code secrets are sealed under the deployment's key-encryption key.
    let reviewers = crate::services_with_keys(&config, &store, "", no_tokens())?.reviewers;
    match command {
        ReviewersCommand::Add { application, email, role, totp } => {
            let added =
                reviewers.add(ApplicationId::from_uuid(*application), email, *role, *totp).await?;
            let mut printed = line(&added.reviewer);
            printed["password"] = added.password.into();
            if let Some(url) = added.totp_url {
                printed["totp_url"] = url.into();
            }
            println!("{printed}");
        }
        ReviewersCommand::List { application } => {
            for reviewer in reviewers.list(ApplicationId::from_uuid(*application)).await? {
                println!("{}", line(&reviewer));
            }
        }
        ReviewersCommand::Remove { application, email } => {
            reviewers.remove(ApplicationId::from_uuid(*application), email).await?;
            println!(
                "{}",
                json!({"application_id": application.to_string(), "email": email.trim().to_lowercase(), "removed": true})
            );
        }
    }
    Ok(())
}
