//! The session list's filter: which sessions a page of `GET /v3/sessions/` holds.

use super::*;

/// The `WHERE` of a session list, and its values (`?` placeholders).
pub(super) fn list_conditions(
    backend: DatabaseBackend,
    application_id: ApplicationId,
    filter: &SessionFilter,
) -> (String, Vec<Value>) {
    let marks = |n: usize| vec!["?"; n].join(", ");
    let mut conditions = vec![
        "application_id = ?".to_owned(),
        format!("kind IN ({})", marks(filter.kinds.len())),
    ];
    let mut values: Vec<Value> = vec![application_id.as_uuid().into()];
    values.extend(filter.kinds.iter().map(|k| Value::from(k.as_str())));
    match filter.imported {
        Some(true) => conditions.push("shared_from_session IS NOT NULL".to_owned()),
        Some(false) => conditions.push("shared_from_session IS NULL".to_owned()),
        None => {}
    }
    if !filter.statuses.is_empty() {
        conditions.push(format!("status IN ({})", marks(filter.statuses.len())));
        values.extend(filter.statuses.iter().map(|s| Value::from(s.as_str())));
    }
    if let Some(vendor_data) = &filter.vendor_data {
        conditions.push(
            "entity_id IN (SELECT id FROM entities WHERE application_id = ? \
             AND vendor_data_key = ?)"
                .to_owned(),
        );
        values.push(application_id.as_uuid().into());
        values.push(vendor_data.key().into());
    }
    if let Some(workflow) = filter.workflow_id {
        conditions.push("workflow_id = ?".to_owned());
        values.push(workflow.as_uuid().into());
    }
    if let Some(from) = filter.created_from {
        conditions.push("created_at >= ?".to_owned());
        values.push(from.into());
    }
    if let Some(before) = filter.created_before {
        conditions.push("created_at < ?".to_owned());
        values.push(before.into());
    }
    let field = |path: &[&str]| json_field(backend, "b.item", path);
    let in_block = |block: FeatureBlock, condition: String| {
        format!(
            "EXISTS (SELECT 1 FROM {} b WHERE b.session_id = sessions.id AND {condition})",
            block.v3_key()
        )
    };
    if let Some(country) = &filter.country {
        conditions.push(format!(
            "({} OR {})",
            in_block(
                FeatureBlock::IdVerifications,
                format!("UPPER({}) = ?", field(&["issuing_state"]))
            ),
            in_block(
                FeatureBlock::RegistryChecks,
                format!("UPPER({}) = ?", field(&["company", "country_code"]))
            ),
        ));
        values.push(country.clone().into());
        values.push(country.clone().into());
    }
    if let Some(search) = &filter.search {
        let pattern = crate::sql::like_pattern(search);
        let like = |expression: String| format!("LOWER({expression}) LIKE ? ESCAPE '\\'");
        conditions.push(format!(
            "({} OR CAST(session_number AS TEXT) = ? OR {} OR {})",
            like("vendor_data".to_owned()),
            in_block(FeatureBlock::IdVerifications, like(field(&["full_name"]))),
            in_block(
                FeatureBlock::RegistryChecks,
                like(field(&["company", "company_name"]))
            ),
        ));
        values.push(pattern.clone().into());
        values.push(search.clone().into());
        values.push(pattern.clone().into());
        values.push(pattern.into());
    }
    (conditions.join(" AND "), values)
}

/// A text field of a JSON item column, by path.
pub(super) fn json_field(backend: DatabaseBackend, column: &str, path: &[&str]) -> String {
    match backend {
        DatabaseBackend::Postgres => {
            let (last, rest) = path.split_last().unwrap_or((&"", &[]));
            let mut expression = format!("({column}::jsonb");
            for key in rest {
                expression.push_str(&format!(" -> '{key}'"));
            }
            expression.push_str(&format!(" ->> '{last}')"));
            expression
        }
        _ => format!("json_extract({column}, '$.{}')", path.join(".")),
    }
}
