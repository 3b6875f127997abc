//! SQLite's imports that wait for the one writer together are written together: whichever
//! writer's turn comes takes every import queued by then (up to [`GROUP_MOST`]) and writes them
//! in one transaction ([`write_group`]), in waves of imports that touch no row of each
//! other's checks: a wave's checks are one query, its clones one command, and on the writer's
//! own connection `BEGIN` goes with the first query and `COMMIT` with the last command. A group
//! shares its `BEGIN`, its `COMMIT`, the pages both write and its commands' crossings to sqlx's
//! worker thread; alone, an import is a group of one: two commands.
//!
//! The group is written by a task of its own, so that a caller that goes away (a client that
//! hangs up) takes no one else's import with it. Each caller decodes its answer itself, after
//! the commit, outside the writer's turn.

use std::collections::HashSet;
use std::sync::Mutex;

use handoff_domain::{ImportAttempt, RepoError};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::sqlite::{Decision, Written, decide};
use super::{context_from_row, context_query, fetch, read_context};
use crate::Store;
use crate::rows::get;
use crate::sql::{Batch, Failure, commit, repo_error};

/// The most imports one transaction writes: a group holds the writer for every other write of
/// the process (about half a millisecond an import).
const GROUP_MOST: usize = 16;

/// An import queued for the writer, and where its outcome goes.
struct Queued {
    attempt: ImportAttempt,
    written: oneshot::Sender<Result<Written, Failure>>,
}

/// The imports waiting for the writer, and whether a task is writing them.
#[derive(Default)]
struct Queue {
    waiting: Vec<Queued>,
    writing: bool,
}

/// The imports of one store waiting to be written together.
#[derive(Default)]
pub(crate) struct ImportGroups {
    queue: Mutex<Queue>,
}

impl std::fmt::Debug for ImportGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportGroups").finish_non_exhaustive()
    }
}

impl ImportGroups {
    /// Queues `attempt` and waits until a group with it has committed or failed.
    pub(super) async fn write(
        &self, store: &Store, attempt: ImportAttempt,
    ) -> Result<Written, Failure> {
        let (written, outcome) = oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.waiting.push(Queued { attempt, written });
            !std::mem::replace(&mut queue.writing, true)
        };
        if start {
            tokio::spawn(write_queued(store.clone()));
        }
        outcome.await.unwrap_or_else(|_| {
            Err(Failure::Repo(RepoError::Internal("the import's writer stopped".into())))
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether any import waits; when none does, the queue is no longer being written.
    fn any_waiting(&self) -> bool {
        let mut queue = self.lock();
        queue.writing = !queue.waiting.is_empty();
        queue.writing
    }

    /// The next group, in the order queued (only the writing task takes them).
    fn next_group(&self) -> Vec<Queued> {
        let mut queue = self.lock();
        let most = queue.waiting.len().min(GROUP_MOST);
        queue.waiting.drain(..most).collect()
    }
}

/// Writes the queued imports, a group per writer's turn, until none waits.
async fn write_queued(store: Store) {
    let groups = store.import_groups.clone();
    // Should this task end early (a panic), those still queued fail rather than wait forever.
    let _stopped = Stopped(&groups);
    while groups.any_waiting() {
        let turn = store.write_turn().await;
        // Taken once the turn has come, with those queued while it waited.
        let group = groups.next_group();
        let (attempts, senders): (Vec<_>, Vec<_>) =
            group.into_iter().map(|q| (q.attempt, q.written)).unzip();
        let outcomes = write_group(&store, &attempts).await;
        drop(turn);
        for (sender, outcome) in senders.into_iter().zip(outcomes) {
            // Its caller may have gone; the import stands.
            let _ = sender.send(outcome);
        }
        // The callers just answered run first, on this thread: their next imports join the
        // next group rather than wait behind a group of one.
        tokio::task::yield_now().await;
    }
}

/// Ends the queue's writing when the writing task unwinds.
struct Stopped<'a>(&'a ImportGroups);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queue = self.0.lock();
            queue.waiting.clear();
            queue.writing = false;
        }
    }
}

/// Writes `attempts` in one transaction, in their order, each deciding its checks after the
/// writes of those before it: their outcomes, in the same order. None is written unless the
/// transaction commits. When a wave's command fails part way, the group is written again one
/// by one ([`write_one_by_one`]), which leaves out the clone that fails.
async fn write_group(store: &Store, attempts: &[ImportAttempt]) -> Vec<Result<Written, Failure>> {
    let written = match store.writer.as_ref() {
        // The writer's own connection (one, behind the writer's turn): the transaction's
        // `BEGIN` and `COMMIT` go with its first and last commands.
        Some(writer) => {
            let written = write_in_waves(store, writer, attempts, true).await;
            if written.is_none()
                && let Err(error) = writer.execute_unprepared("ROLLBACK").await
            {
                // None is open when `BEGIN` or `COMMIT` itself failed.
                tracing::debug!(%error, "an import group's transaction did not roll back");
            }
            written
        }
        None => match store.begin_write().await {
            Ok(txn) => match write_in_waves(store, &txn, attempts, false).await {
                Some(written) => commit(txn).await.is_ok().then_some(written),
                None => {
                    if txn.rollback().await.is_err() {
                        tracing::warn!("an import group's transaction did not roll back");
                    }
                    None
                }
            },
            Err(_) => None,
        },
    };
    match written {
        Some(written) => written,
        None => write_one_by_one(store, attempts).await,
    }
}

/// The group in waves, one query and one command each, on `db`: their outcomes, `None` when a
/// query or a command failed (the transaction to be rolled back). With `bracket` the first
/// query begins the transaction and the last command commits it. A wave is the longest run
/// of imports whose checks read no row that another's clone of the wave writes: the source's
/// clone in the receiver, the token, the idempotency key and the receiver's entity of the
/// `vendor_data` named, known before the query ([`wave_length`]); the entity of a source's
/// `vendor_data`, known after it (a clone whose entity another of the wave writes goes into
/// the next wave, to read it).
async fn write_in_waves<C: ConnectionTrait>(
    store: &Store, db: &C, attempts: &[ImportAttempt], bracket: bool,
) -> Option<Vec<Result<Written, Failure>>> {
    let mut outcomes = Vec::with_capacity(attempts.len());
    let mut rest = attempts;
    let mut begin = bracket.then_some("BEGIN IMMEDIATE");
    while !rest.is_empty() {
        let wave = &rest[..wave_length(rest)];
        let mut reads = Batch::default();
        reads.push_opt(begin.take());
        for attempt in wave {
            let (sql, values) = context_query(DatabaseBackend::Sqlite, attempt, true);
            reads.push(sql, values);
        }
        let (sql, values) = reads.command(DatabaseBackend::Sqlite);
        let rows = fetch(db, &sql, values).await.ok()?;
        if rows.len() != wave.len() {
            return None;
        }
        let (mut clones, mut written, mut entities) = (Batch::default(), Vec::new(), Vec::new());
        let mut decided = 0;
        for (attempt, row) in wave.iter().zip(&rows) {
            let read = context_from_row(store, db, row, attempt, true).await;
            let entity = read.as_ref().ok().and_then(|(context, ..)| {
                let source = context.source.as_ref()?;
                Some((
                    attempt.application_id,
                    source.kind,
                    attempt.clone_vendor_data(source)?.key(),
                ))
            });
            if entity.as_ref().is_some_and(|entity| entities.contains(entity)) {
                break;
            }
            decided += 1;
            match decide(store, db, attempt, read).await {
                Decision::Outcome(outcome) => outcomes.push(Some(outcome)),
                Decision::Clone { command, answer, key } => {
                    clones.append(command);
                    written.push((outcomes.len(), attempt.clone_id.as_uuid(), answer, key));
                    outcomes.push(None);
                    entities.extend(entity);
                }
            }
        }
        rest = &rest[decided..];
        let commit = (bracket && rest.is_empty()).then_some("COMMIT");
        if written.is_empty() {
            if let Some(commit) = commit {
                db.execute_unprepared(commit).await.ok()?;
            }
            continue;
        }
        // Committed only when every statement before held: a clone whose session row was not
        // written fails at its log row's foreign key first.
        clones.push_opt(commit);
        let (sql, values) = clones.command(DatabaseBackend::Sqlite);
        let mut rows = fetch(db, &sql, values).await.ok()?;
        for (index, clone_id, answer, key) in written {
            let at = rows.iter().position(|row| get::<Uuid>(row, "id").ok() == Some(clone_id))?;
            let row = rows.swap_remove(at);
            outcomes[index] = Some(Ok(Written::Imported { row, answer, key }));
        }
    }
    outcomes.into_iter().collect()
}

/// How many of `attempts`, from the first, touch none of the rows another of them writes
/// that their own checks read, as far as the attempts say: the source's clone in the receiver,
/// the token, the entity of the `vendor_data` named, the idempotency key. At least one.
fn wave_length(attempts: &[ImportAttempt]) -> usize {
    let mut touched = HashSet::new();
    for (i, attempt) in attempts.iter().enumerate() {
        let receiver = attempt.application_id;
        let rows = [
            Some(format!("clone {receiver} {}", attempt.claims.session_id)),
            attempt.claims.jti.as_ref().map(|jti| format!("token {jti}")),
            attempt.vendor_data.as_ref().map(|v| format!("entity {receiver} {}", v.key())),
            attempt.idempotency.as_ref().map(|c| format!("key {receiver} {}", c.key.as_str())),
        ];
        for row in rows.into_iter().flatten() {
            if !touched.insert(row) {
                return i.max(1);
            }
        }
    }
    attempts.len()
}

/// The group one import after another, in one transaction. A clone that fails part way rolls
/// the transaction back, fails alone, and the others are written again without it (SQLite's
/// savepoints would copy every page a clone writes, to undo it alone).
async fn write_one_by_one(
    store: &Store, attempts: &[ImportAttempt],
) -> Vec<Result<Written, Failure>> {
    let mut outcomes: Vec<Option<Result<Written, Failure>>> =
        attempts.iter().map(|_| None).collect();
    let mut undone = vec![false; attempts.len()];
    'group: loop {
        let txn = match store.begin_write().await {
            Ok(txn) => txn,
            Err(error) => return failed(outcomes, &error),
        };
        for (i, attempt) in attempts.iter().enumerate().filter(|(i, _)| !undone[*i]) {
            match write_one(store, &txn, attempt).await {
                Step::Stands(outcome) => outcomes[i] = Some(outcome),
                Step::Undo(outcome) => {
                    outcomes[i] = Some(outcome);
                    undone[i] = true;
                    if let Err(error) = txn.rollback().await {
                        return failed(outcomes, &repo_error(error));
                    }
                    continue 'group;
                }
            }
        }
        return match commit(txn).await {
            Ok(()) => {
                outcomes.into_iter().map(|o| o.unwrap_or_else(|| Ok(Written::Refused))).collect()
            }
            Err(error) => failed(outcomes, &error),
        };
    }
}

/// The outcomes of a group whose transaction failed: every clone it wrote fails with `error`
/// (of the same kind, unavailable or not, with the same message); refusals and failures stand.
fn failed(
    outcomes: Vec<Option<Result<Written, Failure>>>, error: &RepoError,
) -> Vec<Result<Written, Failure>> {
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Some(Ok(Written::Imported { .. })) | None => {
                let message = error.to_string().into();
                Err(Failure::Repo(match error {
                    RepoError::Unavailable(_) => RepoError::Unavailable(message),
                    _ => RepoError::Internal(message),
                }))
            }
            Some(other) => other,
        })
        .collect()
}

/// One import of a group, and whether its transaction must be undone.
enum Step {
    /// Its outcome; what it wrote, if anything, stands.
    Stands(Result<Written, Failure>),
    /// Its outcome; it wrote part of a clone, which the transaction's rollback undoes.
    Undo(Result<Written, Failure>),
}

/// One import, inside the group's transaction: its checks' query, then its clone's command.
async fn write_one(store: &Store, txn: &DatabaseTransaction, attempt: &ImportAttempt) -> Step {
    let read = read_context(store, txn, attempt, true).await;
    let (command, answer, key) = match decide(store, txn, attempt, read).await {
        Decision::Outcome(outcome) => return Step::Stands(outcome),
        Decision::Clone { command, answer, key } => (command, answer, key),
    };
    let (sql, values) = command.command(DatabaseBackend::Sqlite);
    match fetch(txn, &sql, values).await.map(|rows| rows.into_iter().next()) {
        Ok(Some(row)) => Step::Stands(Ok(Written::Imported { row, answer, key })),
        Ok(None) => Step::Undo(Ok(Written::Refused)),
        Err(failure) => Step::Undo(Err(failure)),
    }
}
