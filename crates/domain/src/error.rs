//! Errors shared by the ports and services.

use std::collections::BTreeMap;

/// The cause of a [`RepoError`]: the driver's error, or a sentence (`"…".into()`).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of the storage behind a port. Its cause is its `source()`, for code that inspects
/// it, and is part of its message, for the log and the operator's terminal. Never carries
/// personal data or secrets: causes come from the database driver and are logged, never sent to
/// clients.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The database could not be reached or timed out; worth retrying.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// Anything else the storage reported.
    #[error("storage failure: {0}")]
    Internal(#[source] Cause),
    /// A guarded write found its idempotency key taken by another request of the application
    /// (a concurrent retry); it wrote nothing.
    #[error("the idempotency key is taken by another request")]
    IdempotencyKeyTaken,
    /// A guarded write found the session changed since it was read; it wrote nothing.
    #[error("the session changed since it was read")]
    Changed,
}

/// Field-level validation errors: field name → messages, in field order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationErrors(BTreeMap<String, Vec<String>>);

impl ValidationErrors {
    /// One error on one field.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(field, message);
        errors
    }

    /// Adds a message to a field.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }

    /// Whether no error was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields that have errors, in order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The errors, field by field.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Adds every error of `other`.
    pub fn merge(&mut self, other: ValidationErrors) {
        for (field, messages) in other.0 {
            self.0.entry(field).or_default().extend(messages);
        }
    }

    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl std::fmt::Display for ValidationErrors {
    /// `field: message message; field: message`, in field order.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (field, messages) in self.iter() {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{field}: {}", messages.join(" "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}
