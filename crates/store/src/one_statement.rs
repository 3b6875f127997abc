//! The clone on PostgreSQL: one statement, and so its own transaction.
//!
//! Data-modifying `WITH` lets the receiver's entity, the application's counter, the session row,
//! every recorded block, the log rows and the token's redemption be written by a single
//! statement: one round trip instead of one per table, all or nothing. Each part runs only when
//! the source is still there, so a vanished source writes nothing at all.
//!
//! The clone's status stays the domain's decision: the plan is asked for the status under every
//! possible entity status, and the statement only picks the answer that matches the entity row it
//! reads (or creates).
//!
//! Parts are chained through the rows they return, which fixes the order of the row locks:
//! the receiver's entity, then the application's counter row, so that two imports into one
//! application cannot deadlock. Foreign keys are checked at the end of the statement, when every
//! row is there.

use handoff_domain::{ClonePlan, EntityStatus};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Value};

use crate::rows;
use crate::sql::stmt;

/// What the statement did.
pub(crate) enum Written {
    /// The clone and its rows.
    Clone,
    /// Nothing: the source is gone.
    Nothing,
}

/// Runs the clone of `plan` as one statement.
pub(crate) async fn clone(db: &DatabaseConnection, plan: &ClonePlan) -> Result<Written, DbErr> {
    let (sql, values) = statement(plan);
    let row = db
        .query_one_raw(stmt(db.get_database_backend(), &sql, values))
        .await?;
    let cloned = match row {
        Some(row) => row.try_get::<i64>("", "cloned")?,
        None => 0,
    };
    Ok(if cloned == 1 {
        Written::Clone
    } else {
        Written::Nothing
    })
}

/// Numbered parameters, each bound once however often the SQL uses it.
struct Params(Vec<Value>);

impl Params {
    fn bind(&mut self, value: impl Into<Value>) -> String {
        self.0.push(value.into());
        format!("${}", self.0.len())
    }
}

/// The SQL and its parameters.
fn statement(plan: &ClonePlan) -> (String, Vec<Value>) {
    let mut p = Params(Vec::with_capacity(32));
    let source = p.bind(plan.source_session_id.as_uuid());
    let source_application = p.bind(plan.source_application_id.as_uuid());
    let kind = p.bind(plan.kind.as_str());
    let application = p.bind(plan.application_id.as_uuid());
    let clone = p.bind(plan.clone_id.as_uuid());
    let created_at = p.bind(plan.created_at);
    let vendor_data = p.bind(plan.vendor_data.as_ref().map(|v| v.as_str().to_owned()));

    // The source row, looked up by its key alone (whatever the planner's statistics say), then
    // checked against the token's application and kind.
    let mut parts = vec![
        format!(
            "row AS MATERIALIZED (SELECT id, application_id, kind, features, contact_details, \
             expected_details FROM sessions WHERE id = {source})"
        ),
        format!(
            "src AS (SELECT * FROM row WHERE application_id = {source_application} AND kind = {kind})"
        ),
    ];

    // The receiver's entity for the clone's vendor_data, created or read (and locked).
    let entity_status = match &plan.vendor_data {
        Some(v) => {
            let id = p.bind(uuid::Uuid::new_v4());
            let key = p.bind(v.key());
            let active = p.bind(EntityStatus::Active.as_str());
            parts.push(format!(
                "entity AS (INSERT INTO entities \
                 (id, application_id, kind, vendor_data, vendor_data_key, status, created_at) \
                 SELECT {id}, {application}, {kind}, {vendor_data}, {key}, {active}, {created_at} FROM src \
                 ON CONFLICT (application_id, kind, vendor_data_key) DO UPDATE SET status = entities.status \
                 RETURNING id, status)"
            ));
            "(SELECT status FROM entity)"
        }
        None => {
            parts.push("entity AS (SELECT NULL::uuid AS id WHERE false)".to_owned());
            "NULL"
        }
    };

    // The clone's status: the plan's answer for the entity status read above.
    let mut decided = String::from("CASE");
    for status in EntityStatus::ALL {
        let when = p.bind(status.as_str());
        let then = p.bind(plan.status(Some(status)).as_str());
        decided.push_str(&format!(" WHEN {entity_status} = {when} THEN {then}"));
    }
    let without_entity = p.bind(plan.status(None).as_str());
    decided.push_str(&format!(" ELSE {without_entity} END"));
    parts.push(format!(
        "decided AS (SELECT {decided} AS status WHERE EXISTS (SELECT 1 FROM src))"
    ));

    // The application's counter, after the entity (its condition reads the entity's row).
    parts.push(format!(
        "counter AS (UPDATE applications SET last_session_number = last_session_number + 1 \
         WHERE id = {application} AND EXISTS (SELECT 1 FROM decided) \
         RETURNING last_session_number)"
    ));

    // The session row, from the source's. The source application's own metadata and callback
    // stay behind; what the verification was about (contact and expected details) comes along.
    let session_token = p.bind(plan.session_token.clone());
    let session_url = p.bind(plan.session_url.clone());
    let workflow = p.bind(plan.workflow_id.as_uuid());
    let recorded = p.bind(rows::recorded_blocks_text(&plan.blocks));
    let expires_at = p.bind(plan.expires_at);
    parts.push(format!(
        "clone AS (INSERT INTO sessions (id, application_id, kind, session_number, session_token, \
         session_url, status, workflow_id, features, vendor_data, entity_id, metadata, callback, \
         contact_details, expected_details, shared_from_session, recorded_blocks, created_at, \
         expires_at) \
         SELECT {clone}, {application}, src.kind, counter.last_session_number, {session_token}, \
         {session_url}, decided.status, {workflow}, src.features, {vendor_data}, \
         (SELECT id FROM entity), NULL, NULL, src.contact_details, src.expected_details, src.id, \
         {recorded}, {created_at}, {expires_at} \
         FROM src, counter, decided RETURNING id)"
    ));

    // Only the blocks the source recorded, each with one INSERT … SELECT.
    for block in &plan.blocks {
        let name = format!("copy_{}", block.v3_key());
        parts.push(format!(
            "{name} AS (INSERT INTO {0} (session_id, position, node_id, status, item) \
             SELECT {clone}, position, node_id, status, item FROM {0} \
             WHERE session_id = {source} AND EXISTS (SELECT 1 FROM clone))",
            block.v3_key()
        ));
    }

    // The source's log rows in their order, then the row that records the import.
    let log = &plan.log;
    let log_kind = p.bind(log.kind.as_str());
    let actor = p.bind(log.actor.clone());
    let action = p.bind(log.action.clone());
    let old_status = p.bind(log.old_status.map(|s| s.as_str().to_owned()));
    let comment = p.bind(log.comment.clone());
    let details = p.bind(log.details.as_ref().map(ToString::to_string));
    let logged_at = p.bind(log.created_at);
    parts.push(format!(
        "logs AS (INSERT INTO session_logs \
         (session_id, kind, actor, action, old_status, new_status, comment, details, created_at) \
         SELECT {clone}, kind, actor, action, old_status, new_status, comment, details, created_at \
         FROM (SELECT 0 AS part, id, kind, actor, action, old_status, new_status, comment, details, \
         created_at FROM session_logs WHERE session_id = {source} AND EXISTS (SELECT 1 FROM clone) \
         UNION ALL SELECT 1, 0, {log_kind}, {actor}, {action}, {old_status}, decided.status, \
         {comment}, {details}, {logged_at} FROM decided, clone) AS rows ORDER BY part, id)"
    ));

    if let Some(jti) = &plan.jti {
        let jti = p.bind(jti.clone());
        parts.push(format!(
            "redeemed AS (UPDATE share_tokens SET redeemed_at = {created_at}, \
             redeemed_session_id = {clone} \
             WHERE jti = {jti} AND redeemed_at IS NULL AND EXISTS (SELECT 1 FROM clone))"
        ));
    }

    #[cfg(feature = "test-support")]
    if crate::testing::take_any_import_fault(plan.application_id) {
        // A failure inside the statement, after the session row: a NOT NULL violation.
        parts.push(format!(
            "fault AS (INSERT INTO session_logs (session_id, kind, actor, action, created_at) \
             SELECT {clone}, NULL, 'fault', 'fault', {created_at} FROM clone)"
        ));
    }

    let sql = format!(
        "WITH {} SELECT COUNT(*) AS cloned FROM clone",
        parts.join(", ")
    );
    (sql, p.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use handoff_domain::{
        ApplicationId, FeatureBlock, LogEntry, LogKind, SessionId, SessionKind, SessionStatus,
        VendorData, WorkflowId,
    };

    fn plan(vendor_data: Option<&str>, jti: Option<&str>) -> ClonePlan {
        let now = Utc::now();
        ClonePlan {
            source_application_id: ApplicationId::from_uuid(uuid::Uuid::new_v4()),
            source_session_id: SessionId::from_uuid(uuid::Uuid::new_v4()),
            kind: SessionKind::User,
            blocks: vec![FeatureBlock::IdVerifications, FeatureBlock::AmlScreenings],
            application_id: ApplicationId::from_uuid(uuid::Uuid::new_v4()),
            clone_id: SessionId::from_uuid(uuid::Uuid::new_v4()),
            workflow_id: WorkflowId::from_uuid(uuid::Uuid::new_v4()),
            session_token: "t".into(),
            session_url: "u".into(),
            source_status: SessionStatus::Approved,
            trust_review: true,
            vendor_data: vendor_data.map(|v| VendorData::parse(v).unwrap()),
            created_at: now,
            expires_at: now,
            log: LogEntry {
                kind: LogKind::Event,
                actor: "a".into(),
                action: "imported".into(),
                old_status: None,
                new_status: None,
                comment: None,
                details: None,
                created_at: now,
            },
            jti: jti.map(str::to_owned),
        }
    }

    /// Every `$n` the SQL names is bound, and every bound value is used.
    fn assert_parameters_match(sql: &str, values: usize) {
        let mut used = std::collections::BTreeSet::new();
        let bytes = sql.as_bytes();
        for (i, _) in sql.match_indices('$') {
            let digits: String = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .map(|b| *b as char)
                .collect();
            used.insert(digits.parse::<usize>().unwrap());
        }
        assert_eq!(used, (1..=values).collect(), "{sql}");
    }

    #[test]
    fn binds_what_it_uses_with_and_without_entity_and_token() {
        for (vendor_data, jti) in [(Some("p-1"), Some("j")), (None, None), (Some("p"), None)] {
            let (sql, values) = statement(&plan(vendor_data, jti));
            assert_parameters_match(&sql, values.len());
            assert_eq!(sql.contains("INSERT INTO entities"), vendor_data.is_some());
            assert_eq!(sql.contains("UPDATE share_tokens"), jti.is_some());
            assert_eq!(
                sql.matches("INSERT INTO id_verifications").count()
                    + sql.matches("INSERT INTO aml_screenings").count(),
                2,
                "one copy per recorded block"
            );
            assert!(
                sql.find("counter AS").unwrap() > sql.find("decided AS").unwrap()
                    && sql.find("clone AS").unwrap() > sql.find("counter AS").unwrap(),
                "the counter row is taken after the entity's"
            );
        }
    }
}
