//! Why a command of the `handoff` binary failed, said in one line by `main`.

use handoff_domain::RepoError;
use handoff_domain::services;
use handoff_token::{KeyError, SealError};

use crate::StartError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The server, or the database an operator command opens, could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A service refused the request.
    #[error("{}", describe(.0))]
    Service(#[from] services::Error),
    /// The database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// A signing key or its algorithm is not one handoff uses.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A sealed secret did not seal or open.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// A setting is wrong, or the keys and the settings do not agree; the message says which.
    #[error("{0}")]
    Setting(String),
    /// The command refuses what it was asked, and says what to do instead.
    #[error("{0}")]
    Refused(String),
    /// The demo's example data, compiled in, does not parse.
    #[error("the demo's example data does not parse: {0}")]
    Example(String),
    /// The server stopped with an I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<crate::config::SettingError> for CommandError {
    fn from(error: crate::config::SettingError) -> Self {
        Self::Setting(error.0)
    }
}

/// A service's refusal in one line, field errors included.
fn describe(error: &services::Error) -> String {
    match error {
        services::Error::Invalid(errors) => format!("invalid request: {errors:?}"),
        other => other.to_string(),
    }
}
