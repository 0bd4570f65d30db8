//! Sandbar's event store: runs and the events that happened in them.
//!
//! The embedded backend is one SQLite file, `<dir>/sandbar.db`, in WAL mode.
//! Appends never wait for the database: they are queued to a single writer
//! thread that writes batches in one transaction each. A caller that needs
//! durability waits on the ticket `append` returned; an event of a run this
//! store created is durable once it is in the store's journal
//! (`journal.rs`), before the writer folds it into the database.
//! Reads go through a separate pool of read-only connections, so they never
//! block the writer. See README.md for the schema and the durability
//! guarantee.
//!
//! Architecture invariant: nothing reaches the database file without passing
//! the `SharedRedactor` given to `Store::open`. The documented exceptions
//! are configuration, not events: sealed secrets (ciphertext) and access
//! tokens (a hash of the bearer value), whose ids are checked instead.

#![forbid(unsafe_code)]

mod error;
mod inbox;
mod instance;
mod journal;
mod model;
mod reads;
mod recovery;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sandbar_redact::SharedRedactor;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection as _, SqlitePool};
use tokio::sync::{oneshot, watch};

pub use error::StoreError;
pub use model::{
    AUDIT_GENESIS, ApprovalDecision, ApprovalRecord, ApprovalStatus, AuditRecord, Decided,
    Direction, EventKind, EventRecord, NewApproval, NewAudit, NewEvent, NewRun, ParseEnumError,
    RunRecord, RunStatus, Spend, StoredSecret, StoredToken,
};
pub use schema::SCHEMA_VERSION;

use inbox::Urgency;
use instance::InstanceLock;
use journal::{Ack, Journal};
use writer::{Command, FailureLog, PreparedRun, PreparedToken, Writer};

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "sandbar.db";

/// How long a connection waits for another one's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Read connections; reads are occasional (the CLI, the UI) and each SQLite
/// connection costs a thread, so a few are plenty.
const READ_CONNECTIONS: u32 = 4;

/// How hard a commit pushes data to the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// `synchronous=NORMAL`: a committed transaction survives the process
    /// being killed, but the last transactions before a power loss or an OS
    /// crash may be lost (the file stays consistent).
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is flushed to the disk before it is
    /// acknowledged, so it also survives a power loss. Much slower per commit.
    Full,
}

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub sync: SyncMode,
    /// The most events written in one transaction.
    pub batch_max: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            sync: SyncMode::Normal,
            batch_max: 512,
        }
    }
}

/// Identifies an appended event; tickets increase in append order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// An event queued by [`Store::append_waited`], to be waited for.
#[must_use = "wait for the event with `durable`"]
pub struct Waiting<'a> {
    store: &'a Store,
    ticket: u64,
    /// The writer slept when the event was queued and was left asleep:
    /// committing the event, or waking the writer, is this handle's job.
    left_to_caller: bool,
    /// The event is in the journal (see `journal.rs`).
    journaled: bool,
}

impl Waiting<'_> {
    /// The event's ticket.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.ticket)
    }

    /// Resolves once the event is processed; `Ok` only if it was committed
    /// (see [`Store::durable`]).
    pub async fn durable(mut self) -> Result<(), StoreError> {
        if self.journaled {
            return self.store.durable(Ticket(self.ticket)).await;
        }
        if std::mem::take(&mut self.left_to_caller) {
            self.store.commit_or_nudge(self.ticket);
        }
        self.store.outcome(self.ticket).await
    }
}

impl Drop for Waiting<'_> {
    /// Not waited for after all: the writer commits the event.
    fn drop(&mut self) {
        if self.left_to_caller {
            self.store.inner.inbox.nudge();
        }
    }
}

/// A handle on an open store. Cheap to clone; every clone shares one writer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("issued", &self.inner.issued.load(Ordering::Relaxed))
            .field("processed", &*self.inner.processed.borrow())
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: PathBuf,
    /// The queue to the writer; ticket order and queue order are the same.
    inbox: Arc<inbox::Inbox>,
    /// The last ticket handed out.
    issued: AtomicU64,
    /// The highest ticket the writer has processed (committed or failed).
    processed: watch::Receiver<u64>,
    /// The last ticket a finished `flush` covered.
    flushed: AtomicU64,
    failures: Arc<FailureLog>,
    /// The writer's state: a handle that waits for its own event commits
    /// it here itself when the writer sleeps.
    core: writer::SharedCore,
    /// Whether handles may commit on their own thread: not when every
    /// commit syncs the disk (`SyncMode::Full`), which would stall the
    /// caller's runtime thread for the length of an fsync.
    commit_inline: bool,
    reads: SqlitePool,
    redactor: SharedRedactor,
    /// Where events of the runs this store created become durable first;
    /// none in `SyncMode::Full`.
    journal: Option<Arc<Journal>>,
    instance: InstanceLock,
}

impl Drop for Inner {
    /// The last handle is gone: the writer finishes what is queued and stops.
    fn drop(&mut self) {
        self.inbox.close();
    }
}

impl Store {
    /// Creates the directory if needed, opens `<dir>/sandbar.db` in WAL mode,
    /// applies migrations, marks runs left `active` by a process that died
    /// as `interrupted`, and starts the writer task. Needs a tokio runtime.
    pub async fn open(
        dir: &Path,
        redactor: SharedRedactor,
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::InvalidInput {
                what: "runtime",
                reason: "Store::open must be called inside a tokio runtime".to_owned(),
            });
        }
        let not_writable = |source| StoreError::DirNotWritable {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(not_writable)?;
        // Taking the instance lock also proves the directory is writable,
        // with a clearer message than SQLite would give.
        let instance = InstanceLock::acquire(dir).map_err(not_writable)?;
        match Store::open_locked(dir, redactor, options, instance).await {
            Ok(store) => Ok(store),
            Err((e, instance)) => {
                instance.remove();
                Err(e)
            }
        }
    }

    /// The rest of `open`, once this instance holds its lock; on failure the
    /// lock is handed back so that its file can be removed.
    async fn open_locked(
        dir: &Path,
        redactor: SharedRedactor,
        options: StoreOptions,
        instance: InstanceLock,
    ) -> Result<Store, (StoreError, InstanceLock)> {
        let path = dir.join(DB_FILE);
        let open_failed = |source| StoreError::Open {
            path: path.clone(),
            source,
        };

        let base = SqliteConnectOptions::new()
            .filename(&path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // Failures are reported through the store's own errors and logs;
            // sqlx's per-statement logging would cost time on every batch.
            .disable_statement_logging();
        let prepared = async {
            let mut conn = base
                .clone()
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .connect()
                .await
                .map_err(open_failed)?;
            schema::migrate(&mut conn, &path).await?;
            let mut writer = Self::writer_connection(&path, options.sync)?;
            // Before runs are marked interrupted: their ends are the times
            // of their last events.
            journal::recover(&mut writer, dir)?;
            recovery::interrupt_dead_owners(&mut conn, dir).await?;
            instance::remove_dead(dir);
            conn.close().await.map_err(open_failed)?;
            let reads = SqlitePoolOptions::new()
                .max_connections(READ_CONNECTIONS)
                .min_connections(0)
                .connect_with(base.read_only(true))
                .await
                .map_err(open_failed)?;
            let checkpointer = Self::writer_connection(&path, options.sync)?;
            Ok((writer, reads, checkpointer))
        };
        let (conn, reads, checkpointer) = match prepared.await {
            Ok(ready) => ready,
            Err(e) => return Err((e, instance)),
        };

        let batch_max = options.batch_max.max(1);
        let inbox = Arc::new(inbox::Inbox::new(inbox::HOLD, inbox::NAP, batch_max));
        let (processed_tx, processed) = watch::channel(0);
        let failures = Arc::new(FailureLog::default());
        let journal =
            (options.sync == SyncMode::Normal).then(|| Arc::new(Journal::new(dir, instance.id())));
        let spawned = writer::Checkpoints::spawn(checkpointer).and_then(|checkpoints| {
            let parts = writer::CoreParts {
                conn,
                checkpoints,
                processed: processed_tx,
                failures: Arc::clone(&failures),
                redactor: redactor.clone(),
                batch_max,
                owner: instance.id().to_owned(),
                journal: journal.clone(),
            };
            Writer::spawn(parts, Arc::clone(&inbox))
        });
        let core = match spawned {
            Ok((core, _thread)) => core,
            Err(source) => return Err((StoreError::Thread { source }, instance)),
        };

        Ok(Store {
            inner: Arc::new(Inner {
                path,
                inbox,
                issued: AtomicU64::new(0),
                processed,
                flushed: AtomicU64::new(0),
                failures,
                core,
                commit_inline: options.sync == SyncMode::Normal,
                reads,
                redactor,
                journal,
                instance,
            }),
        })
    }

    /// Opens a rusqlite connection for the writer side: the same settings as
    /// the store's, and checkpoints left to the background thread.
    fn writer_connection(path: &Path, sync: SyncMode) -> Result<rusqlite::Connection, StoreError> {
        let failed = |source| StoreError::Sqlite {
            context: "opening the write connection",
            source,
        };
        let conn = rusqlite::Connection::open(path).map_err(failed)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(failed)?;
        conn.pragma_update(
            None,
            "synchronous",
            match sync {
                SyncMode::Normal => "NORMAL",
                SyncMode::Full => "FULL",
            },
        )
        .map_err(failed)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(failed)?;
        conn.pragma_update(None, "journal_size_limit", writer::WAL_KEPT_BYTES)
            .map_err(failed)?;
        // A batch of events is several `INSERT`s in one transaction, and
        // each keeps a statement journal (to undo just that statement if a
        // row is refused): in memory, not in a temporary file, whose writes
        // were a tenth of the cost of recording a call.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(failed)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Creates the tenant `id` if it does not exist yet (`default` always
    /// does). Durable when it returns.
    pub async fn ensure_tenant(&self, id: &str, name: &str) -> Result<(), StoreError> {
        self.check_key("tenant id", id)?;
        let name = self.inner.redactor.redact_str(name);
        self.call(|reply| Command::EnsureTenant {
            id: id.to_owned(),
            name,
            reply,
        })
        .await
    }

    /// Records a new, active run. Durable when it returns. Text fields pass
    /// the redactor too; ids that redaction would alter are refused.
    pub async fn create_run(&self, run: &NewRun) -> Result<(), StoreError> {
        self.check_key("run id", &run.id)?;
        self.check_key("tenant id", &run.tenant)?;
        let mut labels = match &run.labels {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            labels @ serde_json::Value::Object(_) => labels.clone(),
            other => {
                return Err(StoreError::InvalidInput {
                    what: "labels",
                    reason: format!("expected a JSON object, got {}", json_type(other)),
                });
            }
        };
        let redactor = &self.inner.redactor;
        redactor.redact_json(&mut labels);
        let run = PreparedRun {
            id: run.id.clone(),
            tenant: run.tenant.clone(),
            scenario_name: redactor.redact_str(&run.scenario_name),
            scenario_hash: redactor.redact_str(&run.scenario_hash),
            seed: run.seed.to_string(),
            clock_start: model::db_time(&run.clock_start),
            started_at: model::db_time(&run.started_at),
            transport: redactor.redact_str(&run.transport),
            labels: labels.to_string(),
        };
        let (id, tenant) = (run.id.clone(), run.tenant.clone());
        self.call(|reply| Command::CreateRun { run, reply }).await?;
        if let Some(journal) = &self.inner.journal {
            journal.register_run(&id, &tenant);
        }
        Ok(())
    }

    /// Enqueues an event without waiting: the request path never waits on
    /// disk I/O. Events are written in the order they are appended.
    ///
    /// The writer task redacts the payload and every text field before
    /// writing; nothing raw reaches the file. Wait on the ticket with
    /// `durable` to know the event is on disk.
    pub fn append(&self, event: NewEvent) -> Ticket {
        Ticket(self.enqueue(event, false).ticket)
    }

    /// Queues an event: into the journal if its run allows (see
    /// `journal.rs`), else to the writer.
    fn enqueue(&self, event: NewEvent, waited: bool) -> journal::Queued {
        let inner = &self.inner;
        let queued = match &inner.journal {
            Some(journal) => {
                let item = match journal.eligible(&event) {
                    Some((run_id, tenant)) => Ok(writer::prepare_known(
                        event,
                        run_id,
                        tenant,
                        &inner.redactor,
                    )),
                    None => Err(event),
                };
                journal.queue(&inner.inbox, item, waited)
            }
            None => {
                let urgency = if waited {
                    Urgency::Inline
                } else {
                    Urgency::CanWait
                };
                let (ticket, left_to_caller) = inner
                    .inbox
                    .push_ticketed(urgency, |ticket| Command::Event { ticket, event });
                journal::Queued {
                    ticket,
                    journaled: false,
                    left_to_caller,
                }
            }
        };
        inner.issued.fetch_max(queued.ticket, Ordering::AcqRel);
        queued
    }

    /// Queues an event that the caller waits for at once, with
    /// [`Waiting::durable`] (a call's response, answered only once it is
    /// written).
    ///
    /// If the writer thread sleeps, the event is left to the caller: `durable`
    /// commits it (with whatever is queued before it) on the calling thread,
    /// which saves two thread wake-ups, or, when somebody else is committing
    /// right now, tells the writer. Otherwise the writer is told at once not
    /// to hold the event back. Nothing is lost if the caller never waits:
    /// dropping the [`Waiting`] tells the writer.
    pub fn append_waited(&self, event: NewEvent) -> Waiting<'_> {
        let queued = self.enqueue(event, true);
        Waiting {
            store: self,
            ticket: queued.ticket,
            left_to_caller: queued.left_to_caller,
            journaled: queued.journaled,
        }
    }

    /// Resolves once the event with that ticket, and every event appended
    /// before it, has been processed, and returns `Ok` only if that event was
    /// committed. An earlier event's failure goes to its own waiter (and to
    /// the log), not to this one.
    pub async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        // Ticket 0 is never issued: it stands for "nothing appended yet".
        if ticket.0 == 0 {
            return Ok(());
        }
        if ticket.0 > self.inner.issued.load(Ordering::Acquire) {
            return Err(StoreError::UnknownTicket { ticket });
        }
        if let Some(journal) = &self.inner.journal {
            match journal.acknowledge(ticket.0, || *self.inner.processed.borrow()) {
                Ack::Durable => return Ok(()),
                Ack::After(before) => {
                    self.commit_or_nudge(before);
                    return self.wait_processed(before).await;
                }
                Ack::Processed | Ack::Writer => {}
            }
        }
        self.commit_or_nudge(ticket.0);
        self.outcome(ticket.0).await
    }

    /// Waits until the writer has processed every event appended so far,
    /// so that a read sees them all (a journaled event is durable before
    /// it is in the database).
    async fn settle(&self) -> Result<(), StoreError> {
        let last = self.inner.issued.load(Ordering::Acquire);
        if self.processed(last) {
            return Ok(());
        }
        self.inner.inbox.nudge();
        self.wait_processed(last).await
    }

    /// Waits for every event appended so far. Fails if any event appended
    /// since the last `flush` (or since the store opened) could not be
    /// written, whether the writer got to it before this call or after: what
    /// a flush reports does not depend on how fast the writer was.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let since = self.inner.flushed.load(Ordering::Acquire);
        let last = self.inner.issued.load(Ordering::Acquire);
        self.commit_or_nudge(last);
        self.wait_processed(last).await?;
        self.inner.flushed.fetch_max(last, Ordering::AcqRel);
        match self.inner.failures.failures_in(since, last) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn processed(&self, ticket: u64) -> bool {
        *self.inner.processed.borrow() >= ticket
    }

    /// Somebody waits for `ticket`: unless it is processed already, commits
    /// it on this thread if the writer sleeps and nobody else is committing,
    /// or else tells the writer not to hold it back.
    fn commit_or_nudge(&self, ticket: u64) {
        if self.processed(ticket) {
            return;
        }
        let inner = &self.inner;
        let committed = inner.commit_inline
            && inner.inbox.inline_welcome()
            && writer::commit_here(&inner.core, &inner.inbox)
            && self.processed(ticket);
        if !committed {
            inner.inbox.nudge();
        }
    }

    /// Waits until `ticket` is processed and says whether it was written.
    /// The caller has made sure that somebody writes it.
    async fn outcome(&self, ticket: u64) -> Result<(), StoreError> {
        self.wait_processed(ticket).await?;
        match self.inner.failures.lookup(ticket) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn wait_processed(&self, ticket: u64) -> Result<(), StoreError> {
        let mut processed = self.inner.processed.clone();
        processed
            .wait_for(|&mark| mark >= ticket)
            .await
            .map(|_| ())
            .map_err(|_| StoreError::Closed)
    }

    /// Ends a run. Queued behind the events appended before it, so when it
    /// returns those events have been processed too.
    pub async fn end_run(
        &self,
        run_id: &str,
        status: RunStatus,
        ended_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(journal) = &self.inner.journal {
            journal.forget_run(run_id);
        }
        if status == RunStatus::Active {
            return Err(StoreError::InvalidInput {
                what: "run status",
                reason: "a run cannot end as active".to_owned(),
            });
        }
        let ended_at = model::db_time(&ended_at);
        self.call(|reply| Command::EndRun {
            run_id: run_id.to_owned(),
            status,
            ended_at,
            reply,
        })
        .await
    }

    /// The tenant's runs, newest first, with their event counts.
    pub async fn list_runs(
        &self,
        tenant: &str,
        limit: Option<usize>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.settle().await?;
        reads::list_runs(&self.inner.reads, tenant, limit).await
    }

    /// The run with exactly this id, or else the one run whose id starts with
    /// this prefix of at least 4 characters. `Ok(None)` if there is none;
    /// `StoreError::AmbiguousRun` if the prefix matches several.
    pub async fn find_run(
        &self,
        tenant: &str,
        id_or_prefix: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        self.settle().await?;
        reads::find_run(&self.inner.reads, tenant, id_or_prefix).await
    }

    /// A run's events, ordered by seq.
    pub async fn events(&self, run_id: &str) -> Result<Vec<EventRecord>, StoreError> {
        self.settle().await?;
        reads::events(&self.inner.reads, run_id).await
    }

    /// Appends an entry to its tenant's audit chain, its text redacted
    /// first. Durable when it returns.
    pub async fn audit(&self, entry: &NewAudit) -> Result<(), StoreError> {
        self.check_key("tenant id", &entry.tenant)?;
        let redactor = &self.inner.redactor;
        let mut detail = entry.detail.clone();
        redactor.redact_json(&mut detail);
        let entry = NewAudit {
            tenant: entry.tenant.clone(),
            actor: redactor.redact_str(&entry.actor),
            action: redactor.redact_str(&entry.action),
            detail,
        };
        self.call(|reply| Command::Audit { entry, reply }).await
    }

    /// Stores sealed secrets (inserted, or replacing those of the same
    /// tenant and name), all or none. They bypass the redactor: they are
    /// ciphertext, and their names are checked like ids. Durable when it
    /// returns.
    pub async fn put_secrets(&self, secrets: Vec<StoredSecret>) -> Result<(), StoreError> {
        for secret in &secrets {
            self.check_key("tenant id", &secret.tenant)?;
            self.check_key("secret name", &secret.name)?;
        }
        self.call(|reply| Command::PutSecrets { secrets, reply })
            .await
    }

    /// Removes a secret; false when there was none of that name.
    pub async fn remove_secret(&self, tenant: &str, name: &str) -> Result<bool, StoreError> {
        self.call(|reply| Command::RemoveSecret {
            tenant: tenant.to_owned(),
            name: name.to_owned(),
            reply,
        })
        .await
    }

    /// A tenant's secrets, sealed, by name.
    pub async fn secrets(&self, tenant: &str) -> Result<Vec<StoredSecret>, StoreError> {
        reads::secrets(&self.inner.reads, tenant).await
    }

    /// A tenant's audit trail, oldest first.
    pub async fn audit_trail(&self, tenant: &str) -> Result<Vec<AuditRecord>, StoreError> {
        reads::audit(&self.inner.reads, tenant).await
    }

    /// Stores a new access token. Durable when it returns.
    ///
    /// Tokens are configuration, not events: like sealed secrets they bypass
    /// the redactor. The id and tenant are checked like ids, and the hash
    /// must be a SHA-256 in lowercase hex (so the bearer value itself is
    /// refused); the other fields are written as given. The tenant must
    /// exist (`ensure_tenant`). An id or a hash already stored is refused
    /// with `StoreError::DuplicateToken`.
    pub async fn put_token(&self, token: StoredToken) -> Result<(), StoreError> {
        self.check_key("token id", &token.id)?;
        self.check_key("tenant id", &token.tenant)?;
        check_sha256("token hash", &token.hash)?;
        let token = PreparedToken {
            budget: token
                .budget
                .map(|b| storable("token budget", b))
                .transpose()?,
            calls_used: storable("token call count", token.calls_used)?,
            scopes: token.scopes.to_string(),
            created_at: model::db_time(&token.created_at),
            expires_at: token.expires_at.as_ref().map(model::db_time),
            revoked_at: token.revoked_at.as_ref().map(model::db_time),
            id: token.id,
            tenant: token.tenant,
            name: token.name,
            hash: token.hash,
            scenario: token.scenario,
            run: token.run,
        };
        self.call(|reply| Command::PutToken { token, reply }).await
    }

    /// The token whose bearer value hashes to `hash` (lowercase hex
    /// SHA-256), whatever its state: revoked and expired tokens too.
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<StoredToken>, StoreError> {
        reads::token_by_hash(&self.inner.reads, hash).await
    }

    /// One token of a tenant, by id.
    pub async fn token(&self, tenant: &str, id: &str) -> Result<Option<StoredToken>, StoreError> {
        reads::token(&self.inner.reads, tenant, id).await
    }

    /// A tenant's tokens, oldest first.
    pub async fn tokens(&self, tenant: &str) -> Result<Vec<StoredToken>, StoreError> {
        reads::tokens(&self.inner.reads, tenant).await
    }

    /// Revokes a token as of `at`; false when the tenant has no such token
    /// or it was already revoked. Durable when it returns.
    pub async fn revoke_token(
        &self,
        tenant: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.call(|reply| Command::RevokeToken {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            at: model::db_time(&at),
            reply,
        })
        .await
    }

    /// Counts one call against token `id`, atomically with checking it. A
    /// token that is unknown, revoked, expired (`expires_at <= now`) or over
    /// budget (`calls_used >= budget`) is reported as such and not counted
    /// (checked in that order); otherwise `calls_used` goes up by one and
    /// the new count is returned.
    ///
    /// Goes through the writer, in one `BEGIN IMMEDIATE` transaction, so it
    /// is serialised with every other write, including those of other
    /// processes sharing the file: a token revoked anywhere is refused here
    /// from the moment the revocation committed. Durable when it returns.
    pub async fn spend_token(&self, id: &str, now: DateTime<Utc>) -> Result<Spend, StoreError> {
        self.call(|reply| Command::SpendToken {
            id: id.to_owned(),
            now,
            reply,
        })
        .await
    }

    /// Stores a call waiting for a person's decision, as pending. The
    /// arguments pass the redactor (`redact_json`, as for `audit`), and so do
    /// the tool, rule, message and requester; the ids are checked like ids
    /// and `args_hash` must be a SHA-256 in lowercase hex. The tenant must
    /// exist. Durable when it returns.
    pub async fn request_approval(&self, approval: NewApproval) -> Result<(), StoreError> {
        self.check_key("approval id", &approval.id)?;
        self.check_key("tenant id", &approval.tenant)?;
        self.check_key("run id", &approval.run_id)?;
        check_sha256("arguments hash", &approval.args_hash)?;
        let redactor = &self.inner.redactor;
        let mut arguments = approval.arguments;
        redactor.redact_json(&mut arguments);
        let approval = NewApproval {
            tool: redactor.redact_str(&approval.tool),
            arguments,
            rule: redactor.redact_str(&approval.rule),
            message: redactor.redact_str(&approval.message),
            requested_by: redactor.redact_str(&approval.requested_by),
            ..approval
        };
        self.call(|reply| Command::RequestApproval { approval, reply })
            .await
    }

    /// One approval, by id, whatever its tenant and state.
    pub async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        reads::approval(&self.inner.reads, id).await
    }

    /// A tenant's approvals, newest first; only those still pending when
    /// `pending_only`. An approval past its expiry that nobody has marked
    /// expired yet is still pending.
    pub async fn approvals(
        &self,
        tenant: &str,
        pending_only: bool,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        reads::approvals(&self.inner.reads, tenant, pending_only).await
    }

    /// Records a decision on approval `id` of `tenant`, if it is still
    /// pending and `now` is before its `expires_at`. One whose expiry has
    /// passed is marked expired and `Decided::Expired` returned; one already
    /// expired also gives `Decided::Expired`, one already approved or denied
    /// `Decided::AlreadyDecided`, and another tenant's `Decided::NotFound`.
    ///
    /// `decision.args_hash` (a SHA-256 in lowercase hex) is stored as
    /// `decided_args_hash` as given: the caller states which arguments it
    /// reviewed, and the server compares that with the call's own hash.
    /// `by` and `reason` pass the redactor. Goes through the writer in one
    /// transaction, so a decision racing `expire_approval` (from any
    /// process) is either recorded or not, never both. Durable when it
    /// returns.
    pub async fn decide_approval(
        &self,
        tenant: &str,
        id: &str,
        decision: ApprovalDecision,
        now: DateTime<Utc>,
    ) -> Result<Decided, StoreError> {
        check_sha256("reviewed arguments hash", &decision.args_hash)?;
        let redactor = &self.inner.redactor;
        let decision = ApprovalDecision {
            by: redactor.redact_str(&decision.by),
            reason: decision.reason.as_deref().map(|r| redactor.redact_str(r)),
            ..decision
        };
        self.call(|reply| Command::DecideApproval {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            decision,
            now,
            reply,
        })
        .await
    }

    /// Marks approval `id` expired if it is still pending, whatever its
    /// `expires_at`, and returns the status it ends with: `Approved` or
    /// `Denied` if a decision landed first. An unknown id is
    /// `StoreError::UnknownApproval`. Goes through the writer, atomic with
    /// `decide_approval`; durable when it returns.
    pub async fn expire_approval(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalStatus, StoreError> {
        self.call(|reply| Command::ExpireApproval {
            id: id.to_owned(),
            now,
            reply,
        })
        .await
    }

    /// Flushes and stops the writer, leaving the file clean (WAL
    /// checkpointed). Runs of this store still active are marked
    /// interrupted. Every clone of this handle is closed with it.
    ///
    /// The file is closed even when the flush reports failed events; that
    /// error is returned afterwards.
    pub async fn close(self) -> Result<(), StoreError> {
        let flushed = self.flush().await;
        self.inner.reads.close().await;
        let closed = self.call(|reply| Command::Shutdown { reply }).await;
        self.inner.instance.remove();
        flushed.and(closed)
    }

    /// Sends a command to the writer and waits for its answer.
    async fn call<T, F>(&self, command: F) -> Result<T, StoreError>
    where
        F: FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Command,
    {
        let (reply, answer) = oneshot::channel();
        if !self.inner.inbox.push(Urgency::Waited, command(reply)) {
            return Err(StoreError::Closed);
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Ids are keys: redaction must not change them, or the row would be
    /// filed under another key. An id the redactor would alter is refused,
    /// which also keeps the secret it carries out of the file.
    fn check_key(&self, what: &'static str, id: &str) -> Result<(), StoreError> {
        if id.is_empty() {
            return Err(StoreError::InvalidInput {
                what,
                reason: "it is empty".to_owned(),
            });
        }
        if self.inner.redactor.redact_str(id) != id {
            return Err(StoreError::InvalidInput {
                what,
                reason: "it contains text the redactor masks, and ids must not carry secrets"
                    .to_owned(),
            });
        }
        Ok(())
    }
}

/// A count as stored: SQL integers are signed 64-bit, here and in
/// PostgreSQL, so larger values are refused rather than wrapped.
fn storable(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::InvalidInput {
        what,
        reason: format!("{value} is larger than the largest storable value (2^63 - 1)"),
    })
}

/// Hashes bypass the redactor (a digest can look like a credential to it),
/// so only the shape of one is accepted. The value is not echoed: it may be
/// the very bearer value that should have been hashed.
fn check_sha256(what: &'static str, value: &str) -> Result<(), StoreError> {
    if model::is_sha256_hex(value) {
        return Ok(());
    }
    Err(StoreError::InvalidInput {
        what,
        reason: format!(
            "expected a SHA-256 as 64 lowercase hex digits, got {} characters that are not one",
            value.chars().count()
        ),
    })
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
