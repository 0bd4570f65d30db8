//! The writer: the write connection, and the thread that owns it.
//!
//! Events and commands wait in the [`Inbox`]. The writer thread takes all
//! that is queued, redacts every event, writes the events in batches (up to
//! `batch_max`) with multi-row `INSERT`s, commits, records any failures,
//! and only then advances the processed high-water mark that
//! `Store::durable` waits on. Run commands (create, end) travel through the
//! same queue, so they are ordered with the events around them.
//!
//! The connection and the writer's state ([`Core`]) sit behind a lock that
//! the store's handles may take too: a caller that waits for its own event
//! while the writer sleeps commits what is queued itself ([`commit_here`]),
//! on its own thread, rather than wake the writer and be woken back — two
//! thread wake-ups that cost more than the commit. Control commands,
//! checkpoints and the close stay the writer thread's.
//!
//! The writer talks to SQLite directly (rusqlite) rather than through sqlx's
//! connection, whose every statement is a round trip to a worker thread.
//! Readers still use sqlx.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};
use tokio::sync::{oneshot, watch};

use crate::model::{NewEvent, RunStatus, write_db_time};
use sandbar_redact::{SharedRedactor, SinkRedactor};

use crate::inbox::{Inbox, Work};
use crate::journal::Journal;
use crate::{StoreError, Ticket};

mod access;

/// SQLite's default bound-parameter limit since 3.32 (the bundled library is
/// newer). PostgreSQL allows 65535, so chunks sized for this fit both.
const MAX_BIND_PARAMS: usize = 32766;

/// Columns bound per event row.
const EVENT_COLUMNS: usize = 10;

/// The most rows one `INSERT` carries. Larger statements save little once a
/// statement carries a few hundred rows, and each distinct size is one more
/// prepared statement to cache.
const MAX_CHUNK_ROWS: usize = {
    let by_params = MAX_BIND_PARAMS / EVENT_COLUMNS;
    if by_params < 256 { by_params } else { 256 }
};

// A chunk must fit under the bind-parameter limit; checked at compile time.
const _: () = assert!(MAX_CHUNK_ROWS * EVENT_COLUMNS <= MAX_BIND_PARAMS);

/// Failure ranges kept for `durable` to report; past this, the oldest half is
/// forgotten and reported as `OutcomeForgotten` (never as success).
const MAX_FAILURE_RANGES: usize = 1 << 16;

/// What the writer task is asked to do.
pub(crate) enum Command {
    /// An event the writer redacts and checks itself.
    Event { ticket: u64, event: NewEvent },
    /// An event its caller has redacted already, for a run this store
    /// created (see [`prepare_known`]); `row.journaled` if it is in the
    /// journal, durable before the writer gets to it.
    Row { row: Row },
    CreateRun {
        run: PreparedRun,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    EndRun {
        run_id: String,
        status: RunStatus,
        ended_at: String,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    EnsureTenant {
        id: String,
        name: String,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Audit {
        entry: crate::model::NewAudit,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Inserts or replaces sealed secrets, all in one transaction.
    PutSecrets {
        secrets: Vec<crate::model::StoredSecret>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    RemoveSecret {
        tenant: String,
        name: String,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Stores a new access token.
    PutToken {
        token: PreparedToken,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    RevokeToken {
        tenant: String,
        id: String,
        at: String,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Checks a token and counts one call against it, in one transaction.
    SpendToken {
        id: String,
        now: chrono::DateTime<chrono::Utc>,
        reply: oneshot::Sender<Result<crate::model::Spend, StoreError>>,
    },
    /// Stores a new, pending approval, already redacted.
    RequestApproval {
        approval: crate::model::NewApproval,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Records a decision, already redacted, if the approval is still open.
    DecideApproval {
        tenant: String,
        id: String,
        decision: crate::model::ApprovalDecision,
        now: chrono::DateTime<chrono::Utc>,
        reply: oneshot::Sender<Result<crate::model::Decided, StoreError>>,
    },
    ExpireApproval {
        id: String,
        now: chrono::DateTime<chrono::Utc>,
        reply: oneshot::Sender<Result<crate::model::ApprovalStatus, StoreError>>,
    },
    Shutdown {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// A run already redacted and converted to its column values.
pub(crate) struct PreparedRun {
    pub id: String,
    pub tenant: String,
    pub scenario_name: String,
    pub scenario_hash: String,
    pub seed: String,
    pub clock_start: String,
    pub started_at: String,
    pub transport: String,
    pub labels: String,
}

/// An access token converted to its column values.
pub(crate) struct PreparedToken {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub hash: String,
    pub scenario: Option<String>,
    pub run: Option<String>,
    pub scopes: String,
    pub budget: Option<i64>,
    pub calls_used: i64,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// Which tickets failed, and why. Shared between the writer, which records,
/// and the store handles, which look up.
#[derive(Default)]
pub(crate) struct FailureLog {
    any: AtomicBool,
    inner: Mutex<FailureRanges>,
}

#[derive(Default)]
struct FailureRanges {
    /// first ticket → (last ticket, cause), for disjoint inclusive ranges.
    ranges: BTreeMap<u64, (u64, Arc<StoreError>)>,
    /// Tickets up to here may have failed without a record left to say so.
    forgotten_through: u64,
    /// Failed tickets whose failure a `durable` call has returned: a later
    /// `flush` does not report them again.
    reported: BTreeSet<u64>,
}

impl FailureLog {
    fn record(&self, first: u64, last: u64, cause: Arc<StoreError>) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.ranges.insert(first, (last, cause));
        if inner.ranges.len() > MAX_FAILURE_RANGES
            && let Some(split_at) = inner.ranges.keys().nth(MAX_FAILURE_RANGES / 2).copied()
        {
            let newer = inner.ranges.split_off(&split_at);
            let older = std::mem::replace(&mut inner.ranges, newer);
            if let Some((_, (last, _))) = older.last_key_value() {
                inner.forgotten_through = inner.forgotten_through.max(*last);
                let keep_from = inner.forgotten_through + 1;
                let kept = inner.reported.split_off(&keep_from);
                inner.reported = kept;
            }
        }
        self.any.store(true, Ordering::Release);
    }

    /// The error for `ticket`, if its write failed (or may have); a failure
    /// returned here is not reported again by [`FailureLog::failures_in`].
    pub(crate) fn lookup(&self, ticket: u64) -> Option<StoreError> {
        if ticket == 0 || !self.any.load(Ordering::Acquire) {
            return None;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, (last, cause))) = inner.ranges.range(..=ticket).next_back()
            && *last >= ticket
        {
            let cause = Arc::clone(cause);
            inner.reported.insert(ticket);
            return Some(StoreError::EventNotWritten {
                ticket: Ticket(ticket),
                cause,
            });
        }
        if ticket <= inner.forgotten_through {
            return Some(StoreError::OutcomeForgotten {
                ticket: Ticket(ticket),
            });
        }
        None
    }

    /// How many tickets in `(after, through]` failed, and the first cause
    /// (leaving out those whose failure `lookup` has returned).
    pub(crate) fn failures_in(&self, after: u64, through: u64) -> Option<StoreError> {
        if !self.any.load(Ordering::Acquire) || through <= after {
            return None;
        }
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut count = 0u64;
        let mut first = None;
        // A range starting at or before `after` may still reach into the window.
        let start = inner
            .ranges
            .range(..=after)
            .next_back()
            .map_or(after + 1, |(s, _)| *s);
        for (&lo, (hi, cause)) in inner.ranges.range(start..=through) {
            let lo = lo.max(after + 1);
            let hi = (*hi).min(through);
            if hi >= lo {
                let reported = inner.reported.range(lo..=hi).count() as u64;
                let unreported = hi - lo + 1 - reported;
                if unreported > 0 {
                    count += unreported;
                    first.get_or_insert_with(|| Arc::clone(cause));
                }
            }
        }
        if after < inner.forgotten_through {
            return Some(StoreError::OutcomeForgotten {
                ticket: Ticket(after + 1),
            });
        }
        first.map(|first| StoreError::EventsNotWritten { count, first })
    }
}

/// One event as bound to the `INSERT`: every text already redacted. A
/// failed chunk is retried row by row from the same values.
pub(crate) struct Row {
    pub ticket: u64,
    pub run_id: Arc<str>,
    pub tenant: Arc<str>,
    pub seq: i64,
    pub kind: &'static str,
    pub direction: &'static str,
    pub method: Option<Arc<str>>,
    pub request_id: Option<Arc<str>>,
    pub virtual_time: Arc<str>,
    pub wall_time: Arc<str>,
    pub payload: Arc<str>,
    /// The row is in the store's journal: it was durable, and its waiter
    /// answered, before it reached the database.
    pub journaled: bool,
}

/// Redacts an event of a run this store created, whose ids were checked
/// when it was (`Store::create_run`), and turns it into bound values; the
/// caller checked that `seq` is storable. The same redaction as
/// [`Scratch::prepare`]'s, on the caller's thread.
pub(crate) fn prepare_known(
    mut event: NewEvent,
    run_id: Arc<str>,
    tenant: Arc<str>,
    redactor: &SharedRedactor,
) -> Row {
    let redactor = redactor.snapshot();
    redactor.redact_json(&mut event.payload);
    let mut time = String::with_capacity(32);
    let mut stamp = |t: &chrono::DateTime<chrono::Utc>| {
        time.clear();
        write_db_time(&mut time, t);
        Arc::from(time.as_str())
    };
    Row {
        ticket: 0,
        run_id,
        tenant,
        seq: i64::try_from(event.seq).unwrap_or(i64::MAX),
        kind: event.kind.as_str(),
        direction: event.direction.as_str(),
        // A `Value` always serializes (its map keys are strings).
        payload: Arc::from(event.payload.to_string()),
        method: event
            .method
            .as_deref()
            .map(|m| redacted_method(&redactor, m)),
        request_id: event
            .request_id
            .as_deref()
            .map(|r| Arc::from(redactor.redact_str(r))),
        virtual_time: stamp(&event.virtual_time),
        wall_time: stamp(&event.wall_time),
        journaled: false,
    }
}

/// How many methods a thread keeps the redaction of.
const METHODS_KEPT: usize = 64;

/// The redaction a thread's methods were made with, and what it made of them.
type MethodMemo = Option<(SinkRedactor, HashMap<String, Arc<str>>)>;

thread_local! {
    /// The redaction of the methods this thread prepared last, and the
    /// redaction they were made with. A run's events carry a handful of
    /// methods (`tools/call` on every call), so this spares a redaction
    /// per event; a new redactor (a secret added) starts it afresh.
    static METHODS: RefCell<MethodMemo> = const { RefCell::new(None) };
}

/// `method` as `redactor` redacts it, from this thread's memo if it holds it.
fn redacted_method(redactor: &SinkRedactor, method: &str) -> Arc<str> {
    METHODS.with(|memo| {
        let mut memo = memo.borrow_mut();
        let methods = match &mut *memo {
            Some((made_by, methods)) if made_by.same_as(redactor) => methods,
            stale => &mut stale.insert((redactor.clone(), HashMap::new())).1,
        };
        if let Some(done) = methods.get(method) {
            return Arc::clone(done);
        }
        let done: Arc<str> = Arc::from(redactor.redact_str(method));
        if methods.len() >= METHODS_KEPT {
            methods.clear();
        }
        methods.insert(method.to_owned(), Arc::clone(&done));
        done
    })
}

/// The last key seen and what redaction made of it. Consecutive events
/// mostly share their run and tenant, so this saves a redaction and an
/// allocation per event.
#[derive(Default)]
struct KeyCache {
    raw: String,
    checked: Option<Result<Arc<str>, String>>,
}

impl KeyCache {
    /// Keys (run and tenant ids) are not rewritten by redaction, since a
    /// rewritten key would file the event under another run or none. A key
    /// the redactor would alter is refused instead, so nothing raw is written.
    fn check(&mut self, raw: &str, redactor: &SharedRedactor) -> Result<Arc<str>, String> {
        if let Some(checked) = &self.checked
            && self.raw == raw
        {
            return checked.clone();
        }
        let checked = if redactor.redact_str(raw) == raw {
            Ok(Arc::from(raw))
        } else {
            Err("it contains text the redactor masks, and ids must not carry secrets".to_owned())
        };
        self.raw.clear();
        self.raw.push_str(raw);
        self.checked = Some(checked.clone());
        checked
    }
}

/// The writer's state and its connection, behind one lock shared by the
/// writer thread and the store's handles: whoever holds it commits. The
/// writer thread takes it for every batch; a handle takes it (never waiting
/// for it) to commit its own event while the writer sleeps
/// ([`commit_here`]). `None` once the writer has closed the connection.
pub(crate) type SharedCore = Arc<Mutex<Option<Core>>>;

pub(crate) struct Core {
    conn: Connection,
    /// Stops the background checkpoints, and waits for them to let go of
    /// their connection, before the final checkpoint at close.
    checkpoints: Option<Checkpoints>,
    processed: watch::Sender<u64>,
    failures: Arc<FailureLog>,
    redactor: SharedRedactor,
    batch_max: usize,
    /// This store instance's id, stamped on the runs it creates.
    owner: String,
    scratch: Scratch,
    /// Events taken from the inbox, not yet written.
    events: Vec<Pending>,
    /// The journal whose rows this writer folds into the database.
    journal: Option<Arc<Journal>>,
    /// Token spends queued with the events: counted in one transaction
    /// after the events are written, without breaking their batch.
    spends: Vec<access::PendingSpend>,
    /// Pages in the WAL after the last commit.
    wal_pages: c_int,
    /// The WAL length, in pages, at which the writer next acts to keep it
    /// short (see [`Core::keep_wal_short`]).
    wal_check_at: c_int,
    /// The background checkpoint count when the writer asked for one, while
    /// it waits for that checkpoint to finish.
    wal_asked: Option<u64>,
}

/// What a store handle gives the writer's [`Core`] when it opens.
pub(crate) struct CoreParts {
    pub conn: Connection,
    pub checkpoints: Checkpoints,
    pub processed: watch::Sender<u64>,
    pub failures: Arc<FailureLog>,
    pub redactor: SharedRedactor,
    pub batch_max: usize,
    pub owner: String,
    pub journal: Option<Arc<Journal>>,
}

/// The writer thread: sleeps on the inbox, and when there is work, takes
/// the core and every queued command.
pub(crate) struct Writer {
    core: SharedCore,
    inbox: Arc<Inbox>,
    /// Commands taken from the inbox, not yet handled.
    buffer: VecDeque<Command>,
}

/// A write-ahead log this long (pages of 4 KiB: 16 MiB) is checkpointed by
/// the writer itself between two batches, so that the next commit can start
/// the log over from its beginning.
///
/// SQLite starts a WAL over only when a commit begins with every frame in it
/// checkpointed. The background checkpoints run while the writer keeps
/// appending, so under a steady load they never catch up with it, and the
/// log grew without end: 1.5 GB in twelve seconds of replayed calls, each
/// new block zeroed by the file system before it was written (a quarter of
/// the server's CPU). A checkpoint by the writer itself, between its own
/// commits, leaves nothing behind; most of the pages it would copy the
/// background checkpoints have already copied.
pub(crate) const WAL_RESTART_PAGES: c_int = 4096;

/// The largest WAL file kept when the log starts over: a longer one (grown
/// while a long read kept the log from restarting) is cut back to this.
pub(crate) const WAL_KEPT_BYTES: i64 = 64 << 20;

thread_local! {
    /// Pages in the WAL after the last commit on this thread, as SQLite's
    /// WAL hook reports them (the hook is a plain function, so the count
    /// travels through the committing thread); -1 when no commit reported.
    static WAL_PAGES: Cell<c_int> = const { Cell::new(-1) };
}

fn note_wal_pages(_: &rusqlite::hooks::Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// Commits what is queued, on the calling thread, if nobody else is
/// committing right now: the store's handles call it to commit their own
/// event while the writer sleeps, which saves two thread wake-ups (to the
/// writer and back). Returns false, having done nothing, when the core is
/// busy or closed. Only events at the front of the queue are taken, at most
/// one batch; control commands stay the writer's.
pub(crate) fn commit_here(core: &Mutex<Option<Core>>, inbox: &Inbox) -> bool {
    let mut guard = match core.try_lock() {
        Ok(guard) => guard,
        Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return false,
    };
    let Some(core) = guard.as_mut() else {
        return false;
    };
    inbox.take_events(&mut core.events, core.batch_max);
    core.counting_wal_pages(Core::write_events);
    let chores = core.wal_has_chores();
    drop(guard);
    if chores {
        // Checkpoints are the writer's: they may take long, and sync files.
        inbox.chores();
    }
    true
}

fn lock_core(core: &Mutex<Option<Core>>) -> std::sync::MutexGuard<'_, Option<Core>> {
    core.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The writer's reusable state, kept apart from `Writer` so that building a
/// batch can borrow it mutably while the connection is in use.
struct Scratch {
    /// `INSERT` statements for 1, 2, 4, … `MAX_CHUNK_ROWS` rows. A batch is
    /// cut into these power-of-two sizes so that only a handful of distinct
    /// statements exist and all stay in the prepared-statement cache.
    inserts: Vec<(usize, String)>,
    json: Vec<u8>,
    time: String,
    run_key: KeyCache,
    tenant_key: KeyCache,
    rows: Vec<Row>,
    failed: Vec<(u64, Arc<StoreError>)>,
}

impl Scratch {
    fn new() -> Scratch {
        let mut inserts = Vec::new();
        let mut n = 1;
        while n <= MAX_CHUNK_ROWS {
            inserts.push((n, insert_sql(n)));
            n *= 2;
        }
        Scratch {
            inserts,
            json: Vec::with_capacity(4096),
            time: String::with_capacity(32),
            run_key: KeyCache::default(),
            tenant_key: KeyCache::default(),
            rows: Vec::new(),
            failed: Vec::new(),
        }
    }

    fn time(&mut self, t: &chrono::DateTime<chrono::Utc>) -> Arc<str> {
        self.time.clear();
        write_db_time(&mut self.time, t);
        Arc::from(self.time.as_str())
    }

    /// Redacts one event and turns it into bound values.
    fn prepare(
        &mut self,
        ticket: u64,
        mut event: NewEvent,
        redactor: &SharedRedactor,
    ) -> Result<Row, StoreError> {
        let reject = |event: &NewEvent, reason: String| StoreError::EventRejected {
            run_id: redactor.redact_str(&event.run_id),
            seq: event.seq,
            reason,
        };
        let run_id = self
            .run_key
            .check(&event.run_id, redactor)
            .map_err(|r| reject(&event, format!("its run id is refused: {r}")))?;
        let tenant = self
            .tenant_key
            .check(&event.tenant, redactor)
            .map_err(|r| reject(&event, format!("its tenant id is refused: {r}")))?;
        let seq = i64::try_from(event.seq).map_err(|_| {
            reject(
                &event,
                "seq is larger than the largest storable value (2^63 - 1)".to_owned(),
            )
        })?;

        redactor.redact_json(&mut event.payload);
        self.json.clear();
        serde_json::to_writer(&mut self.json, &event.payload)
            .map_err(|e| reject(&event, format!("its payload could not be serialized: {e}")))?;
        let payload: Arc<str> = Arc::from(
            std::str::from_utf8(&self.json)
                .map_err(|e| reject(&event, format!("its payload is not UTF-8: {e}")))?,
        );

        Ok(Row {
            ticket,
            run_id,
            tenant,
            seq,
            kind: event.kind.as_str(),
            direction: event.direction.as_str(),
            payload,
            method: event
                .method
                .as_deref()
                .map(|m| Arc::from(redactor.redact_str(m))),
            request_id: event
                .request_id
                .as_deref()
                .map(|r| Arc::from(redactor.redact_str(r))),
            virtual_time: self.time(&event.virtual_time),
            wall_time: self.time(&event.wall_time),
            journaled: false,
        })
    }
}

/// An event in the writer's hands: raw, or prepared by its caller.
pub(crate) enum Pending {
    Event(u64, NewEvent),
    Row(Row),
}

impl Pending {
    pub(crate) fn ticket(&self) -> u64 {
        match self {
            Pending::Event(ticket, _) => *ticket,
            Pending::Row(row) => row.ticket,
        }
    }
}

fn insert_sql(rows: usize) -> String {
    const HEAD: &str = "INSERT INTO events (run_id, seq, tenant_id, kind, direction, method, request_id, virtual_time, wall_time, payload) VALUES ";
    const TUPLE: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let mut sql = String::with_capacity(HEAD.len() + rows * (TUPLE.len() + 2));
    sql.push_str(HEAD);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(TUPLE);
    }
    sql
}

/// Cuts `n` rows into statement sizes: as many full chunks as fit, then the
/// binary digits of the rest, largest first.
fn chunk_sizes(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if n == 0 {
            return None;
        }
        let size = if n >= MAX_CHUNK_ROWS {
            MAX_CHUNK_ROWS
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        n -= size;
        Some(size)
    })
}

/// Whether a failed statement was refused because of the rows it carried
/// (a constraint), as opposed to the database failing (I/O, full disk,
/// busy, a trigger's abort). Only the former is worth retrying row by row.
fn is_row_error(e: &rusqlite::Error) -> bool {
    matches!(
        constraint(e),
        Some(Constraint::Unique | Constraint::ForeignKey | Constraint::Other)
    )
}

enum Constraint {
    Unique,
    ForeignKey,
    Other,
}

fn constraint(e: &rusqlite::Error) -> Option<Constraint> {
    const UNIQUE: i32 = 2067; // SQLITE_CONSTRAINT_UNIQUE
    const PRIMARY_KEY: i32 = 1555; // SQLITE_CONSTRAINT_PRIMARYKEY
    const FOREIGN_KEY: i32 = 787; // SQLITE_CONSTRAINT_FOREIGNKEY
    const NOT_NULL: i32 = 1299; // SQLITE_CONSTRAINT_NOTNULL
    const CHECK: i32 = 275; // SQLITE_CONSTRAINT_CHECK
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
            match f.extended_code {
                UNIQUE | PRIMARY_KEY => Some(Constraint::Unique),
                FOREIGN_KEY => Some(Constraint::ForeignKey),
                NOT_NULL | CHECK => Some(Constraint::Other),
                _ => None,
            }
        }
        _ => None,
    }
}

fn row_error(row: &Row, e: &rusqlite::Error) -> StoreError {
    let run_id = row.run_id.to_string();
    let seq = row.seq as u64;
    match constraint(e) {
        Some(Constraint::Unique) => StoreError::DuplicateEvent { run_id, seq },
        Some(Constraint::ForeignKey) => StoreError::EventRejected {
            reason: format!(
                "tenant {:?} has no run with that id (create the run before its events)",
                row.tenant
            ),
            run_id,
            seq,
        },
        _ => StoreError::EventRejected {
            run_id,
            seq,
            reason: e.to_string(),
        },
    }
}

fn execute_insert(conn: &Connection, sql: &str, rows: &[Row]) -> Result<(), rusqlite::Error> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut at = 1;
    for row in rows {
        statement.raw_bind_parameter(at, &*row.run_id)?;
        statement.raw_bind_parameter(at + 1, row.seq)?;
        statement.raw_bind_parameter(at + 2, &*row.tenant)?;
        statement.raw_bind_parameter(at + 3, row.kind)?;
        statement.raw_bind_parameter(at + 4, row.direction)?;
        statement.raw_bind_parameter(at + 5, row.method.as_deref())?;
        statement.raw_bind_parameter(at + 6, row.request_id.as_deref())?;
        statement.raw_bind_parameter(at + 7, &*row.virtual_time)?;
        statement.raw_bind_parameter(at + 8, &*row.wall_time)?;
        statement.raw_bind_parameter(at + 9, &*row.payload)?;
        at += EVENT_COLUMNS;
    }
    statement.raw_execute().map(|_| ())
}

/// Writes `rows`. Rows refused by a constraint are added to `failed` and
/// the rest are committed; any other error fails the whole batch and is
/// returned.
///
/// A batch that fits one `INSERT` is one statement, atomic on its own, so
/// it needs no `BEGIN`/`COMMIT`. Larger batches, and a batch with a refused
/// row, go through one transaction; SQLite rolls back only the failed
/// statement there, so the good rows still land. (PostgreSQL aborts the
/// transaction instead; its version will wrap each chunk in a savepoint.)
fn write_rows(
    conn: &mut Connection,
    inserts: &[(usize, String)],
    rows: &[Row],
    failed: &mut Vec<(u64, Arc<StoreError>)>,
) -> Result<(), rusqlite::Error> {
    let sql_for = |size: usize| {
        inserts
            .iter()
            .find(|(n, _)| *n == size)
            .map(|(_, sql)| sql.as_str())
            .ok_or(rusqlite::Error::InvalidParameterCount(size, 0))
    };
    if chunk_sizes(rows.len()).count() == 1 {
        match execute_insert(conn, sql_for(rows.len())?, rows) {
            Ok(()) => return Ok(()),
            Err(e) if is_row_error(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let single = sql_for(1)?;
    let tx = conn.transaction()?;
    let mut at = 0;
    for size in chunk_sizes(rows.len()) {
        let chunk = &rows[at..at + size];
        at += size;
        match execute_insert(&tx, sql_for(size)?, chunk) {
            Ok(()) => {}
            Err(e) if is_row_error(&e) => {
                // Find the offending rows one by one; the good ones still land.
                for row in chunk {
                    match execute_insert(&tx, single, std::slice::from_ref(row)) {
                        Ok(()) => {}
                        Err(e) if is_row_error(&e) => {
                            failed.push((row.ticket, Arc::new(row_error(row, &e))));
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    tx.commit()
}

impl Writer {
    /// Starts the writer on a thread of its own, and returns the core that
    /// it shares with the store's handles.
    pub fn spawn(
        parts: CoreParts,
        inbox: Arc<Inbox>,
    ) -> std::io::Result<(SharedCore, std::thread::JoinHandle<()>)> {
        parts.conn.wal_hook(Some(note_wal_pages));
        let batch_max = parts.batch_max.max(1);
        let core = Arc::new(Mutex::new(Some(Core {
            conn: parts.conn,
            checkpoints: Some(parts.checkpoints),
            processed: parts.processed,
            failures: parts.failures,
            redactor: parts.redactor,
            batch_max,
            owner: parts.owner,
            scratch: Scratch::new(),
            events: Vec::with_capacity(batch_max.min(1024)),
            journal: parts.journal,
            spends: Vec::new(),
            wal_pages: 0,
            wal_check_at: WAL_RESTART_PAGES,
            wal_asked: None,
        })));
        let writer = Writer {
            core: Arc::clone(&core),
            inbox,
            buffer: VecDeque::new(),
        };
        let thread = std::thread::Builder::new()
            .name("sandbar-store-writer".to_owned())
            .spawn(move || writer.run())?;
        Ok((core, thread))
    }

    /// Serves commands until told to shut down or until every store handle
    /// is gone, then closes the connection cleanly.
    fn run(mut self) {
        /// Tells the handles the writer has stopped, however it stops.
        struct Gone(Arc<Inbox>);
        impl Drop for Gone {
            fn drop(&mut self) {
                self.0.writer_gone();
            }
        }
        let _gone = Gone(Arc::clone(&self.inbox));
        let mut ticking = false;
        let shutdown_reply = loop {
            let work = self.inbox.await_work(ticking);
            let mut guard = lock_core(&self.core);
            let Some(core) = guard.as_mut() else {
                break None;
            };
            self.inbox.take_all(&mut self.buffer);
            if let Some(reply) = core.counting_wal_pages(|core| core.serve(&mut self.buffer)) {
                break Some(reply);
            }
            if work == Work::Closed {
                break None;
            }
            ticking = core.keep_wal_short();
        };
        let core = lock_core(&self.core).take();
        let result = core.map_or(Ok(()), Core::finish);
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(result);
        } else if let Err(e) = result {
            tracing::warn!(error = %e, "the store did not close cleanly");
        }
    }
}

impl Core {
    /// The WAL has reached the length at which the writer asks for a
    /// checkpoint, and it has not asked yet.
    fn wal_wants_checkpoint(&self) -> bool {
        self.wal_pages >= self.wal_check_at && self.wal_asked.is_none()
    }

    /// The writer has a step of [`Core::keep_wal_short`] to take: the WAL
    /// wants a checkpoint, or the background checkpoint it asked for has
    /// finished. A caller that commits its own events tells the writer
    /// then: while calls keep coming the writer lingers, and would not
    /// look on its own until they stop, with the log growing meanwhile.
    fn wal_has_chores(&self) -> bool {
        match (self.wal_asked, &self.checkpoints) {
            (None, _) => self.wal_wants_checkpoint(),
            (Some(asked), Some(checkpoints)) => checkpoints.finished() > asked,
            (Some(_), None) => false,
        }
    }

    /// Runs `f`, then notes the WAL's length if a commit in it reported one.
    fn counting_wal_pages<T>(&mut self, f: impl FnOnce(&mut Core) -> T) -> T {
        WAL_PAGES.set(-1);
        let result = f(self);
        let pages = WAL_PAGES.get();
        if pages >= 0 {
            self.wal_pages = pages;
            if pages < WAL_RESTART_PAGES {
                // The log started over (or is still short).
                self.wal_check_at = WAL_RESTART_PAGES;
                self.wal_asked = None;
            }
        }
        result
    }

    /// Handles the commands taken from the inbox, in order: events in
    /// batches, control commands between them. Returns the reply of a
    /// shutdown, which ends the writer (commands behind it are dropped).
    fn serve(
        &mut self,
        buffer: &mut VecDeque<Command>,
    ) -> Option<oneshot::Sender<Result<(), StoreError>>> {
        while let Some(command) = buffer.pop_front() {
            match command {
                Command::Event { ticket, event } => {
                    self.events.push(Pending::Event(ticket, event));
                    if self.events.len() >= self.batch_max {
                        self.write_events();
                    }
                }
                Command::Row { row } => {
                    self.events.push(Pending::Row(row));
                    if self.events.len() >= self.batch_max {
                        self.write_events();
                    }
                }
                Command::SpendToken { id, now, reply } => {
                    self.spends.push(access::PendingSpend { id, now, reply });
                }
                Command::Shutdown { reply } => {
                    self.write_events();
                    self.spend_tokens();
                    return Some(reply);
                }
                control => {
                    self.write_events();
                    self.spend_tokens();
                    self.control(control);
                }
            }
        }
        self.write_events();
        self.spend_tokens();
        None
    }

    /// Starts the WAL over once it is [`WAL_RESTART_PAGES`] long, after the
    /// batch's waiters have their answer, in two steps: the writer asks the
    /// background thread for a checkpoint (which copies the frames and syncs
    /// both files while the writer goes on), and once that one has finished,
    /// checkpoints on its own connection what was appended meanwhile. That
    /// leaves no frame behind, so the next commit starts the log over. A
    /// checkpoint that cannot finish (a reader still needs old frames) is
    /// tried again only after as many pages more, so a long read does not
    /// turn every batch into a checkpoint.
    ///
    /// Returns true while it waits for the background checkpoint: the
    /// writer then looks again soon, even if no command comes.
    fn keep_wal_short(&mut self) -> bool {
        let pages = self.wal_pages;
        if pages < WAL_RESTART_PAGES {
            return false;
        }
        let Some(checkpoints) = &self.checkpoints else {
            return false;
        };
        match self.wal_asked {
            None if self.wal_wants_checkpoint() => {
                self.wal_asked = Some(checkpoints.finished());
                checkpoints.ask();
            }
            Some(asked) if checkpoints.finished() > asked => {
                self.wal_asked = None;
                self.wal_check_at = pages.saturating_add(WAL_RESTART_PAGES);
                let checkpoint = self
                    .conn
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
                    });
                match checkpoint {
                    Ok((log, done)) if log == done => {}
                    Ok((log, done)) => {
                        tracing::debug!(log, done, "the WAL could not be checkpointed to its end")
                    }
                    Err(e) => tracing::debug!(error = %e, "a WAL checkpoint by the writer failed"),
                }
            }
            _ => {}
        }
        self.wal_asked.is_some()
    }

    /// Writes the events taken so far as one batch and advances the
    /// high-water mark past them.
    fn write_events(&mut self) {
        let Some(last_ticket) = self.events.last().map(Pending::ticket) else {
            return;
        };
        let scratch = &mut self.scratch;
        scratch.rows.clear();
        scratch.failed.clear();
        scratch.run_key = KeyCache::default();
        scratch.tenant_key = KeyCache::default();
        let mut journaled = false;
        for pending in self.events.drain(..) {
            match pending {
                Pending::Row(row) => {
                    journaled |= row.journaled;
                    scratch.rows.push(row);
                }
                Pending::Event(ticket, event) => {
                    match scratch.prepare(ticket, event, &self.redactor) {
                        Ok(row) => scratch.rows.push(row),
                        Err(e) => scratch.failed.push((ticket, Arc::new(e))),
                    }
                }
            }
        }
        let mut journaled_failed = false;

        if !scratch.rows.is_empty() {
            let mut row_failures = Vec::new();
            match write_rows(
                &mut self.conn,
                &scratch.inserts,
                &scratch.rows,
                &mut row_failures,
            ) {
                Ok(()) => {
                    if journaled && !row_failures.is_empty() {
                        let tickets: BTreeSet<u64> = row_failures.iter().map(|(t, _)| *t).collect();
                        journaled_failed = scratch
                            .rows
                            .iter()
                            .any(|r| r.journaled && tickets.contains(&r.ticket));
                    }
                    scratch.failed.append(&mut row_failures);
                }
                Err(source) => {
                    journaled_failed = journaled;
                    let cause = Arc::new(StoreError::Sqlite {
                        context: "writing a batch of events",
                        source,
                    });
                    tracing::error!(events = scratch.rows.len(), error = %cause, "a batch of events was not written");
                    scratch
                        .failed
                        .extend(scratch.rows.iter().map(|r| (r.ticket, Arc::clone(&cause))));
                }
            }
        }
        scratch.rows.clear();

        if !scratch.failed.is_empty() {
            scratch.failed.sort_by_key(|(t, _)| *t);
            // Consecutive tickets that share a cause (a whole failed batch)
            // are recorded as one range.
            let mut iter = scratch.failed.drain(..);
            if let Some((first, cause)) = iter.next() {
                let (mut lo, mut hi, mut cause) = (first, first, cause);
                for (t, c) in iter {
                    if t == hi + 1 && Arc::ptr_eq(&c, &cause) {
                        hi = t;
                    } else {
                        log_failure(&self.failures, lo, hi, cause);
                        (lo, hi, cause) = (t, t, c);
                    }
                }
                log_failure(&self.failures, lo, hi, cause);
            }
        }
        // Failures are recorded before the mark moves, so a waiter that sees
        // the mark also sees its ticket's failure.
        self.processed.send_replace(last_ticket);
        if let Some(journal) = &self.journal {
            if journaled_failed {
                // Those rows are safe in the journal; the next open folds
                // them in again, so it must not be deleted.
                journal.keep();
            }
            journal.folded(last_ticket);
        }
    }

    fn control(&mut self, command: Command) {
        match command {
            Command::CreateRun { run, reply } => {
                let _ = reply.send(self.create_run(run));
            }
            Command::EndRun {
                run_id,
                status,
                ended_at,
                reply,
            } => {
                let _ = reply.send(self.end_run(run_id, status, ended_at));
            }
            Command::EnsureTenant { id, name, reply } => {
                let _ = reply.send(self.ensure_tenant(id, name));
            }
            Command::Audit { entry, reply } => {
                let _ = reply.send(self.audit(entry));
            }
            Command::PutSecrets { secrets, reply } => {
                let _ = reply.send(self.put_secrets(secrets));
            }
            Command::RemoveSecret {
                tenant,
                name,
                reply,
            } => {
                let _ = reply.send(
                    self.conn
                        .execute(
                            "DELETE FROM secrets WHERE tenant_id = ? AND name = ?",
                            rusqlite::params![tenant, name],
                        )
                        .map(|n| n > 0)
                        .map_err(StoreError::sqlite("removing a secret")),
                );
            }
            Command::PutToken { token, reply } => {
                let _ = reply.send(self.put_token(token));
            }
            Command::RevokeToken {
                tenant,
                id,
                at,
                reply,
            } => {
                let _ = reply.send(self.revoke_token(&tenant, &id, &at));
            }
            Command::SpendToken { id, now, reply } => {
                self.spends.push(access::PendingSpend { id, now, reply });
                self.spend_tokens();
            }
            Command::RequestApproval { approval, reply } => {
                let _ = reply.send(self.request_approval(approval));
            }
            Command::DecideApproval {
                tenant,
                id,
                decision,
                now,
                reply,
            } => {
                let _ = reply.send(self.decide_approval(&tenant, &id, decision, now));
            }
            Command::ExpireApproval { id, now, reply } => {
                let _ = reply.send(self.expire_approval(&id, now));
            }
            // Handled by the serving loop itself.
            Command::Event { .. } | Command::Row { .. } | Command::Shutdown { .. } => {}
        }
    }

    fn create_run(&mut self, run: PreparedRun) -> Result<(), StoreError> {
        let result = self.conn.execute(
            "INSERT INTO runs (id, tenant_id, scenario_name, scenario_hash, seed, clock_start, started_at, transport, labels, status, ended_at, owner)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', NULL, ?)",
            rusqlite::params![
                run.id,
                run.tenant,
                run.scenario_name,
                run.scenario_hash,
                run.seed,
                run.clock_start,
                run.started_at,
                run.transport,
                run.labels,
                self.owner
            ],
        );
        match result {
            Ok(_) => Ok(()),
            Err(e) => match constraint(&e) {
                Some(Constraint::Unique) => Err(StoreError::DuplicateRun { id: run.id }),
                Some(Constraint::ForeignKey) => {
                    Err(StoreError::UnknownTenant { tenant: run.tenant })
                }
                _ => Err(StoreError::Sqlite {
                    context: "creating a run",
                    source: e,
                }),
            },
        }
    }

    fn end_run(
        &mut self,
        run_id: String,
        status: RunStatus,
        ended_at: String,
    ) -> Result<(), StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE runs SET status = ?, ended_at = ?, owner = NULL WHERE id = ?",
                rusqlite::params![status.as_str(), ended_at, run_id],
            )
            .map_err(StoreError::sqlite("ending a run"))?;
        if changed == 0 {
            return Err(StoreError::UnknownRun { id: run_id });
        }
        Ok(())
    }

    /// Appends to the tenant's audit chain, in one transaction: the entry
    /// follows the newest one (by this or any other process).
    fn audit(&mut self, entry: crate::model::NewAudit) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("starting an audit entry"))?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM audit WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1",
                [&entry.tenant],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })
            .map_err(StoreError::sqlite("reading the audit chain"))?;
        let (seq, prev) = match last {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, crate::model::AUDIT_GENESIS.to_owned()),
        };
        let at = crate::model::db_time(&chrono::Utc::now());
        let detail = entry.detail.to_string();
        let hash = crate::model::audit_hash(
            &prev,
            &entry.tenant,
            u64::try_from(seq).unwrap_or_default(),
            &at,
            &entry.actor,
            &entry.action,
            &detail,
        );
        let inserted = tx.execute(
            "INSERT INTO audit (tenant_id, seq, at, actor, action, detail, prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rusqlite::params![
                entry.tenant,
                seq,
                at,
                entry.actor,
                entry.action,
                detail,
                prev,
                hash
            ],
        );
        if let Err(e) = inserted {
            return Err(match constraint(&e) {
                Some(Constraint::ForeignKey) => StoreError::UnknownTenant {
                    tenant: entry.tenant,
                },
                _ => StoreError::Sqlite {
                    context: "writing an audit entry",
                    source: e,
                },
            });
        }
        tx.commit()
            .map_err(StoreError::sqlite("committing an audit entry"))
    }

    fn put_secrets(&mut self, secrets: Vec<crate::model::StoredSecret>) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("starting to store secrets"))?;
        for secret in secrets {
            let inserted = tx.execute(
                "INSERT INTO secrets (tenant_id, name, key_id, nonce, ciphertext, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (tenant_id, name) DO UPDATE SET
                     key_id = excluded.key_id, nonce = excluded.nonce,
                     ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
                rusqlite::params![
                    secret.tenant,
                    secret.name,
                    secret.key_id,
                    secret.nonce,
                    secret.ciphertext,
                    crate::model::db_time(&secret.created_at),
                    crate::model::db_time(&secret.updated_at),
                ],
            );
            if let Err(e) = inserted {
                return Err(match constraint(&e) {
                    Some(Constraint::ForeignKey) => StoreError::UnknownTenant {
                        tenant: secret.tenant,
                    },
                    _ => StoreError::Sqlite {
                        context: "storing a secret",
                        source: e,
                    },
                });
            }
        }
        tx.commit()
            .map_err(StoreError::sqlite("committing secrets"))
    }

    fn ensure_tenant(&mut self, id: String, name: String) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
                rusqlite::params![id, name, crate::model::db_time(&chrono::Utc::now())],
            )
            .map_err(StoreError::sqlite("creating a tenant"))?;
        Ok(())
    }

    /// Marks this instance's unfinished runs interrupted, checkpoints the
    /// WAL into the main file and closes the connection.
    fn finish(mut self) -> Result<(), StoreError> {
        // Every event queued has been written: the journal is not needed.
        if let Some(journal) = &self.journal {
            journal.close();
        }
        if let Some(checkpoints) = self.checkpoints.take() {
            checkpoints.stop();
        }
        let interrupted = self
            .conn
            .execute(crate::recovery::INTERRUPT, [&self.owner])
            .map_err(StoreError::sqlite("marking unfinished runs interrupted"))?;
        if interrupted > 0 {
            tracing::warn!(
                runs = interrupted,
                "runs still active at close were marked interrupted"
            );
        }
        // TRUNCATE leaves an empty WAL even if another process keeps the
        // database open; closing the last connection would remove it anyway.
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
            .map_err(StoreError::sqlite("checkpointing the write-ahead log"))?;
        if busy != 0 {
            tracing::debug!("the WAL checkpoint at close was blocked by another connection");
        }
        self.conn.close().map_err(|(_, e)| StoreError::Sqlite {
            context: "closing the store",
            source: e,
        })
    }
}

fn log_failure(failures: &FailureLog, first: u64, last: u64, cause: Arc<StoreError>) {
    if !matches!(
        *cause,
        StoreError::Database { .. } | StoreError::Sqlite { .. }
    ) {
        tracing::error!(ticket = first, error = %cause, "an event was not written");
    }
    failures.record(first, last, cause);
}

/// What the background checkpoint thread is told.
enum Order {
    /// Checkpoint now rather than at the next tick.
    Now,
    Stop,
}

/// The background checkpoint thread: PASSIVE checkpoints on a connection of
/// its own, every second and whenever the writer asks, so that copying WAL
/// frames into the database and syncing both files happen off the writer's
/// thread; see `Store::open`.
pub(crate) struct Checkpoints {
    orders: Sender<Order>,
    /// How many checkpoints the thread has finished.
    done: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpoints {
    pub(crate) fn spawn(conn: Connection) -> std::io::Result<Checkpoints> {
        let (orders, rx) = std::sync::mpsc::channel();
        let done = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("sandbar-store-checkpoint".to_owned())
            .spawn(move || {
                while let Ok(Order::Now) | Err(RecvTimeoutError::Timeout) =
                    rx.recv_timeout(CHECKPOINT_EVERY)
                {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(error = %e, "a background WAL checkpoint failed");
                    }
                    counted.fetch_add(1, Ordering::AcqRel);
                }
            })?;
        Ok(Checkpoints {
            orders,
            done,
            thread,
        })
    }

    fn finished(&self) -> u64 {
        self.done.load(Ordering::Acquire)
    }

    fn ask(&self) {
        let _ = self.orders.send(Order::Now);
    }

    /// Stops the thread and waits for it to let go of its connection.
    fn stop(self) {
        let _ = self.orders.send(Order::Stop);
        let _ = self.thread.join();
    }
}

/// How often the background checkpoint runs unasked.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

#[cfg(test)]
// Tests fail by panicking; unwrapping is how they say so.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_into_power_of_two_chunks() {
        let check = |n: usize, expect: &[usize]| {
            let sizes: Vec<usize> = chunk_sizes(n).collect();
            assert_eq!(sizes, expect, "{n} rows");
            assert_eq!(sizes.iter().sum::<usize>(), n);
        };
        check(0, &[]);
        check(1, &[1]);
        check(3, &[2, 1]);
        check(256, &[256]);
        check(300, &[256, 32, 8, 4]);
        check(512, &[256, 256]);
        check(513, &[256, 256, 1]);
    }

    #[test]
    fn a_method_redacted_from_memory_follows_the_redactor_in_force() {
        use crate::model::{Direction, EventKind};
        let redactor = SharedRedactor::default();
        let event = || NewEvent {
            run_id: "r1".to_owned(),
            tenant: "default".to_owned(),
            seq: 1,
            kind: EventKind::Request,
            direction: Direction::ToServer,
            method: Some("tools/call-hunter2-q8Zr5Lm".to_owned()),
            request_id: Some("7".to_owned()),
            virtual_time: chrono::Utc::now(),
            wall_time: chrono::Utc::now(),
            payload: serde_json::json!({}),
        };
        let method = |redactor: &SharedRedactor| {
            prepare_known(event(), Arc::from("r1"), Arc::from("default"), redactor)
                .method
                .unwrap()
        };
        // Twice, so the second comes from the memo.
        assert_eq!(&*method(&redactor), "tools/call-hunter2-q8Zr5Lm");
        assert_eq!(&*method(&redactor), "tools/call-hunter2-q8Zr5Lm");
        // A secret learnt later is redacted from the next event on, though
        // this thread redacted the same method before it was known.
        redactor
            .add_secrets([("test_secret", "hunter2-q8Zr5Lm")])
            .unwrap();
        let after = method(&redactor);
        assert!(!after.contains("hunter2-q8Zr5Lm"), "{after}");
        assert_eq!(method(&redactor), after);
        // Another handle with its own redactor does not read this one's memo.
        let other = SharedRedactor::default();
        assert_eq!(&*method(&other), "tools/call-hunter2-q8Zr5Lm");
        assert_eq!(method(&redactor), after);
    }

    #[test]
    fn insert_statements_bind_ten_columns_per_row() {
        assert_eq!(insert_sql(2).matches('?').count(), 2 * EVENT_COLUMNS);
    }

    fn cause(msg: &str) -> Arc<StoreError> {
        Arc::new(StoreError::InvalidInput {
            what: "test",
            reason: msg.to_owned(),
        })
    }

    #[test]
    fn failure_log_answers_per_ticket_and_per_window() {
        let log = FailureLog::default();
        assert!(log.lookup(5).is_none());
        log.record(5, 5, cause("dup"));
        log.record(10, 19, cause("disk"));
        let count = |after, through| match log.failures_in(after, through) {
            Some(StoreError::EventsNotWritten { count, .. }) => count,
            None => 0,
            Some(other) => panic!("unexpected {other}"),
        };
        assert_eq!(count(0, 4), 0);
        assert_eq!(count(0, 100), 11);
        assert_eq!(count(5, 100), 10);
        assert_eq!(count(12, 15), 3);
        assert_eq!(count(19, 100), 0);
        for (ticket, failed) in [
            (4, false),
            (5, true),
            (6, false),
            (9, false),
            (10, true),
            (19, true),
            (20, false),
        ] {
            assert_eq!(log.lookup(ticket).is_some(), failed, "ticket {ticket}");
        }
        // A failure returned to its waiter is not counted again; it is
        // still returned to a waiter that asks again.
        assert_eq!(count(0, 100), 8);
        assert_eq!(count(5, 100), 8);
        assert_eq!(count(0, 5), 0);
        assert_eq!(count(12, 15), 3);
        assert!(log.lookup(5).is_some());
    }

    #[test]
    fn a_full_failure_log_forgets_old_tickets_as_errors_not_successes() {
        let log = FailureLog::default();
        for i in 0..=(MAX_FAILURE_RANGES as u64) {
            log.record(2 * i + 1, 2 * i + 1, cause("dup"));
        }
        // Ticket 2 succeeded but its neighbourhood was forgotten.
        assert!(matches!(
            log.lookup(2),
            Some(StoreError::OutcomeForgotten { .. })
        ));
        let newest = 2 * MAX_FAILURE_RANGES as u64 + 1;
        assert!(matches!(
            log.lookup(newest),
            Some(StoreError::EventNotWritten { .. })
        ));
        assert!(log.lookup(newest + 1).is_none());
    }
}
