//! Rows to domain types and back: the one place that knows how each column is stored.
//!
//! JSON columns are text on both backends (read inside only by the session list's filters); ids
//! are native UUIDs on PostgreSQL and 16-byte blobs on SQLite; times are `timestamptz` and
//! RFC 3339 text.

use chrono::{DateTime, Utc};
use handoff_domain::action::LogAction;
use handoff_domain::workflow::Feature;
use handoff_domain::{
    ApplicationId, FeatureBlock, FeatureItem, RepoError, Review, SessionId, SessionKind,
    SessionOptions, SessionStatus, StoredSession, VendorData, WorkflowFeature, WorkflowId,
};
use sea_orm::{QueryResult, TryGetable, Value};
use serde_json::json;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::sealing::SessionKey;

/// The columns of `sessions` that [`session`] reads, in the order the SELECTs name them.
pub(crate) const SESSION_COLUMNS: &str = "id, application_id, kind, session_number, session_token, \
     session_url, status, workflow_id, features, vendor_data, metadata, callback, contact_details, \
     expected_details, shared_from_session, recorded_blocks, created_at, expires_at, options, revision, \
     data_key";

/// Reads a column, turning a decoding failure into a storage error that names the column.
pub(crate) fn get<T: TryGetable>(row: &QueryResult, column: &str) -> Result<T, RepoError> {
    row.try_get::<T>("", column)
        .map_err(|e| RepoError::Internal(format!("column {column}: {e}").into()))
}

/// Reads a text column that may be NULL. Straight from sqlx on either backend, where a NULL
/// is `None`: through sea-orm a NULL is first an error whose message is formatted, which costs
/// more than reading the value (a session has four such columns, most often all NULL).
pub(crate) fn text_or_null(row: &QueryResult, column: &str) -> Result<Option<String>, RepoError> {
    use sea_orm::sqlx::Row;
    let read = match (row.try_as_pg_row(), row.try_as_sqlite_row()) {
        (Some(row), _) => row.try_get::<Option<String>, _>(column),
        (_, Some(row)) => row.try_get::<Option<String>, _>(column),
        _ => return get(row, column),
    };
    read.map_err(|e| RepoError::Internal(format!("column {column}: {e}").into()))
}

pub(crate) fn corrupt(what: &str, value: &str) -> RepoError {
    RepoError::Internal(format!("stored {what} is not valid: {value:?}").into())
}

pub(crate) fn kind(row: &QueryResult, column: &str) -> Result<SessionKind, RepoError> {
    let raw: String = get(row, column)?;
    SessionKind::parse(&raw).ok_or_else(|| corrupt("kind", &raw))
}

pub(crate) fn status(raw: &str) -> Result<SessionStatus, RepoError> {
    SessionStatus::parse(raw).ok_or_else(|| corrupt("status", raw))
}

pub(crate) fn json_column(
    row: &QueryResult, column: &str,
) -> Result<Option<serde_json::Value>, RepoError> {
    let raw = text_or_null(row, column)?;
    raw.map(|text| serde_json::from_str(&text).map_err(|_| corrupt(column, "(json)"))).transpose()
}

/// A JSON value as stored in a text column.
pub(crate) fn json_text(value: Option<&serde_json::Value>) -> Value {
    Value::from(value.map(serde_json::Value::to_string))
}

/// A session's options as stored: NULL when none is set.
pub(crate) fn options_text(options: &SessionOptions) -> Option<String> {
    (!options.is_empty()).then(|| serde_json::to_string(options).ok()).flatten()
}

/// Parses the comma-separated `recorded_blocks` column.
pub(crate) fn recorded_blocks(raw: &str) -> Result<Vec<FeatureBlock>, RepoError> {
    raw.split(',')
        .filter(|s| !s.is_empty())
        .map(|key| FeatureBlock::from_v3_key(key).ok_or_else(|| corrupt("block", key)))
        .collect()
}

/// Writes the `recorded_blocks` column.
pub(crate) fn recorded_blocks_text(blocks: &[FeatureBlock]) -> String {
    blocks.iter().map(|b| b.v3_key()).collect::<Vec<_>>().join(",")
}

/// A share's `blocks` as its ledger row keeps them: the V3 keys, comma-separated; `None` (every
/// block) as NULL.
pub(crate) fn share_blocks_text(blocks: Option<&[FeatureBlock]>) -> Option<String> {
    blocks.map(recorded_blocks_text)
}

/// The blocks a share's ledger row names in `column`; `None`: every block.
pub(crate) fn share_blocks(
    row: &QueryResult, column: &str,
) -> Result<Option<Vec<FeatureBlock>>, RepoError> {
    text_or_null(row, column)?.map(|text| recorded_blocks(&text)).transpose()
}

/// The consent a share's ledger row keeps in `column`, if any.
pub(crate) fn share_consent(
    row: &QueryResult, column: &str,
) -> Result<Option<handoff_domain::share::Consent>, RepoError> {
    match json_column(row, column)? {
        None => Ok(None),
        Some(value) => handoff_domain::share::Consent::from_json(&value)
            .map(Some)
            .ok_or_else(|| corrupt("consent", &value.to_string())),
    }
}

/// A row's `vendor_data` column.
pub(crate) fn vendor_data(row: &QueryResult) -> Result<Option<VendorData>, RepoError> {
    text_or_null(row, "vendor_data")?
        .map(|v| VendorData::parse(&v).map_err(|_| corrupt("vendor_data", "(hidden)")))
        .transpose()
}

/// A JSON column of a session, opened with its data key.
fn sealed_json(
    row: &QueryResult, column: &str, key: &SessionKey,
) -> Result<Option<serde_json::Value>, RepoError> {
    text_or_null(row, column)?
        .map(|text| {
            let text = key.open(column, text)?;
            serde_json::from_str(&text).map_err(|_| corrupt(column, "(json)"))
        })
        .transpose()
}

/// A JSON value as stored in a session's text column, sealed with its data key.
pub(crate) fn sealed_json_text(
    value: Option<&serde_json::Value>, column: &str, key: &SessionKey,
) -> Result<Value, RepoError> {
    Ok(Value::from(value.map(|v| key.seal(column, &v.to_string())).transpose()?))
}

/// A `sessions` row read with [`SESSION_COLUMNS`], its sealed columns opened with `key`, and
/// its recorded blocks.
pub(crate) fn session(
    row: &QueryResult, key: &SessionKey,
) -> Result<(StoredSession, Vec<FeatureBlock>), RepoError> {
    let features: String = get(row, "features")?;
    let features: Vec<String> =
        serde_json::from_str(&features).map_err(|_| corrupt("features", &features))?;
    let vendor_data = vendor_data(row)?;
    let status_text: String = get(row, "status")?;
    let recorded: String = get(row, "recorded_blocks")?;
    let session = StoredSession {
        id: SessionId::from_uuid(get(row, "id")?),
        application_id: ApplicationId::from_uuid(get(row, "application_id")?),
        kind: kind(row, "kind")?,
        session_number: get(row, "session_number")?,
        session_token: get(row, "session_token")?,
        session_url: get(row, "session_url")?,
        status: status(&status_text)?,
        workflow_id: WorkflowId::from_uuid(get(row, "workflow_id")?),
        features,
        vendor_data,
        metadata: sealed_json(row, "metadata", key)?,
        callback: text_or_null(row, "callback")?,
        contact_details: sealed_json(row, "contact_details", key)?,
        expected_details: sealed_json(row, "expected_details", key)?,
        shared_from_session: get::<Option<Uuid>>(row, "shared_from_session")?
            .map(SessionId::from_uuid),
        created_at: get::<DateTime<Utc>>(row, "created_at")?,
        expires_at: get::<DateTime<Utc>>(row, "expires_at")?,
        options: text_or_null(row, "options")?
            .map(|text| serde_json::from_str(&text).map_err(|_| corrupt("options", &text)))
            .transpose()?
            .unwrap_or_default(),
        revision: get(row, "revision")?,
    };
    Ok((session, recorded_blocks(&recorded)?))
}

/// The columns of a block row that [`item`] reads, named as it reads them.
pub(crate) const ITEM_COLUMNS: &str = "position, node_id, status AS item_status, item";

/// A block row read with [`ITEM_COLUMNS`] and a `block` column naming its table, its item
/// opened with the session's data key.
pub(crate) fn item(
    row: &QueryResult, data_key: &SessionKey,
) -> Result<(FeatureBlock, i32, FeatureItem), RepoError> {
    let key: String = get(row, "block")?;
    let block = FeatureBlock::from_v3_key(&key).ok_or_else(|| corrupt("block", &key))?;
    let json = RawValue::from_string(data_key.open(block.v3_key(), get(row, "item")?)?)
        .map_err(|_| RepoError::Internal(format!("stored item of {key} is not JSON").into()))?;
    let item = FeatureItem::from_stored(get(row, "node_id")?, get(row, "item_status")?, json);
    Ok((block, get(row, "position")?, item))
}

/// The `recorded` blocks, in that order, each with its items in position order; a recorded
/// block without items is an empty array.
pub(crate) fn blocks(
    recorded: &[FeatureBlock], mut items: Vec<(FeatureBlock, i32, FeatureItem)>,
) -> Vec<(FeatureBlock, Vec<FeatureItem>)> {
    items.sort_by_key(|(block, position, _)| (*block, *position));
    let mut blocks: Vec<(FeatureBlock, Vec<FeatureItem>)> =
        recorded.iter().map(|b| (*b, Vec::new())).collect();
    for (block, _, item) in items {
        if let Some((_, items)) = blocks.iter_mut().find(|(b, _)| *b == block) {
            items.push(item);
        }
    }
    blocks
}

/// Items packed by the database, one after another, each
/// `block U+001F position U+001F n U+001F m U+001F node_id status item` where `n` and `m` are the
/// byte lengths of `node_id` and `status`, and items separated by U+001E. The lengths let
/// `node_id` and `status` hold any character; the item, valid JSON or sealed text (opened with
/// `data_key`), holds no U+001E unescaped, so it runs to the next separator. `None` (no rows) is no
/// items.
pub(crate) fn items_packed(
    text: Option<&str>, data_key: &SessionKey,
) -> Result<Vec<(FeatureBlock, i32, FeatureItem)>, RepoError> {
    let Some(mut rest) = text else {
        return Ok(Vec::new());
    };
    let packed = || corrupt("items", "(packed)");
    let mut items = Vec::new();
    loop {
        let mut field = || -> Result<&str, RepoError> {
            let (field, after) = rest.split_once('\u{1f}').ok_or_else(packed)?;
            rest = after;
            Ok(field)
        };
        let key = field()?;
        let block = FeatureBlock::from_v3_key(key).ok_or_else(|| corrupt("block", key))?;
        let position: i32 = field()?.parse().map_err(|_| packed())?;
        let node_id_len: usize = field()?.parse().map_err(|_| packed())?;
        let status_len: usize = field()?.parse().map_err(|_| packed())?;
        let end = node_id_len.checked_add(status_len).ok_or_else(packed)?;
        let node_id = rest.get(..node_id_len).ok_or_else(packed)?;
        let status = rest.get(node_id_len..end).ok_or_else(packed)?;
        let after = &rest[end..];
        let (json, next) = match after.split_once('\u{1e}') {
            Some((json, next)) => (json, Some(next)),
            None => (after, None),
        };
        let json = RawValue::from_string(data_key.open(block.v3_key(), json.to_owned())?)
            .map_err(|_| RepoError::Internal(format!("stored item of {key} is not JSON").into()))?;
        items.push((
            block,
            position,
            FeatureItem::from_stored(node_id.to_owned(), status.to_owned(), json),
        ));
        match next {
            Some(next) => rest = next,
            None => return Ok(items),
        }
    }
}

/// Reviews aggregated by the database as a JSON array of `[log id, actor, new_status,
/// comment, created_at]`, put in log order; `None` (no rows) is no reviews.
pub(crate) fn reviews_json(text: Option<&str>, key: &SessionKey) -> Result<Vec<Review>, RepoError> {
    type Row = (i64, String, Option<String>, Option<String>, DateTime<Utc>);
    let mut rows: Vec<Row> = match text {
        Some(text) => serde_json::from_str(text).map_err(|_| corrupt("reviews", "(json)"))?,
        None => Vec::new(),
    };
    rows.sort_by_key(|row| row.0);
    rows.into_iter()
        .map(|(_, user, new_status, comment, created_at)| {
            Ok(Review {
                user,
                new_status: status(new_status.as_deref().unwrap_or_default())?,
                comment: comment.map(|c| key.open("comment", c)).transpose()?,
                created_at,
            })
        })
        .collect()
}

/// The columns of a review log row that [`review`] reads, named as it reads them.
pub(crate) const REVIEW_COLUMNS: &str =
    "id AS log_id, kind AS log_kind, actor, new_status, comment, created_at AS logged_at";

/// A log row's `comment`, opened with its session's data key.
fn comment(row: &QueryResult, key: &SessionKey) -> Result<Option<String>, RepoError> {
    text_or_null(row, "comment")?.map(|c| key.open("comment", c)).transpose()
}

/// A log row read with [`REVIEW_COLUMNS`], as the `reviews` show it; `None` for an event.
pub(crate) fn review(
    row: &QueryResult, key: &SessionKey,
) -> Result<Option<(i64, Review)>, RepoError> {
    let kind: String = get(row, "log_kind")?;
    if kind != handoff_domain::LogKind::Review.as_str() {
        return Ok(None);
    }
    let status = text_or_null(row, "new_status")?;
    let review = Review {
        user: get(row, "actor")?,
        new_status: self::status(status.as_deref().unwrap_or_default())?,
        comment: comment(row, key)?,
        created_at: get(row, "logged_at")?,
    };
    Ok(Some((get(row, "log_id")?, review)))
}

/// A log row read whole (`session_logs.*`) as the domain's entry, its comment opened with its
/// session's data key.
pub(crate) fn log_entry(
    row: &QueryResult, key: &SessionKey,
) -> Result<handoff_domain::LogEntry, RepoError> {
    let kind: String = get(row, "kind")?;
    let optional_status = |column: &str| -> Result<Option<SessionStatus>, RepoError> {
        text_or_null(row, column)?.map(|raw| status(&raw)).transpose()
    };
    Ok(handoff_domain::LogEntry {
        kind: handoff_domain::LogKind::parse(&kind).ok_or_else(|| corrupt("log kind", &kind))?,
        actor: get(row, "actor")?,
        action: {
            let action: String = get(row, "action")?;
            LogAction::parse(&action).ok_or_else(|| {
                RepoError::Internal(format!("column action: unknown action {action:?}").into())
            })?
        },
        old_status: optional_status("old_status")?,
        new_status: optional_status("new_status")?,
        comment: comment(row, key)?,
        details: json_column(row, "details")?,
        created_at: get(row, "created_at")?,
    })
}

/// A workflow's steps as stored.
pub(crate) fn workflow_features_text(features: &[WorkflowFeature]) -> String {
    serde_json::Value::Array(
        features
            .iter()
            .map(|step| json!({"feature": step.feature.as_str(), "config": step.config, "label": step.label}))
            .collect(),
    )
    .to_string()
}

/// A workflow's steps read back.
pub(crate) fn workflow_features(raw: &str) -> Result<Vec<WorkflowFeature>, RepoError> {
    let steps: Vec<serde_json::Value> =
        serde_json::from_str(raw).map_err(|_| corrupt("workflow features", raw))?;
    steps
        .into_iter()
        .map(|step| {
            let name = step["feature"].as_str().unwrap_or_default();
            let feature = Feature::parse(name).ok_or_else(|| corrupt("feature", name))?;
            Ok(WorkflowFeature {
                feature,
                config: step["config"].clone(),
                label: step["label"].as_str().map(str::to_owned),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the PostgreSQL import's statement sends for one item (its packing).
    fn pack(block: &str, position: i32, node_id: &str, status: &str, item: &str) -> String {
        format!(
            "{block}\u{1f}{position}\u{1f}{}\u{1f}{}\u{1f}{node_id}{status}{item}",
            node_id.len(),
            status.len()
        )
    }

    #[test]
    fn packed_items_come_back_whatever_their_node_id_and_status_hold() {
        let odd_node = "n\u{1f}1\u{1e}é";
        let odd_status = "\u{1e}Approved\u{1f}";
        let first = r#"{"node_id":"n\u001f1\u001eé","status":"\u001eApproved\u001f","a":[1,2]}"#;
        let second = r#"{"node_id":"m","status":"Declined"}"#;
        let text = [
            pack("aml_screenings", 2, odd_node, odd_status, first),
            pack("id_verifications", 0, "m", "Declined", second),
        ]
        .join("\u{1e}");
        let items = items_packed(Some(&text), &SessionKey::Clear).unwrap();
        assert_eq!(items.len(), 2);
        let (block, position, item) = &items[0];
        assert_eq!((*block, *position), (FeatureBlock::AmlScreenings, 2));
        assert_eq!(item.node_id(), odd_node);
        assert_eq!(item.status(), odd_status);
        assert_eq!(item.json().get(), first);
        let (block, position, item) = &items[1];
        assert_eq!((*block, *position), (FeatureBlock::IdVerifications, 0));
        assert_eq!((item.node_id(), item.status()), ("m", "Declined"));
        assert_eq!(item.json().get(), second);
        assert!(items_packed(None, &SessionKey::Clear).unwrap().is_empty());
    }

    #[test]
    fn packed_items_that_do_not_add_up_are_an_error_not_a_panic() {
        let good = pack("aml_screenings", 1, "n", "s", "{}");
        for bad in [
            String::new(),
            "aml_screenings".to_owned(),
            good.replace("aml_screenings", "nope"),
            good.replace("\u{1f}1\u{1f}", "\u{1f}x\u{1f}"),
            // Lengths past the end, or inside a character.
            pack("aml_screenings", 1, "n", "s", "{}")
                .replace("\u{1f}1\u{1f}1\u{1f}", "\u{1f}1\u{1f}99\u{1f}"),
            pack("aml_screenings", 1, "é", "s", "{}").replace("\u{1f}2\u{1f}", "\u{1f}1\u{1f}"),
            pack("aml_screenings", 1, "n", "s", "{}").replace(
                "\u{1f}1\u{1f}1\u{1f}1\u{1f}",
                &format!("\u{1f}1\u{1f}1\u{1f}{}\u{1f}", usize::MAX),
            ),
            pack("aml_screenings", 1, "n", "s", "{not json"),
            format!("{good}\u{1e}"),
        ] {
            assert!(items_packed(Some(&bad), &SessionKey::Clear).is_err(), "{bad:?}");
        }
    }
}
