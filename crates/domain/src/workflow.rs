//! Workflows: the ordered features a session runs, which also fix its kind.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::ValidationErrors;
use crate::ids::{ApplicationId, WorkflowId};
use crate::kind::SessionKind;

/// A feature a workflow can run, by its Didit name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// `OCR`: ID document reading.
    Ocr,
    /// `NFC`: chip reading.
    Nfc,
    /// `LIVENESS`.
    Liveness,
    /// `FACE_MATCH`.
    FaceMatch,
    /// `PROOF_OF_ADDRESS`.
    ProofOfAddress,
    /// `QUESTIONNAIRE`.
    Questionnaire,
    /// `PHONE_VERIFICATION`.
    PhoneVerification,
    /// `EMAIL_VERIFICATION`.
    EmailVerification,
    /// `DATABASE_VALIDATION`.
    DatabaseValidation,
    /// `AML`.
    Aml,
    /// `IP_ANALYSIS`.
    IpAnalysis,
    /// `AGE_ESTIMATION`.
    AgeEstimation,
    /// `KYB_REGISTRY`.
    KybRegistry,
    /// `KYB_DOCUMENTS`.
    KybDocuments,
    /// `KYB_KEY_PEOPLE`.
    KybKeyPeople,
}

impl Feature {
    /// Every feature, in the contract's order.
    pub const ALL: [Feature; 15] = [
        Feature::Ocr,
        Feature::Nfc,
        Feature::Liveness,
        Feature::FaceMatch,
        Feature::ProofOfAddress,
        Feature::Questionnaire,
        Feature::PhoneVerification,
        Feature::EmailVerification,
        Feature::DatabaseValidation,
        Feature::Aml,
        Feature::IpAnalysis,
        Feature::AgeEstimation,
        Feature::KybRegistry,
        Feature::KybDocuments,
        Feature::KybKeyPeople,
    ];

    /// The workflow name (`OCR`, `PROOF_OF_ADDRESS`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Feature::Ocr => "OCR",
            Feature::Nfc => "NFC",
            Feature::Liveness => "LIVENESS",
            Feature::FaceMatch => "FACE_MATCH",
            Feature::ProofOfAddress => "PROOF_OF_ADDRESS",
            Feature::Questionnaire => "QUESTIONNAIRE",
            Feature::PhoneVerification => "PHONE_VERIFICATION",
            Feature::EmailVerification => "EMAIL_VERIFICATION",
            Feature::DatabaseValidation => "DATABASE_VALIDATION",
            Feature::Aml => "AML",
            Feature::IpAnalysis => "IP_ANALYSIS",
            Feature::AgeEstimation => "AGE_ESTIMATION",
            Feature::KybRegistry => "KYB_REGISTRY",
            Feature::KybDocuments => "KYB_DOCUMENTS",
            Feature::KybKeyPeople => "KYB_KEY_PEOPLE",
        }
    }

    /// The name a decision payload's `features` list uses for it (`OCR` is `ID_VERIFICATION`,
    /// `PROOF_OF_ADDRESS` is `POA`, `PHONE_VERIFICATION` is `PHONE`; the rest keep their name).
    pub const fn decision_name(self) -> &'static str {
        match self {
            Feature::Ocr => "ID_VERIFICATION",
            Feature::ProofOfAddress => "POA",
            Feature::PhoneVerification => "PHONE",
            other => other.as_str(),
        }
    }

    /// The feature whose decision name (`ID_VERIFICATION`, `POA`, …) this is.
    pub fn from_decision_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.decision_name() == name)
    }

    /// Parses the exact workflow name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Whether this is a KYB feature, which makes a workflow a `business` one.
    pub const fn is_kyb(self) -> bool {
        matches!(self, Feature::KybRegistry | Feature::KybDocuments | Feature::KybKeyPeople)
    }
}

/// One step of a workflow: the feature, its engine configuration and an optional label.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowFeature {
    /// Which feature runs.
    pub feature: Feature,
    /// The engine configuration, an object (`{}` when none was given).
    pub config: Value,
    /// A label for people.
    pub label: Option<String>,
}

/// The longest label of one step, in characters.
pub const MAX_FEATURE_LABEL_CHARS: usize = 100;

/// One step as a client asks for it, before it is checked.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestedFeature {
    /// The feature's name, e.g. `OCR`.
    pub feature: String,
    /// The engine configuration; must be an object when present.
    pub config: Option<Value>,
    /// A label for people.
    pub label: Option<String>,
}

impl WorkflowFeature {
    /// Checks step `index` of a request: a known feature (the refusal names it and lists the
    /// known ones), a configuration that is an object (`{}` when absent or null), a label of at
    /// most [`MAX_FEATURE_LABEL_CHARS`] characters.
    pub fn parse(index: usize, requested: RequestedFeature) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let feature = Feature::parse(&requested.feature);
        if feature.is_none() {
            let known: Vec<&str> = Feature::ALL.iter().map(|f| f.as_str()).collect();
            errors.add(
                format!("features[{index}].feature"),
                format!(
                    "\"{}\" is not a known feature; the features are {}.",
                    requested.feature,
                    known.join(", ")
                ),
            );
        }
        let config = match requested.config {
            None | Some(Value::Null) => Some(Value::Object(Default::default())),
            Some(object @ Value::Object(_)) => Some(object),
            Some(_) => {
                errors.add(format!("features[{index}].config"), "must be a JSON object.");
                None
            }
        };
        check_feature_label(index, requested.label.as_deref(), &mut errors);
        errors.into_result()?;
        match (feature, config) {
            (Some(feature), Some(config)) => Ok(Self { feature, config, label: requested.label }),
            _ => Err(ValidationErrors::single("features", "a step is not valid.")),
        }
    }
}

fn check_feature_label(index: usize, label: Option<&str>, errors: &mut ValidationErrors) {
    if label.is_some_and(|l| l.is_empty() || l.chars().count() > MAX_FEATURE_LABEL_CHARS) {
        errors.add(format!("features[{index}].label"), "must be 1 to 100 characters.");
    }
}

/// The longest `workflow_label`, in characters.
pub const MAX_WORKFLOW_LABEL_CHARS: usize = 50;
/// The default `session_expiration_time`: 7 days, as in Didit's example.
pub const DEFAULT_SESSION_EXPIRATION_SECONDS: i64 = 604_800;
/// The shortest `session_expiration_time` accepted: one minute.
pub const MIN_SESSION_EXPIRATION_SECONDS: i64 = 60;
/// The longest `session_expiration_time` accepted: 365 days.
pub const MAX_SESSION_EXPIRATION_SECONDS: i64 = 31_536_000;

/// A workflow as the caller asks for it, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct NewWorkflow {
    /// The label; when absent, `KYC workflow` or `KYB workflow` by kind.
    pub label: String,
    /// The steps, in execution order; never empty, no feature twice.
    pub features: Vec<WorkflowFeature>,
    /// Whether new sessions of this kind default to it.
    pub is_default: bool,
    /// Seconds from a session's creation to its `expires_at`.
    pub session_expiration_time: i64,
    /// Didit's settings (defaults until a request gives them).
    pub settings: WorkflowSettings,
}

impl NewWorkflow {
    /// Validates a workflow of typed steps. Field errors are collected, not stopped at the first.
    pub fn parse(
        label: Option<String>, features: Vec<WorkflowFeature>, is_default: bool,
        session_expiration_time: Option<i64>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        for (i, step) in features.iter().enumerate() {
            check_feature_label(i, step.label.as_deref(), &mut errors);
        }
        Self::check(label, features, is_default, session_expiration_time, errors, false)
    }

    /// Validates a workflow as a client asks for it: every step with
    /// [`WorkflowFeature::parse`], then the whole. A request whose steps were all refused is
    /// not told "at least one feature is required" on top of what is wrong with them.
    pub fn parse_requested(
        label: Option<String>, requested: Vec<RequestedFeature>, is_default: bool,
        session_expiration_time: Option<i64>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut features = Vec::with_capacity(requested.len());
        for (i, step) in requested.into_iter().enumerate() {
            match WorkflowFeature::parse(i, step) {
                Ok(feature) => features.push(feature),
                Err(refused) => errors.merge(refused),
            }
        }
        let steps_refused = !errors.is_empty();
        Self::check(label, features, is_default, session_expiration_time, errors, steps_refused)
    }

    fn check(
        label: Option<String>, features: Vec<WorkflowFeature>, is_default: bool,
        session_expiration_time: Option<i64>, mut errors: ValidationErrors, steps_refused: bool,
    ) -> Result<Self, ValidationErrors> {
        if let Some(label) = &label {
            let chars = label.chars().count();
            if chars == 0 || chars > MAX_WORKFLOW_LABEL_CHARS {
                errors.add("workflow_label", "must be 1 to 50 characters.");
            } else if label.chars().any(char::is_control) {
                errors.add("workflow_label", "must not contain control characters.");
            }
        }
        if features.is_empty() && !steps_refused {
            errors.add("features", "at least one feature is required.");
        }
        for (i, step) in features.iter().enumerate() {
            if features[..i].iter().any(|earlier| earlier.feature == step.feature) {
                errors.add(
                    "features",
                    format!("{} is listed more than once.", step.feature.as_str()),
                );
            }
        }
        let expiration = session_expiration_time.unwrap_or(DEFAULT_SESSION_EXPIRATION_SECONDS);
        if !(MIN_SESSION_EXPIRATION_SECONDS..=MAX_SESSION_EXPIRATION_SECONDS).contains(&expiration)
        {
            errors.add("session_expiration_time", "must be between 60 and 31536000 seconds.");
        }
        errors.into_result()?;
        let kind = kind_of(&features);
        Ok(Self {
            label: label.unwrap_or_else(|| match kind {
                SessionKind::User => "KYC workflow".to_owned(),
                SessionKind::Business => "KYB workflow".to_owned(),
            }),
            features,
            is_default,
            session_expiration_time: expiration,
            settings: WorkflowSettings::default(),
        })
    }

    /// The kind of session this workflow runs: `business` when any KYB feature is present.
    pub fn kind(&self) -> SessionKind {
        kind_of(&self.features)
    }
}

fn kind_of(features: &[WorkflowFeature]) -> SessionKind {
    if features.iter().any(|step| step.feature.is_kyb()) {
        SessionKind::Business
    } else {
        SessionKind::User
    }
}

/// Didit's workflow settings that handoff keeps and answers but does not act on: it runs no
/// capture, so retries and white-labelling are the capture provider's to honour.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowSettings {
    /// `published` (the default) or `draft`.
    pub status: String,
    /// Default false.
    pub is_white_label_enabled: bool,
    /// Default true.
    pub is_desktop_allowed: bool,
    /// 0 to 10 (default 3).
    pub max_retry_attempts: i64,
    /// 1 to 365 (default 7).
    pub retry_window_days: i64,
    /// Whether a declined session's face template, document, phone and email go to the
    /// system blocklists and its User or Business becomes `BLOCKED` (default false).
    pub is_auto_blocklist_enabled: bool,
}

impl Default for WorkflowSettings {
    fn default() -> Self {
        Self {
            status: "published".to_owned(),
            is_white_label_enabled: false,
            is_desktop_allowed: true,
            max_retry_attempts: 3,
            retry_window_days: 7,
            is_auto_blocklist_enabled: false,
        }
    }
}

/// Settings as a request gives them: what is given changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestedSettings {
    pub status: Option<String>,
    pub is_white_label_enabled: Option<bool>,
    pub is_desktop_allowed: Option<bool>,
    pub max_retry_attempts: Option<i64>,
    pub retry_window_days: Option<i64>,
    pub is_auto_blocklist_enabled: Option<bool>,
}

impl WorkflowSettings {
    /// These settings with `requested` applied, or what is wrong with it.
    pub fn with(&self, requested: RequestedSettings) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut settings = self.clone();
        if let Some(status) = requested.status {
            if matches!(status.as_str(), "published" | "draft") {
                settings.status = status;
            } else {
                errors.add("status", "must be \"published\" or \"draft\".");
            }
        }
        if let Some(enabled) = requested.is_white_label_enabled {
            settings.is_white_label_enabled = enabled;
        }
        if let Some(enabled) = requested.is_auto_blocklist_enabled {
            settings.is_auto_blocklist_enabled = enabled;
        }
        if let Some(allowed) = requested.is_desktop_allowed {
            settings.is_desktop_allowed = allowed;
        }
        if let Some(attempts) = requested.max_retry_attempts {
            if (0..=10).contains(&attempts) {
                settings.max_retry_attempts = attempts;
            } else {
                errors.add("max_retry_attempts", "must be from 0 to 10.");
            }
        }
        if let Some(days) = requested.retry_window_days {
            if (1..=365).contains(&days) {
                settings.retry_window_days = days;
            } else {
                errors.add("retry_window_days", "must be from 1 to 365.");
            }
        }
        errors.into_result().map(|()| settings)
    }
}

/// A change of a workflow, as the request gives it: what is given changes (`features`, when
/// given, replaces every step).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkflowChange {
    pub label: Option<String>,
    pub features: Option<Vec<RequestedFeature>>,
    pub is_default: Option<bool>,
    pub session_expiration_time: Option<i64>,
    pub settings: RequestedSettings,
}

impl Workflow {
    /// This workflow with `change` applied, checked as a new one is; a change of its kind
    /// (adding or removing every KYB feature) is refused, as its sessions are of that kind.
    pub fn changed(&self, change: WorkflowChange) -> Result<Self, ValidationErrors> {
        let features = change.features.unwrap_or_else(|| {
            self.features
                .iter()
                .map(|step| RequestedFeature {
                    feature: step.feature.as_str().to_owned(),
                    config: Some(step.config.clone()),
                    label: step.label.clone(),
                })
                .collect()
        });
        let checked = NewWorkflow::parse_requested(
            Some(change.label.unwrap_or_else(|| self.label.clone())),
            features,
            change.is_default.unwrap_or(self.is_default),
            Some(change.session_expiration_time.unwrap_or(self.session_expiration_time)),
        );
        let settings = self.settings.with(change.settings);
        let (new, settings) = match (checked, settings) {
            (Ok(new), Ok(settings)) => (new, settings),
            (Err(mut errors), Err(more)) => {
                errors.merge(more);
                return Err(errors);
            }
            (Err(errors), _) | (_, Err(errors)) => return Err(errors),
        };
        if new.kind() != self.kind {
            return Err(ValidationErrors::single(
                "features",
                format!(
                    "would make this a {} workflow; its sessions are {}.",
                    new.kind().as_str(),
                    self.kind.as_str()
                ),
            ));
        }
        Ok(Self {
            label: new.label,
            features: new.features,
            is_default: new.is_default,
            session_expiration_time: new.session_expiration_time,
            settings,
            ..self.clone()
        })
    }
}

/// A stored workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    /// Its id.
    pub id: WorkflowId,
    /// The owning application.
    pub application_id: ApplicationId,
    /// Its label.
    pub label: String,
    /// Its kind, derived from its features when created.
    pub kind: SessionKind,
    /// Its steps.
    pub features: Vec<WorkflowFeature>,
    /// Whether it is the application's default for its kind.
    pub is_default: bool,
    /// Seconds from a session's creation to its `expires_at`.
    pub session_expiration_time: i64,
    /// Didit's settings, kept and answered.
    pub settings: WorkflowSettings,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Didit's `workflow_version`: 1 when made, one more at each change (handoff keeps no
    /// history of the versions before).
    pub version: i64,
}

impl Workflow {
    /// The `features` list a decision payload shows for sessions run by this workflow.
    pub fn decision_features(&self) -> Vec<String> {
        self.features.iter().map(|step| step.feature.decision_name().to_owned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(feature: Feature) -> WorkflowFeature {
        WorkflowFeature { feature, config: Value::Object(Default::default()), label: None }
    }

    #[test]
    fn kind_follows_kyb_features() {
        let user =
            NewWorkflow::parse(None, vec![step(Feature::Ocr), step(Feature::Aml)], false, None)
                .unwrap();
        assert_eq!(user.kind(), SessionKind::User);
        assert_eq!(user.label, "KYC workflow");
        assert_eq!(user.session_expiration_time, 604_800);
        let business = NewWorkflow::parse(
            Some("KYB".into()),
            vec![step(Feature::Aml), step(Feature::KybRegistry)],
            true,
            Some(60),
        )
        .unwrap();
        assert_eq!(business.kind(), SessionKind::Business);
    }

    #[test]
    fn refusals_name_their_fields() {
        let err = NewWorkflow::parse(Some("x".repeat(51)), vec![], false, Some(59)).unwrap_err();
        let fields: Vec<_> = err.fields().collect();
        assert_eq!(fields, ["features", "session_expiration_time", "workflow_label"]);
        let dup =
            NewWorkflow::parse(None, vec![step(Feature::Ocr), step(Feature::Ocr)], false, None)
                .unwrap_err();
        assert_eq!(dup.fields().collect::<Vec<_>>(), ["features"]);
    }

    #[test]
    fn decision_names() {
        let names: Vec<_> = Feature::ALL.iter().map(|f| f.decision_name()).collect();
        assert_eq!(names[0], "ID_VERIFICATION");
        assert_eq!(names[4], "POA");
        assert_eq!(names[6], "PHONE");
        assert_eq!(names[7], "EMAIL_VERIFICATION");
        for f in Feature::ALL {
            assert_eq!(Feature::parse(f.as_str()), Some(f));
        }
    }

    fn requested(feature: &str) -> RequestedFeature {
        RequestedFeature { feature: feature.to_owned(), config: None, label: None }
    }

    #[test]
    fn requested_steps_are_checked_one_by_one() {
        let parsed = NewWorkflow::parse_requested(
            None,
            vec![requested("OCR"), requested("AML")],
            false,
            None,
        )
        .unwrap();
        assert_eq!(parsed.features.len(), 2);
        assert_eq!(parsed.features[0].config, serde_json::json!({}));

        let refused = NewWorkflow::parse_requested(
            None,
            vec![
                requested("SELFIE"),
                RequestedFeature {
                    config: Some(serde_json::json!([1])),
                    label: Some("x".repeat(MAX_FEATURE_LABEL_CHARS + 1)),
                    ..requested("OCR")
                },
            ],
            false,
            None,
        )
        .unwrap_err();
        let fields: Vec<&str> = refused.fields().collect();
        assert_eq!(
            fields,
            ["features[0].feature", "features[1].config", "features[1].label"],
            "every step's faults, and no \"at least one feature\" on top"
        );
        let (_, messages) = refused.iter().next().unwrap();
        assert!(
            messages[0].contains("\"SELFIE\" is not a known feature; the features are OCR, NFC")
        );

        let empty = NewWorkflow::parse_requested(None, vec![], false, None).unwrap_err();
        assert_eq!(empty.fields().collect::<Vec<_>>(), ["features"]);
    }

    #[test]
    fn typed_steps_have_the_same_label_limit() {
        let long = WorkflowFeature {
            label: Some("x".repeat(MAX_FEATURE_LABEL_CHARS + 1)),
            ..step(Feature::Ocr)
        };
        let refused = NewWorkflow::parse(None, vec![long], false, None).unwrap_err();
        assert_eq!(refused.fields().collect::<Vec<_>>(), ["features[0].label"]);
    }
}
