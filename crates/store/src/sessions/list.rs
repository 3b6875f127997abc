//! The session list's filter: which sessions a page of `GET /v3/sessions/` holds.

use super::*;

/// Which of the application's sessions a page of the list is drawn from.
pub(super) fn list_condition(
    store: &Store, application_id: ApplicationId, filter: &SessionFilter,
) -> Cond {
    // An erased session's data key is empty: it is listed no more.
    let not_erased = Cond::any()
        .add(Expr::col(Sessions::DataKey).is_null())
        .add(Func::cust("length").arg(Expr::col(Sessions::DataKey)).gt(0));
    let mut all = Cond::all()
        .add(Expr::col(Sessions::ApplicationId).eq(application_id.as_uuid()))
        .add(Expr::col(Sessions::Kind).is_in(filter.kinds.iter().map(|k| k.as_str())))
        .add(not_erased);
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
    if let Some(country) = &filter.country {
        all = all.add(Expr::col(Sessions::Country).eq(country.as_str()));
    }
    if let Some(search) = &filter.search {
        let pattern = crate::sql::like_pattern(search);
        let like = |expression: Expr| {
            Func::lower(expression).like(LikeExpr::new(pattern.as_str()).escape('\\'))
        };
        // A name holds every word of the search, each found whole in its blind index.
        let words = store.search_words(&handoff_domain::session::name_words(search));
        let named = (!words.is_empty()).then(|| {
            words.iter().fold(Cond::all(), |all, word| {
                all.add(Expr::col(Sessions::NameWords).like(format!("% {word} %")))
            })
        });
        let mut any = Cond::any().add(like(Expr::col(Sessions::VendorData))).add(
            Expr::col(Sessions::SessionNumber).cast_as(Alias::new("TEXT")).eq(search.as_str()),
        );
        if let Some(named) = named {
            any = any.add(named);
        }
        all = all.add(any);
    }
    all
}
