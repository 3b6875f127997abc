//! The session list's filter: which sessions a page of `GET /v3/sessions/` holds.

use super::*;

/// Which of the application's sessions a page of the list is drawn from.
pub(super) fn list_condition(
    backend: DatabaseBackend, application_id: ApplicationId, filter: &SessionFilter,
) -> Cond {
    let mut all = Cond::all()
        .add(Expr::col(Sessions::ApplicationId).eq(application_id.as_uuid()))
        .add(Expr::col(Sessions::Kind).is_in(filter.kinds.iter().map(|k| k.as_str())));
    match filter.imported {
        Some(true) => all = all.add(Expr::col(Sessions::SharedFromSession).is_not_null()),
        Some(false) => all = all.add(Expr::col(Sessions::SharedFromSession).is_null()),
        None => {}
    }
    if !filter.statuses.is_empty() {
        all =
            all.add(Expr::col(Sessions::Status).is_in(filter.statuses.iter().map(|s| s.as_str())));
    }
    if let Some(vendor_data) = &filter.vendor_data {
        let entity = Query::select()
            .column(Entities::Id)
            .from(Entities::Table)
            .and_where(Expr::col(Entities::ApplicationId).eq(application_id.as_uuid()))
            .and_where(Expr::col(Entities::VendorDataKey).eq(vendor_data.key()))
            .to_owned();
        all = all.add(Expr::col(Sessions::EntityId).in_subquery(entity));
    }
    if let Some(assignee) = filter.assignee {
        let mut assigned = Query::select()
            .column(crate::schema::Assignments::SessionId)
            .from(crate::schema::Assignments::Table)
            .to_owned();
        all = match assignee {
            Some(reviewer) => {
                assigned.and_where(
                    Expr::col(crate::schema::Assignments::ReviewerId).eq(reviewer.as_uuid()),
                );
                all.add(Expr::col(Sessions::Id).in_subquery(assigned))
            }
            None => all.add(Expr::col(Sessions::Id).not_in_subquery(assigned)),
        };
    }
    if let Some(workflow) = filter.workflow_id {
        all = all.add(Expr::col(Sessions::WorkflowId).eq(workflow.as_uuid()));
    }
    if let Some(workflows) = &filter.workflows {
        all = all.add(Expr::col(Sessions::WorkflowId).is_in(workflows.iter().map(|w| w.as_uuid())));
    }
    if let Some(from) = filter.created_from {
        all = all.add(Expr::col(Sessions::CreatedAt).gte(from));
    }
    if let Some(before) = filter.created_before {
        all = all.add(Expr::col(Sessions::CreatedAt).lt(before));
    }
    // A JSON member of a block item: its path is the code's, never the caller's.
    let field = |path: &[&str]| Expr::cust(json_field(backend, "b.item", path));
    let in_block = |block: FeatureBlock, condition: Expr| {
        let items = Alias::new("b");
        Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from_as(Alias::new(block.v3_key()), items.clone())
                .and_where(
                    Expr::col((items, BlockItems::SessionId))
                        .equals((Sessions::Table, Sessions::Id)),
                )
                .and_where(condition)
                .to_owned(),
        )
    };
    if let Some(country) = &filter.country {
        let upper = |path: &[&str]| Func::upper(field(path)).eq(country.as_str());
        all = all.add(
            Cond::any()
                .add(in_block(FeatureBlock::IdVerifications, upper(&["issuing_state"])))
                .add(in_block(FeatureBlock::RegistryChecks, upper(&["company", "country_code"]))),
        );
    }
    if let Some(search) = &filter.search {
        let pattern = crate::sql::like_pattern(search);
        let like = |expression: Expr| {
            Func::lower(expression).like(LikeExpr::new(pattern.as_str()).escape('\\'))
        };
        all = all.add(
            Cond::any()
                .add(like(Expr::col(Sessions::VendorData)))
                .add(
                    Expr::col(Sessions::SessionNumber)
                        .cast_as(Alias::new("TEXT"))
                        .eq(search.as_str()),
                )
                .add(in_block(FeatureBlock::IdVerifications, like(field(&["full_name"]))))
                .add(in_block(
                    FeatureBlock::RegistryChecks,
                    like(field(&["company", "company_name"])),
                )),
        );
    }
    all
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
