//! Reading a session's recorded blocks and reviews, one statement each.

use super::*;

/// Items from which a read decodes them on the blocking pool.
const DECODE_OFF_WORKER_ROWS: usize = 256;

/// The recorded blocks of a session, read in one statement and opened with its data key.
pub(crate) async fn read_blocks<C: ConnectionTrait>(
    db: &C, id: SessionId, recorded: &[FeatureBlock], key: &SessionKey,
) -> Result<Vec<(FeatureBlock, Vec<FeatureItem>)>, RepoError> {
    if recorded.is_empty() {
        return Ok(Vec::new());
    }
    // One SELECT per recorded block, each naming its table in a `block` column (a literal:
    // the keys are the code's own), joined by UNION ALL.
    let select_block = |block: &FeatureBlock| {
        Query::select()
            .expr_as(Expr::cust(format!("'{}'", block.v3_key())), Alias::new("block"))
            .column(BlockItems::Position)
            .column(BlockItems::NodeId)
            .expr_as(Expr::col(BlockItems::Status), Alias::new("item_status"))
            .column(BlockItems::Item)
            .from(Alias::new(block.v3_key()))
            .and_where(Expr::col(BlockItems::SessionId).eq(id.as_uuid()))
            .to_owned()
    };
    let mut blocks = recorded.iter();
    let Some(first) = blocks.next() else {
        return Ok(Vec::new());
    };
    let select = select_block(first)
        .unions(blocks.map(|block| (UnionType::All, select_block(block))))
        .to_owned();
    let rows = fetch_all(db, &select).await?;
    let large = rows.len() >= DECODE_OFF_WORKER_ROWS;
    let recorded = recorded.to_vec();
    let key = key.clone();
    let decode = move || {
        let items = rows.iter().map(|row| rows::item(row, &key)).collect::<Result<_, _>>()?;
        Ok(rows::blocks(&recorded, items))
    };
    // Decoding checks every item's JSON: many rows are decoded off the async worker, which
    // keeps answering other requests meanwhile.
    if large {
        return tokio::task::spawn_blocking(decode)
            .await
            .map_err(|_| RepoError::Internal("decoding the items failed".into()))?;
    }
    decode()
}

pub(super) async fn read_reviews<C: ConnectionTrait>(
    db: &C, id: SessionId, key: &SessionKey,
) -> Result<Vec<Review>, RepoError> {
    let select = Query::select()
        .expr_as(Expr::col(SessionLogs::Id), Alias::new("log_id"))
        .expr_as(Expr::col(SessionLogs::Kind), Alias::new("log_kind"))
        .column(SessionLogs::Actor)
        .column(SessionLogs::NewStatus)
        .column(SessionLogs::Comment)
        .expr_as(Expr::col(SessionLogs::CreatedAt), Alias::new("logged_at"))
        .from(SessionLogs::Table)
        .and_where(Expr::col(SessionLogs::SessionId).eq(id.as_uuid()))
        .and_where(Expr::col(SessionLogs::Kind).eq(LogKind::Review.as_str()))
        .order_by(SessionLogs::Id, Order::Asc)
        .to_owned();
    let rows = fetch_all(db, &select).await?;
    rows.iter()
        .filter_map(|row| rows::review(row, key).transpose())
        .map(|review| review.map(|(_, review)| review))
        .collect()
}
