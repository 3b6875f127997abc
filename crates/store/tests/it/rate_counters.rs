//! Rate-limit counters: one count per bucket and window, atomic under concurrent requests, and
//! past windows deleted.

use crate::support::{TestStore, on_both_backends};

on_both_backends!(requests_are_counted_per_bucket_and_window,);

async fn requests_are_counted_per_bucket_and_window(db: TestStore) {
    let db = std::sync::Arc::new(db);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let db = db.clone();
        tasks.spawn(async move { db.count_request("read:abc", 600).await.unwrap() });
    }
    let mut counts = tasks.join_all().await;
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<u64>>(), "each count once");
    assert_eq!(db.count_request("write:abc", 600).await.unwrap(), 1);
    assert_eq!(db.count_request("read:abc", 660).await.unwrap(), 1);
    assert_eq!(db.prune_request_counts(660).await.unwrap(), 2);
    assert_eq!(db.count("rate_limit_counters").await, 1);
    assert_eq!(db.count_request("read:abc", 660).await.unwrap(), 2);
}
