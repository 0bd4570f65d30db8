//! The store's one error type. Messages name the file, run or event concerned
//! and say what went wrong in terms a user can act on.

use std::path::PathBuf;
use std::sync::Arc;

use crate::Ticket;

/// Everything that can go wrong in the store.
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    #[error("the data directory {} is not writable: {source}", dir.display())]
    DirNotWritable {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not open the store at {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },

    #[error("the store at {} was written by a newer Sandbar (schema {found} > {supported}); upgrade Sandbar to read it", path.display())]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error("could not bring the store at {} to schema {version}: {source}", path.display())]
    Migration {
        path: PathBuf,
        version: i64,
        #[source]
        source: sqlx::Error,
    },

    #[error("the store failed while {context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },

    #[error("the store failed while {context}: {source}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },

    #[error("the store's {} thread could not start: {source}", "writer")]
    Thread {
        #[source]
        source: std::io::Error,
    },

    #[error("a run with id {id:?} already exists")]
    DuplicateRun { id: String },

    #[error("no run with id {id:?}")]
    UnknownRun { id: String },

    #[error("no tenant with id {tenant:?}; create it with Store::ensure_tenant first")]
    UnknownTenant { tenant: String },

    #[error("{prefix:?} matches several runs ({}); give more characters", matches.join(", "))]
    AmbiguousRun {
        prefix: String,
        /// The first few matching ids, in id order.
        matches: Vec<String>,
    },

    /// A caller-assigned `(run_id, seq)` was used twice: a bug in the caller's
    /// per-run counter. The other events of the batch are written.
    #[error(
        "event {seq} of run {run_id:?} was appended twice; the second one was not written (each run's seq must be unique)"
    )]
    DuplicateEvent { run_id: String, seq: u64 },

    #[error("event {seq} of run {run_id:?} was not written: {reason}")]
    EventRejected {
        run_id: String,
        seq: u64,
        reason: String,
    },

    /// Token ids and hashes are unique; `field` says which was taken.
    #[error("token {id:?} was not stored: a token with the same {field} already exists")]
    DuplicateToken { id: String, field: &'static str },

    #[error("an approval with id {id:?} already exists")]
    DuplicateApproval { id: String },

    #[error("no approval with id {id:?}")]
    UnknownApproval { id: String },

    #[error("invalid {what}: {reason}")]
    InvalidInput { what: &'static str, reason: String },

    /// One event's write failed; `cause` is shared by every event of the
    /// failed batch.
    #[error("event #{} was not written: {cause}", ticket.0)]
    EventNotWritten {
        ticket: Ticket,
        #[source]
        cause: Arc<StoreError>,
    },

    #[error("{count} of the events pending at this flush were not written; the first: {first}")]
    EventsNotWritten {
        count: u64,
        #[source]
        first: Arc<StoreError>,
    },

    /// So many writes failed that the outcome of this old one was forgotten;
    /// it is reported as an error because durability is never assumed.
    #[error("the outcome of event #{} is no longer known (too many later write failures)", ticket.0)]
    OutcomeForgotten { ticket: Ticket },

    #[error("ticket #{} was not issued by this store", ticket.0)]
    UnknownTicket { ticket: Ticket },

    #[error("the store holds an invalid {what} {value:?}")]
    Corrupt { what: &'static str, value: String },

    #[error("the store is closed")]
    Closed,

    #[error("could not read the journal segment {}: {reason}", path.display())]
    Journal { path: PathBuf, reason: String },

    /// One failure shared by several requests handled together (the token
    /// spends of one transaction).
    #[error("{0}")]
    Shared(Arc<StoreError>),
}

impl StoreError {
    /// Wraps a database error with what the store was doing, except for a
    /// closed pool, which means the store itself was closed.
    pub(crate) fn sqlite(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite { context, source }
    }

    pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| match source {
            sqlx::Error::PoolClosed => StoreError::Closed,
            source => StoreError::Database { context, source },
        }
    }
}
