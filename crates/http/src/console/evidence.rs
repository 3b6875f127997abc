//! Evidence at a glance: each recorded block's first item summed up as a card — what a
//! reviewer looks for in it (names, dates, scores, flags), warnings first — beside the full
//! field list the page keeps below it. A card knows the fields of the verification engine's
//! payloads (`fixtures/`); a field it does not find is left out, and a block it does not know
//! shows its status alone.

use chrono::NaiveDate;
use handoff_domain::{FeatureBlock, FeatureItem};
use serde_json::Value;

/// One line of a card: what it is, its value, and whether it should catch the eye.
pub(super) struct Fact {
    pub label: &'static str,
    pub value: String,
    pub alert: bool,
}

/// A block's first item, summed up.
pub(super) struct Card {
    pub key: &'static str,
    pub title: &'static str,
    pub status: String,
    pub facts: Vec<Fact>,
    /// A table the block holds (AML hits, key people, company documents): its head, its rows.
    pub table: Option<(Vec<&'static str>, Vec<Vec<String>>)>,
    /// How many more items the block holds than the one summed up.
    pub more: usize,
}

/// A score's thresholds in the workflow (Didit's step settings): below `review` a session goes
/// to review, below `decline` it is declined.
#[derive(Clone, Copy, Default)]
pub(super) struct Thresholds {
    pub review: Option<f64>,
    pub decline: Option<f64>,
}

impl Thresholds {
    /// The thresholds a step's `config` sets for `block`'s score, by Didit's names
    /// (`face_match_score_review_threshold`, `…_decline_threshold`; liveness likewise).
    pub(super) fn of(block: FeatureBlock, config: &Value) -> Self {
        let prefixes: &[&str] = match block {
            FeatureBlock::FaceMatches => &["face_match_score"],
            FeatureBlock::LivenessChecks => &["face_liveness_score", "liveness_score"],
            _ => &[],
        };
        let read = |which: &str| {
            prefixes.iter().find_map(|p| config.get(format!("{p}_{which}_threshold"))?.as_f64())
        };
        Self { review: read("review"), decline: read("decline") }
    }

    /// `score` weighed against them: the text, and whether it falls below one.
    fn weigh(self, score: f64) -> (String, bool) {
        let limits: Vec<String> = [("review below", self.review), ("decline below", self.decline)]
            .into_iter()
            .filter_map(|(what, limit)| limit.map(|l| format!("{what} {l}")))
            .collect();
        let below = self.review.or(self.decline).is_some_and(|limit| score < limit);
        let verdict = match (limits.is_empty(), below) {
            (true, _) => String::new(),
            (false, true) => format!(" — below the workflow's threshold ({})", limits.join(", ")),
            (false, false) => {
                format!(" — passes the workflow's thresholds ({})", limits.join(", "))
            }
        };
        (format!("{score}{verdict}"), below)
    }
}

/// What the card of a session shows: the cards, and every warning of every block, first.
pub(super) struct Evidence {
    pub warnings: Vec<(&'static str, String)>,
    pub cards: Vec<Card>,
}

/// The text of `value` at `path` (`/a/b`), when it is a string, a number or a boolean.
fn text(value: &Value, path: &str) -> Option<String> {
    match value.pointer(path)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "yes" } else { "no" }.to_owned()),
        _ => None,
    }
}

fn flag(value: &Value, path: &str) -> bool {
    value.pointer(path).and_then(Value::as_bool).unwrap_or(false)
}

/// A document number with all but its last three characters hidden.
pub(super) fn masked(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let shown = chars.len().min(3);
    let hidden = chars.len() - shown;
    format!("{}{}", "•".repeat(hidden.max(3)), chars[hidden..].iter().collect::<String>())
}

/// The facts of `block`'s item `value`; `reveal`: document numbers in full.
fn facts(
    block: FeatureBlock, value: &Value, today: NaiveDate, reveal: bool, thresholds: Thresholds,
) -> Vec<Fact> {
    let score = || value.get("score").and_then(Value::as_f64).map(|score| thresholds.weigh(score));
    let mut facts = Vec::new();
    let mut add = |label: &'static str, value: Option<String>, alert: bool| {
        if let Some(value) = value {
            facts.push(Fact { label, value, alert });
        }
    };
    let joined = |parts: &[Option<String>]| {
        let parts: Vec<&str> = parts.iter().flatten().map(String::as_str).collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    };
    match block {
        FeatureBlock::IdVerifications | FeatureBlock::NfcVerifications => {
            let name = text(value, "/full_name").or_else(|| {
                joined(&[text(value, "/first_name"), text(value, "/last_name")])
                    .map(|n| n.replace(", ", " "))
            });
            add("Name", name, false);
            let birth = text(value, "/date_of_birth").map(|d| match text(value, "/age") {
                Some(age) => format!("{d} (age {age})"),
                None => d,
            });
            add("Date of birth", birth, false);
            add(
                "Document",
                joined(&[
                    text(value, "/document_type"),
                    text(value, "/issuing_state_name").or_else(|| text(value, "/issuing_state")),
                ]),
                false,
            );
            let number =
                text(value, "/document_number").map(|n| if reveal { n } else { masked(&n) });
            add("Document number", number, false);
            if let Some(expiry) = text(value, "/expiration_date") {
                let expired =
                    NaiveDate::parse_from_str(&expiry, "%Y-%m-%d").is_ok_and(|date| date < today);
                let shown = if expired { format!("{expiry} — expired") } else { expiry };
                add("Expires", Some(shown), expired);
            }
            add("Nationality", text(value, "/nationality"), false);
        }
        FeatureBlock::LivenessChecks => {
            add("Method", text(value, "/method"), false);
            if let Some((weighed, below)) = score() {
                add("Score", Some(weighed), below);
            }
            add("Estimated age", text(value, "/age_estimation"), false);
        }
        FeatureBlock::FaceMatches => {
            if let Some((weighed, below)) = score() {
                add("Similarity score", Some(weighed), below);
            }
        }
        FeatureBlock::PoaVerifications => {
            let address =
                text(value, "/poa_formatted_address").or_else(|| text(value, "/poa_address"));
            add("Address", address, false);
            add("Name on the document", text(value, "/name_on_document"), false);
            add(
                "Document",
                joined(&[text(value, "/document_type"), text(value, "/issuer")]),
                false,
            );
            add("Issued", text(value, "/issue_date"), false);
        }
        FeatureBlock::PhoneVerifications => {
            add("Number", text(value, "/full_number"), false);
            add("Country", text(value, "/country_name"), false);
            add("Line", text(value, "/carrier/type"), false);
            let disposable = flag(value, "/is_disposable") || flag(value, "/is_virtual");
            add(
                "Disposable or virtual",
                Some(if disposable { "yes" } else { "no" }.into()),
                disposable,
            );
        }
        FeatureBlock::EmailVerifications => {
            add("Email", text(value, "/email"), false);
            for (label, path) in [
                ("Breached", "/is_breached"),
                ("Disposable", "/is_disposable"),
                ("Undeliverable", "/is_undeliverable"),
            ] {
                let set = flag(value, path);
                add(label, Some(if set { "yes" } else { "no" }.into()), set);
            }
        }
        FeatureBlock::AmlScreenings => {
            let hits = value.pointer("/total_hits").and_then(Value::as_i64).unwrap_or(0);
            add("Hits", Some(hits.to_string()), hits > 0);
            add("Risk score", text(value, "/score"), false);
            add("Screened", text(value, "/screened_data/full_name"), false);
            add("Ongoing monitoring", text(value, "/is_ongoing_monitoring_enabled"), false);
        }
        FeatureBlock::IpAnalyses => {
            add(
                "Location",
                joined(&[
                    text(value, "/ip_city"),
                    text(value, "/ip_state"),
                    text(value, "/ip_country"),
                ]),
                false,
            );
            let vpn = flag(value, "/is_vpn_or_tor");
            add("VPN or Tor", Some(if vpn { "yes" } else { "no" }.into()), vpn);
            let data_center = flag(value, "/is_data_center");
            add("Data centre", Some(if data_center { "yes" } else { "no" }.into()), data_center);
            add(
                "Device",
                joined(&[
                    text(value, "/device_brand"),
                    text(value, "/device_model"),
                    text(value, "/os_family"),
                ]),
                false,
            );
        }
        FeatureBlock::DatabaseValidations => {
            add("Match", text(value, "/match_type"), false);
            add("Validation", text(value, "/validation_type"), false);
            add("Issuing state", text(value, "/issuing_state"), false);
        }
        FeatureBlock::RegistryChecks => {
            add("Company", text(value, "/company/company_name"), false);
            add("Legal name", text(value, "/company/legal_name"), false);
            add(
                "Registration",
                joined(&[
                    text(value, "/company/registration_number"),
                    text(value, "/company/country_code"),
                ]),
                false,
            );
            let status = text(value, "/company/registry_status");
            let inactive = status.as_deref().is_some_and(|s| s != "active");
            add("Registry status", status, inactive);
            add("Incorporated", text(value, "/company/incorporation_date"), false);
            add("Registered address", text(value, "/company/registered_address"), false);
        }
        FeatureBlock::KeyPeopleChecks => {
            let summary = value.pointer("/ubo_kyc_summary");
            if let Some(summary) = summary {
                let flagged = summary.get("flagged").and_then(Value::as_i64).unwrap_or(0);
                add(
                    "Owners' KYC",
                    joined(&[
                        text(summary, "/approved").map(|n| format!("{n} approved")),
                        text(summary, "/flagged").map(|n| format!("{n} flagged")),
                        text(summary, "/pending").map(|n| format!("{n} pending")),
                    ]),
                    flagged > 0,
                );
            }
        }
        FeatureBlock::DocumentVerifications => {
            let required = value.pointer("/required_groups").and_then(Value::as_array);
            let groups = required.map(|groups| {
                groups
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|group| {
                        let done = value.pointer(&format!("/groups/{group}/submitted"));
                        let need = value.pointer(&format!("/groups/{group}/required"));
                        match (done, need) {
                            (Some(done), Some(need)) => format!("{group} {done}/{need}"),
                            _ => group.to_owned(),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            add("Required groups", groups, false);
        }
        FeatureBlock::QuestionnaireResponses => {}
    }
    facts
}

/// The table a block holds, if any.
fn table(block: FeatureBlock, value: &Value) -> Option<(Vec<&'static str>, Vec<Vec<String>>)> {
    let cell =
        |v: &Value, paths: &[&str]| paths.iter().find_map(|p| text(v, p)).unwrap_or_default();
    match block {
        FeatureBlock::AmlScreenings => {
            let hits = value.pointer("/hits")?.as_array()?;
            let rows = hits
                .iter()
                .map(|hit| {
                    let lists = hit
                        .get("datasets")
                        .or_else(|| hit.get("lists"))
                        .and_then(Value::as_array)
                        .map(|l| l.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                        .unwrap_or_else(|| cell(hit, &["/list", "/dataset"]));
                    vec![
                        cell(hit, &["/caption", "/name", "/full_name"]),
                        lists,
                        cell(hit, &["/match_score", "/score"]),
                        cell(hit, &["/url", "/link"]),
                    ]
                })
                .collect();
            Some((vec!["Name", "Lists", "Match score", "Detail"], rows))
        }
        FeatureBlock::KeyPeopleChecks => {
            let mut rows = Vec::new();
            for (group, label) in [("officers", "officer"), ("beneficial_owners", "owner")] {
                for person in value
                    .pointer(&format!("/registry/{group}"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = [text(person, "/first_name"), text(person, "/last_name")]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ");
                    let roles = person
                        .get("roles")
                        .and_then(Value::as_array)
                        .map(|roles| {
                            roles
                                .iter()
                                .filter_map(|r| {
                                    let role = text(r, "/role")?;
                                    Some(match text(r, "/ownership_percent") {
                                        Some(p) => format!("{role} {p} %"),
                                        None => role,
                                    })
                                })
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default();
                    rows.push(vec![name, label.to_owned(), roles]);
                }
            }
            Some((vec!["Name", "As", "Roles"], rows))
        }
        FeatureBlock::DocumentVerifications => {
            let items = value.pointer("/items")?.as_array()?;
            let rows = items
                .iter()
                .map(|d| vec![cell(d, &["/document_type"]), cell(d, &["/status"])])
                .collect();
            Some((vec!["Document", "Status"], rows))
        }
        _ => None,
    }
}

/// The warnings of an item: each `warnings` entry's risk (or its text).
fn warnings(value: &Value) -> Vec<String> {
    value
        .get("warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|w| match w {
            Value::String(s) => Some(s.clone()),
            Value::Object(_) => text(w, "/risk").or_else(|| text(w, "/message")),
            _ => None,
        })
        .collect()
}

/// The evidence of a session's recorded blocks, in the kind's order; `thresholds`, the
/// workflow's for the blocks that have them.
pub(super) fn evidence(
    blocks: &[(FeatureBlock, &[FeatureItem])], today: NaiveDate, reveal: bool,
    thresholds: &[(FeatureBlock, Thresholds)],
) -> Evidence {
    let mut out = Evidence { warnings: Vec::new(), cards: Vec::new() };
    for (block, items) in blocks {
        for item in *items {
            let value: Value = serde_json::from_str(item.json().get()).unwrap_or_default();
            out.warnings.extend(warnings(&value).into_iter().map(|w| (block.title(), w)));
        }
        let Some(first) = items.first() else {
            continue;
        };
        let value: Value = serde_json::from_str(first.json().get()).unwrap_or_default();
        out.cards.push(Card {
            key: block.v3_key(),
            title: block.title(),
            status: first.status().to_owned(),
            facts: facts(*block, &value, today, reveal, {
                thresholds.iter().find(|(b, _)| b == block).map(|(_, t)| *t).unwrap_or_default()
            }),
            table: table(*block, &value).filter(|(_, rows)| !rows.is_empty()),
            more: items.len() - 1,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(json: &str) -> FeatureItem {
        FeatureItem::parse(&serde_json::value::RawValue::from_string(json.to_owned()).unwrap())
            .unwrap()
    }

    #[test]
    fn a_document_shows_its_holder_masked_number_and_expiry() {
        let id = item(
            r#"{"node_id":"n","status":"Approved","full_name":"Ana Example","date_of_birth":"1990-04-12","age":36,
                "document_type":"Identity Card","issuing_state_name":"Spain","document_number":"X1234567Z",
                "expiration_date":"2026-01-01","warnings":[{"risk":"DOCUMENT_EXPIRED"}]}"#,
        );
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let shown = evidence(
            &[(FeatureBlock::IdVerifications, std::slice::from_ref(&id))],
            today,
            false,
            &[],
        );
        let facts: Vec<(&str, &str, bool)> =
            shown.cards[0].facts.iter().map(|f| (f.label, f.value.as_str(), f.alert)).collect();
        assert_eq!(
            facts,
            [
                ("Name", "Ana Example", false),
                ("Date of birth", "1990-04-12 (age 36)", false),
                ("Document", "Identity Card, Spain", false),
                ("Document number", "••••••67Z", false),
                ("Expires", "2026-01-01 — expired", true),
            ]
        );
        assert_eq!(shown.warnings, [("ID verification", "DOCUMENT_EXPIRED".to_owned())]);
        let revealed = evidence(
            &[(FeatureBlock::IdVerifications, std::slice::from_ref(&id))],
            today,
            true,
            &[],
        );
        assert_eq!(revealed.cards[0].facts[3].value, "X1234567Z");
    }

    #[test]
    fn aml_hits_and_flags_catch_the_eye() {
        let aml = item(
            r#"{"node_id":"n","status":"In Review","total_hits":1,"score":88,
                "hits":[{"caption":"Ana Exampel","datasets":["EU sanctions"],"match_score":88,"url":"https://lists.example/1"}]}"#,
        );
        let ip = item(
            r#"{"node_id":"n","status":"In Review","ip_country":"Spain","is_vpn_or_tor":true}"#,
        );
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let shown = evidence(
            &[
                (FeatureBlock::AmlScreenings, std::slice::from_ref(&aml)),
                (FeatureBlock::IpAnalyses, std::slice::from_ref(&ip)),
            ],
            today,
            false,
            &[],
        );
        assert!(shown.cards[0].facts[0].alert, "a hit");
        let (head, rows) = shown.cards[0].table.as_ref().unwrap();
        assert_eq!(head[0], "Name");
        assert_eq!(rows[0], ["Ana Exampel", "EU sanctions", "88", "https://lists.example/1"]);
        let vpn = shown.cards[1].facts.iter().find(|f| f.label == "VPN or Tor").unwrap();
        assert!(vpn.alert && vpn.value == "yes");
        assert_eq!(masked("AB"), "•••AB");
    }

    #[test]
    fn scores_are_weighed_against_the_workflows_thresholds() {
        let config = serde_json::json!({"face_match_score_decline_threshold": 40, "face_match_score_review_threshold": 60});
        let thresholds = Thresholds::of(FeatureBlock::FaceMatches, &config);
        let low = item(r#"{"node_id":"n","status":"In Review","score":55.5}"#);
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let shown = evidence(
            &[(FeatureBlock::FaceMatches, std::slice::from_ref(&low))],
            today,
            false,
            &[(FeatureBlock::FaceMatches, thresholds)],
        );
        let fact = &shown.cards[0].facts[0];
        assert_eq!(
            fact.value,
            "55.5 — below the workflow's threshold (review below 60, decline below 40)"
        );
        assert!(fact.alert);
        let (passes, below) = thresholds.weigh(91.3);
        assert!(!below && passes.contains("passes"));
        let (plain, _) = Thresholds::default().weigh(91.3);
        assert_eq!(plain, "91.3", "no thresholds, the score alone");
    }
}
