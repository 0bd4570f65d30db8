//! The event journal: where an event of a run this store created becomes
//! durable, before the writer folds it into the database.
//!
//! Committing a call's events to SQLite costs more than everything else a
//! replayed or stubbed call does: B-tree pages rewritten for every run a
//! commit touches, WAL frames, and a thread that waits for them. So an
//! event of a run that this store instance created (whose ids it checked,
//! and which exists in the database) is redacted on its caller's thread,
//! appended to this instance's journal — one `write` for everything queued
//! since the last one — and answered; the writer inserts it into the
//! database later with many others in one transaction. A `write` that has
//! returned survives the process being killed, as a commit with
//! `synchronous=NORMAL` does; neither survives an OS crash, which
//! `SyncMode::Full` is for (it has no journal).
//!
//! The journal lives next to the instance's lock,
//! `<dir>/store-instances/<id>.<n>.journal`, in segments of
//! [`SEGMENT_BYTES`]; a segment is deleted once every event in it is in the
//! database, and all of them at a clean close. When a store opens, the
//! segments of instances that are gone (their lock can be taken, or is
//! missing) are folded in with `INSERT OR IGNORE` — an event may be in both
//! places — and deleted: that is how an acknowledged event outlives a
//! killed process. Until an event is folded, only this process sees it
//! (its reads wait for the fold); other processes see it once the writer
//! has folded it, within [`crate::inbox::HOLD`] or so.
//!
//! Only what cannot fail in the database goes to the journal: the run was
//! created by this instance (so the foreign key holds) and its `seq` is
//! larger than any journaled before for that run (so the key is unique).
//! Any other event takes the writer's path, checked and committed before
//! its waiter is answered, and a journaled event is acknowledged only once
//! every such event queued before it has been processed, so "every event
//! before an acknowledged one is durable" still holds.
//!
//! Format: an 8-byte header, `SBJRNL01`, then records: a little-endian
//! `u32` length and a body of `i64` seq, `u8` kind, `u8` direction, and the
//! run id, tenant, method, request id, virtual time, wall time and payload
//! as `u32`-length-prefixed UTF-8 (`u32::MAX` for an absent method or
//! request id). Every text in it has passed the redactor. A record cut
//! short at the end of a segment (the process died in the middle of a
//! `write`) was never acknowledged, and is ignored.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;

use crate::StoreError;
use crate::inbox::{Inbox, Urgency};
use crate::instance::{Liveness, liveness};
use crate::model::{Direction, EventKind, NewEvent};
use crate::writer::{Command, Row};

/// A segment this long is closed and the next write starts another, so
/// that folded events can be let go of under a steady load.
const SEGMENT_BYTES: u64 = 8 << 20;

/// The first bytes of every segment: the format and its version.
const MAGIC: &[u8; 8] = b"SBJRNL01";

/// Marks an absent optional text.
const NONE: u32 = u32::MAX;

/// What [`Journal::acknowledge`] says about a ticket.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ack {
    /// The writer has processed it: its outcome is in the failure log.
    Processed,
    /// It takes the writer's path: wait for the writer.
    Writer,
    /// It is in the journal, and so is everything before it.
    Durable,
    /// It is in the journal, but an event queued before it, this ticket,
    /// takes the writer's path: wait until the writer has processed it.
    After(u64),
}

/// How a journaled event was queued.
pub(crate) struct Queued {
    pub ticket: u64,
    /// In the journal (or going there): durable without the writer.
    pub journaled: bool,
    /// For a waited event on the writer's path: committing it, or waking
    /// the writer, is the caller's job (see `Urgency::Inline`).
    pub left_to_caller: bool,
}

pub(crate) struct Journal {
    /// `<dir>/store-instances`.
    dir: PathBuf,
    /// This store instance's id.
    id: String,
    /// [`SEGMENT_BYTES`], but for tests.
    segment_bytes: u64,
    state: Mutex<State>,
}

/// A run this instance created, and the last seq journaled for it.
struct RunSlot {
    run_id: Arc<str>,
    tenant: Arc<str>,
    last: Option<u64>,
}

struct State {
    /// The segment being written, opened at the first write.
    file: Option<File>,
    /// Its number, and its length.
    segment: u64,
    size: u64,
    /// The last ticket written to it.
    segment_last: u64,
    /// Closed segments, and the last ticket in each.
    sealed: VecDeque<(PathBuf, u64)>,
    /// Records queued since the last write, and the last ticket among them.
    buffer: Vec<u8>,
    buffered_last: u64,
    /// Every journaled ticket up to here is durable.
    written: u64,
    runs: HashMap<String, RunSlot>,
    /// Tickets on the writer's path that it may not have processed yet.
    slow: BTreeSet<u64>,
    /// A fold failed: the segments must outlive this process.
    keep: bool,
}

impl Journal {
    pub(crate) fn new(dir: &Path, id: &str) -> Journal {
        Journal {
            dir: crate::instance::instances_dir(dir),
            id: id.to_owned(),
            segment_bytes: SEGMENT_BYTES,
            state: Mutex::new(State {
                file: None,
                segment: 0,
                size: 0,
                segment_last: 0,
                sealed: VecDeque::new(),
                buffer: Vec::with_capacity(4096),
                buffered_last: 0,
                written: 0,
                runs: HashMap::new(),
                slow: BTreeSet::new(),
                keep: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A run this instance has created: its events may be journaled.
    pub(crate) fn register_run(&self, run_id: &str, tenant: &str) {
        self.lock().runs.insert(
            run_id.to_owned(),
            RunSlot {
                run_id: Arc::from(run_id),
                tenant: Arc::from(tenant),
                last: None,
            },
        );
    }

    /// A run that has ended: its later events, if any, take the writer's
    /// path.
    pub(crate) fn forget_run(&self, run_id: &str) {
        self.lock().runs.remove(run_id);
    }

    /// The interned ids of `event`'s run, if the event may be journaled as
    /// things stand (checked again when it is queued).
    pub(crate) fn eligible(&self, event: &NewEvent) -> Option<(Arc<str>, Arc<str>)> {
        if i64::try_from(event.seq).is_err() {
            return None;
        }
        let state = self.lock();
        let slot = state.runs.get(&event.run_id)?;
        (*slot.tenant == *event.tenant && slot.last.is_none_or(|last| event.seq > last))
            .then(|| (Arc::clone(&slot.run_id), Arc::clone(&slot.tenant)))
    }

    /// Queues an event, prepared by its caller (`Ok`) or raw for the writer
    /// (`Err`), and, if `waited` and journaled, writes the journal before
    /// returning. Tickets are handed out here, under the journal's lock, so
    /// the journal knows every ticket on the writer's path before a later
    /// one is acknowledged.
    pub(crate) fn queue(&self, inbox: &Inbox, item: Result<Row, NewEvent>, waited: bool) -> Queued {
        let mut state = self.lock();
        let journal = match &item {
            Ok(row) => state
                .runs
                .get(&*row.run_id)
                .is_some_and(|slot| slot.last.is_none_or(|last| (row.seq as u64) > last)),
            Err(_) => false,
        };
        if journal && let Ok(mut row) = item {
            encode(&mut state.buffer, &row);
            let seq = row.seq as u64;
            let run = row.run_id.clone();
            row.journaled = true;
            // A waited event wakes a writer asleep for good, so that other
            // processes see it soon; one nobody waits for yet waits for
            // company, as it would without a journal.
            let urgency = if waited {
                Urgency::Soon
            } else {
                Urgency::CanWait
            };
            let (ticket, _) = inbox.push_ticketed(urgency, |ticket| {
                row.ticket = ticket;
                Command::Row { row }
            });
            state.buffered_last = ticket;
            if let Some(slot) = state.runs.get_mut(&*run) {
                slot.last = Some(seq);
            }
            if waited {
                self.write(&mut state);
            }
            return Queued {
                ticket,
                journaled: true,
                left_to_caller: false,
            };
        }
        let urgency = if waited {
            Urgency::Inline
        } else {
            Urgency::CanWait
        };
        let (ticket, left_to_caller) = match item {
            Ok(mut row) => inbox.push_ticketed(urgency, |ticket| {
                row.ticket = ticket;
                Command::Row { row }
            }),
            Err(event) => inbox.push_ticketed(urgency, |ticket| Command::Event { ticket, event }),
        };
        state.slow.insert(ticket);
        Queued {
            ticket,
            journaled: false,
            left_to_caller,
        }
    }

    /// Whether `ticket` is durable, given the writer's processed mark:
    /// writes the journal first if the ticket is still in the buffer.
    pub(crate) fn acknowledge(&self, ticket: u64, processed: impl Fn() -> u64) -> Ack {
        let mut state = self.lock();
        let processed = processed();
        if ticket <= processed {
            return Ack::Processed;
        }
        let later = state.slow.split_off(&(processed + 1));
        state.slow = later;
        if state.slow.contains(&ticket) {
            return Ack::Writer;
        }
        if state.written < ticket {
            self.write(&mut state);
            if state.slow.contains(&ticket) {
                // The write failed: the writer has it now.
                return Ack::Writer;
            }
        }
        match state.slow.range(..ticket).next_back() {
            Some(&before) => Ack::After(before),
            None => Ack::Durable,
        }
    }

    /// Writes what is buffered. A failed write hands the buffered events
    /// to the writer's path (they are queued for it anyway), and closes the
    /// segment, whose end may now hold a partial record.
    fn write(&self, state: &mut State) {
        if state.buffer.is_empty() {
            state.written = state.written.max(state.buffered_last);
            return;
        }
        match self.write_buffer(state) {
            Ok(()) => {
                state.segment_last = state.buffered_last;
            }
            Err(e) => {
                tracing::warn!(error = %e, dir = %self.dir.display(), "could not write the store's journal; its events wait for the database instead");
                let (from, to) = (state.written + 1, state.buffered_last);
                state.slow.extend(from..=to);
                if state.file.take().is_some() {
                    self.seal(state);
                }
            }
        }
        state.buffer.clear();
        state.written = state.buffered_last;
    }

    fn write_buffer(&self, state: &mut State) -> std::io::Result<()> {
        if state.file.is_some() && state.size >= self.segment_bytes {
            state.file = None;
            self.seal(state);
        }
        let file = match &mut state.file {
            Some(file) => file,
            None => {
                state.segment += 1;
                let mut file = OpenOptions::new()
                    .append(true)
                    .create_new(true)
                    .open(self.segment_path(state.segment))?;
                file.write_all(MAGIC)?;
                state.size = MAGIC.len() as u64;
                state.segment_last = 0;
                state.file.insert(file)
            }
        };
        file.write_all(&state.buffer)?;
        state.size += state.buffer.len() as u64;
        Ok(())
    }

    /// Files the current segment (already closed) among the sealed ones.
    fn seal(&self, state: &mut State) {
        let path = self.segment_path(state.segment);
        let last = state.segment_last.max(state.written);
        state.sealed.push_back((path, last));
    }

    fn segment_path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("{}.{n}.journal", self.id))
    }

    /// The writer has processed every ticket up to `mark`: segments whose
    /// events are all in the database go.
    pub(crate) fn folded(&self, mark: u64) {
        let mut state = self.lock();
        let later = state.slow.split_off(&(mark + 1));
        state.slow = later;
        if state.buffered_last <= mark && state.written < state.buffered_last {
            // In the database already: no need to write them at all.
            state.buffer.clear();
            state.written = state.buffered_last;
        }
        if state.keep {
            return;
        }
        while let Some((_, last)) = state.sealed.front()
            && *last <= mark
        {
            if let Some((path, _)) = state.sealed.pop_front() {
                remove(&path);
            }
        }
    }

    /// A journaled event could not be folded: keep every segment.
    pub(crate) fn keep(&self) {
        self.lock().keep = true;
    }

    /// At a clean close, every event folded: the segments go.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        if state.keep {
            tracing::error!(dir = %self.dir.display(), id = %self.id, "some journaled events could not be written to the database; the journal is kept, and the next open folds it in");
            return;
        }
        if state.file.take().is_some() {
            remove(&self.segment_path(state.segment));
        }
        for (path, _) in std::mem::take(&mut state.sealed) {
            remove(&path);
        }
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove a journal segment");
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.extend_from_slice(&NONE.to_le_bytes()),
    }
}

/// Appends `row`'s record to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, row: &Row) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&row.seq.to_le_bytes());
    out.push(index_of(
        EventKind::ALL.iter().map(|k| k.as_str()),
        row.kind,
    ));
    out.push(index_of(
        Direction::ALL.iter().map(|d| d.as_str()),
        row.direction,
    ));
    put_str(out, &row.run_id);
    put_str(out, &row.tenant);
    put_opt(out, row.method.as_deref());
    put_opt(out, row.request_id.as_deref());
    put_str(out, &row.virtual_time);
    put_str(out, &row.wall_time);
    put_str(out, &row.payload);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

fn index_of<'a>(mut names: impl Iterator<Item = &'a str>, name: &str) -> u8 {
    names.position(|n| n == name).unwrap_or(u8::MAX as usize) as u8
}

/// Reads records from a segment's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn opt(&mut self) -> Result<Option<Arc<str>>, String> {
        let len = self.u32().ok_or("a text runs past its record")?;
        if len == NONE {
            return Ok(None);
        }
        let bytes = self
            .take(len as usize)
            .ok_or("a text runs past its record")?;
        let text = std::str::from_utf8(bytes).map_err(|_| "a text is not UTF-8")?;
        Ok(Some(Arc::from(text)))
    }

    fn str(&mut self) -> Result<Arc<str>, String> {
        self.opt()?
            .ok_or_else(|| "a required text is absent".to_owned())
    }
}

/// What a segment holds: its records, and why reading stopped early, if
/// it did for another reason than a record cut short at the end.
struct Decoded {
    rows: Vec<Row>,
    damage: Option<String>,
    cut_short: bool,
}

fn decode(bytes: &[u8]) -> Decoded {
    let mut out = Decoded {
        rows: Vec::new(),
        damage: None,
        cut_short: false,
    };
    let Some(body) = bytes.strip_prefix(MAGIC.as_slice()) else {
        if MAGIC.starts_with(bytes) {
            // Created, then killed before its header was written.
            out.cut_short = !bytes.is_empty();
        } else {
            out.damage = Some("it does not start with a journal header".to_owned());
        }
        return out;
    };
    let mut records = Reader { bytes: body };
    while !records.bytes.is_empty() {
        let Some(len) = records.u32() else {
            out.cut_short = true;
            break;
        };
        let Some(record) = records.take(len as usize) else {
            out.cut_short = true;
            break;
        };
        match decode_record(record) {
            Ok(row) => out.rows.push(row),
            Err(reason) => {
                out.damage = Some(format!("record {}: {reason}", out.rows.len() + 1));
                break;
            }
        }
    }
    out
}

fn decode_record(record: &[u8]) -> Result<Row, String> {
    let mut r = Reader { bytes: record };
    let seq = i64::from_le_bytes(
        r.take(8)
            .ok_or("the record is too short")?
            .try_into()
            .map_err(|_| "the record is too short")?,
    );
    let fixed = r.take(2).ok_or("the record is too short")?;
    let kind = EventKind::ALL
        .get(fixed[0] as usize)
        .ok_or("an unknown event kind")?
        .as_str();
    let direction = Direction::ALL
        .get(fixed[1] as usize)
        .ok_or("an unknown direction")?
        .as_str();
    let row = Row {
        ticket: 0,
        seq,
        kind,
        direction,
        run_id: r.str()?,
        tenant: r.str()?,
        method: r.opt()?,
        request_id: r.opt()?,
        virtual_time: r.str()?,
        wall_time: r.str()?,
        payload: r.str()?,
        journaled: true,
    };
    if !r.bytes.is_empty() {
        return Err("the record has bytes past its last field".to_owned());
    }
    if serde_json::from_str::<serde::de::IgnoredAny>(&row.payload).is_err() {
        return Err("its payload is not JSON".to_owned());
    }
    Ok(row)
}

const RECOVER_SQL: &str = "INSERT OR IGNORE INTO events (run_id, seq, tenant_id, kind, direction, method, request_id, virtual_time, wall_time, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Folds into the database the journals of store instances that are gone,
/// and deletes them; returns how many events were missing from it. A
/// damaged segment's readable records are folded and the file is renamed
/// `*.damaged` for a person to look at.
pub(crate) fn recover(conn: &mut Connection, dir: &Path) -> Result<usize, StoreError> {
    let instances = crate::instance::instances_dir(dir);
    let Ok(entries) = std::fs::read_dir(&instances) else {
        return Ok(0);
    };
    let mut journals: BTreeMap<String, Vec<(u64, PathBuf)>> = BTreeMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".journal")) else {
            continue;
        };
        let Some((id, n)) = stem.rsplit_once('.') else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else {
            continue;
        };
        journals
            .entry(id.to_owned())
            .or_default()
            .push((n, entry.path()));
    }
    let mut recovered = 0;
    for (id, mut segments) in journals {
        if liveness(dir, &id) != Liveness::Dead {
            continue;
        }
        segments.sort();
        let mut damaged = Vec::new();
        let tx = conn
            .transaction()
            .map_err(StoreError::sqlite("folding a journal in"))?;
        for (_, path) in &segments {
            let bytes = match std::fs::read(path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(StoreError::Journal {
                        path: path.clone(),
                        reason: e.to_string(),
                    });
                }
            };
            let decoded = decode(&bytes);
            if let Some(reason) = &decoded.damage {
                tracing::error!(path = %path.display(), reason = %reason, "a journal segment is damaged; the records before the damage are folded in");
                damaged.push(path.clone());
            }
            let mut insert = tx
                .prepare_cached(RECOVER_SQL)
                .map_err(StoreError::sqlite("folding a journal in"))?;
            for row in &decoded.rows {
                let done = insert.execute(rusqlite::params![
                    &*row.run_id,
                    row.seq,
                    &*row.tenant,
                    row.kind,
                    row.direction,
                    row.method.as_deref(),
                    row.request_id.as_deref(),
                    &*row.virtual_time,
                    &*row.wall_time,
                    &*row.payload,
                ]);
                match done {
                    Ok(n) => recovered += n,
                    Err(e) => {
                        tracing::error!(path = %path.display(), run = %row.run_id, seq = row.seq, error = %e, "a journaled event could not be folded in");
                    }
                }
            }
        }
        tx.commit()
            .map_err(StoreError::sqlite("folding a journal in"))?;
        for (_, path) in &segments {
            if damaged.contains(path) {
                let mut to = path.clone().into_os_string();
                to.push(".damaged");
                if let Err(e) = std::fs::rename(path, &to) {
                    tracing::warn!(path = %path.display(), error = %e, "could not set a damaged journal segment aside");
                }
            } else {
                remove(path);
            }
        }
    }
    if recovered > 0 {
        tracing::info!(
            events = recovered,
            "events acknowledged by a process that died were folded in from its journal"
        );
    }
    Ok(recovered)
}

#[cfg(test)]
// Tests fail by panicking; unwrapping is how they say so.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(seq: i64, method: Option<&str>, payload: &str) -> Row {
        Row {
            ticket: 0,
            run_id: Arc::from("run-1"),
            tenant: Arc::from("default"),
            seq,
            kind: EventKind::Response.as_str(),
            direction: Direction::ToClient.as_str(),
            method: method.map(Arc::from),
            request_id: None,
            virtual_time: Arc::from("2026-01-01T00:00:00.000000000Z"),
            wall_time: Arc::from("2026-11-28T10:00:00.123456789Z"),
            payload: Arc::from(payload),
            journaled: true,
        }
    }

    fn same(a: &Row, b: &Row) -> bool {
        (
            &a.run_id,
            &a.tenant,
            a.seq,
            a.kind,
            a.direction,
            &a.method,
            &a.request_id,
            &a.virtual_time,
            &a.wall_time,
            &a.payload,
        ) == (
            &b.run_id,
            &b.tenant,
            b.seq,
            b.kind,
            b.direction,
            &b.method,
            &b.request_id,
            &b.virtual_time,
            &b.wall_time,
            &b.payload,
        )
    }

    fn segment(rows: &[Row]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        for row in rows {
            encode(&mut bytes, row);
        }
        bytes
    }

    fn new_run(id: &str) -> crate::NewRun {
        crate::NewRun {
            id: id.to_owned(),
            tenant: "default".to_owned(),
            scenario_name: "s".to_owned(),
            scenario_hash: "sha256:00".to_owned(),
            seed: 1,
            clock_start: chrono::Utc::now(),
            started_at: chrono::Utc::now(),
            transport: "stdio".to_owned(),
            labels: serde_json::Value::Null,
        }
    }

    async fn open(dir: &Path) -> crate::Store {
        let redactor = sandbar_redact::SharedRedactor::new(sandbar_redact::Redactor::new());
        crate::Store::open(dir, redactor, crate::StoreOptions::default())
            .await
            .unwrap()
    }

    fn segments(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(crate::instance::instances_dir(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".journal"))
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_dead_instances_journal_is_folded_in_at_open_and_a_live_ones_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        store.create_run(&new_run("run-1")).await.unwrap();
        let event = |seq| crate::NewEvent {
            run_id: "run-1".to_owned(),
            tenant: "default".to_owned(),
            seq,
            kind: EventKind::Request,
            direction: Direction::ToServer,
            method: None,
            request_id: None,
            virtual_time: chrono::Utc::now(),
            wall_time: chrono::Utc::now(),
            payload: serde_json::json!({"n": seq}),
        };
        // Already in the database: a journal may repeat what was folded.
        store.durable(store.append(event(1))).await.unwrap();
        store.close().await.unwrap();
        assert_eq!(
            segments(dir.path()),
            Vec::<String>::new(),
            "a clean close deletes the journal"
        );

        // A dead instance (its lock file gone) left two segments, the second
        // one's last record cut short by the kill.
        let instances = crate::instance::instances_dir(dir.path());
        let dead = "0123abcd-dead";
        std::fs::write(
            instances.join(format!("{dead}.1.journal")),
            segment(&[row(1, None, r#"{"n":1}"#), row(2, Some("m"), r#"{"n":2}"#)]),
        )
        .unwrap();
        let mut cut = segment(&[row(3, None, r#"{"n":3}"#), row(4, None, r#"{"n":4}"#)]);
        cut.truncate(cut.len() - 3);
        std::fs::write(instances.join(format!("{dead}.2.journal")), cut).unwrap();
        // A damaged one: what comes before the damage is kept.
        let mut damaged = segment(&[row(5, None, r#"{"n":5}"#), row(6, None, "{}")]);
        let at = segment(&[row(5, None, r#"{"n":5}"#)]).len() + 4 + 8;
        damaged[at] = 99;
        std::fs::write(instances.join(format!("{dead}.3.journal")), damaged).unwrap();
        // A live instance's journal is its own business.
        let live = crate::instance::InstanceLock::acquire(dir.path()).unwrap();
        let live_segment = format!("{}.1.journal", live.id());
        std::fs::write(
            instances.join(&live_segment),
            segment(&[row(9, None, "{}")]),
        )
        .unwrap();

        let store = open(dir.path()).await;
        let events = store.events("run-1").await.unwrap();
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 5]);
        assert_eq!(events[0].payload, serde_json::json!({"n": 1}));
        assert_eq!(events[1].method.as_deref(), Some("m"));
        assert_eq!(
            segments(dir.path()),
            [format!("{dead}.3.journal.damaged"), live_segment.clone()]
        );
        store.close().await.unwrap();
        drop(live);
    }

    #[tokio::test]
    async fn events_are_journaled_only_for_runs_this_store_created() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        store.create_run(&new_run("mine")).await.unwrap();
        let journal = store.inner.journal.clone().unwrap();
        let event = |run: &str, seq| crate::NewEvent {
            run_id: run.to_owned(),
            tenant: "default".to_owned(),
            seq,
            kind: EventKind::Request,
            direction: Direction::ToServer,
            method: None,
            request_id: None,
            virtual_time: chrono::Utc::now(),
            wall_time: chrono::Utc::now(),
            payload: serde_json::Value::Null,
        };
        assert!(journal.eligible(&event("mine", 0)).is_some());
        assert!(journal.eligible(&event("other", 0)).is_none());
        let mut other_tenant = event("mine", 0);
        other_tenant.tenant = "acme".to_owned();
        assert!(journal.eligible(&other_tenant).is_none());
        assert!(journal.eligible(&event("mine", u64::MAX)).is_none());

        let first = store.append_waited(event("mine", 3));
        assert!(first.journaled);
        first.durable().await.unwrap();
        // Not after the last journaled seq: the writer checks it, and a
        // duplicate is refused as before.
        assert!(journal.eligible(&event("mine", 3)).is_none());
        let again = store.append_waited(event("mine", 3));
        assert!(!again.journaled);
        let err = again.durable().await.unwrap_err();
        assert!(err.to_string().contains("appended twice"), "{err}");
        // An unknown run takes the writer's path, and is refused there.
        let unknown = store.append_waited(event("nobody", 1));
        assert!(!unknown.journaled);
        assert!(unknown.durable().await.is_err());
        // A journaled event after one on the writer's path is acknowledged
        // only once that one is processed.
        let slow = store.append(event("nobody", 2));
        let fast = store.append_waited(event("mine", 4));
        assert!(fast.journaled);
        fast.durable().await.unwrap();
        assert!(*store.inner.processed.borrow() >= slow.0);

        store
            .end_run("mine", crate::RunStatus::Completed, chrono::Utc::now())
            .await
            .unwrap();
        assert!(
            journal.eligible(&event("mine", 10)).is_none(),
            "an ended run's events take the writer's path"
        );
        // The close's flush reports the two refused events.
        assert!(store.close().await.is_err());
    }

    #[test]
    fn segments_rotate_and_each_goes_once_its_events_are_folded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(crate::instance::instances_dir(dir.path())).unwrap();
        let mut journal = Journal::new(dir.path(), "0abc");
        journal.segment_bytes = 1024;
        journal.register_run("run-1", "default");
        let inbox = Inbox::new(crate::inbox::HOLD, crate::inbox::NAP, 1 << 20);
        let payload = format!(r#"{{"pad":"{}"}}"#, "x".repeat(100));
        for seq in 1..=40 {
            let queued = journal.queue(&inbox, Ok(row(seq, None, &payload)), true);
            assert!(queued.journaled);
            assert_eq!(queued.ticket, seq as u64);
            assert_eq!(journal.acknowledge(queued.ticket, || 0), Ack::Durable);
        }
        let journaled_seqs = |dir: &Path| {
            let mut seqs = Vec::new();
            for name in segments(dir) {
                let bytes = std::fs::read(crate::instance::instances_dir(dir).join(name)).unwrap();
                seqs.extend(decode(&bytes).rows.iter().map(|r| r.seq));
            }
            seqs.sort();
            seqs
        };
        let all = segments(dir.path()).len();
        assert!(all > 3, "{all} segments");
        assert_eq!(journaled_seqs(dir.path()), (1..=40).collect::<Vec<i64>>());

        journal.folded(20);
        let left = journaled_seqs(dir.path());
        assert!(segments(dir.path()).len() < all);
        assert!(left.len() < 40);
        assert!((21..=40).all(|seq| left.contains(&seq)), "{left:?}");

        journal.folded(40);
        assert_eq!(
            segments(dir.path()).len(),
            1,
            "the segment being written stays"
        );
        journal.close();
        assert_eq!(segments(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn a_kept_journal_outlives_the_close() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(crate::instance::instances_dir(dir.path())).unwrap();
        let journal = Journal::new(dir.path(), "0abc");
        journal.register_run("run-1", "default");
        let inbox = Inbox::new(crate::inbox::HOLD, crate::inbox::NAP, 1 << 20);
        journal.queue(&inbox, Ok(row(1, None, "{}")), true);
        journal.keep();
        journal.folded(1);
        journal.close();
        assert_eq!(segments(dir.path()), ["0abc.1.journal"]);
    }

    proptest::proptest! {
        /// Whatever a segment holds — records cut anywhere, bytes flipped
        /// anywhere — reading it never panics, and what it returns is the
        /// records that were written, in order, up to the first damage.
        #[test]
        fn reading_any_segment_returns_a_prefix_of_what_was_written(
            payloads in proptest::collection::vec("[ -~é☃]{0,40}", 0..6),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            flip in proptest::option::of((proptest::prelude::any::<proptest::sample::Index>(), 1u8..=255)),
        ) {
            let rows: Vec<Row> = payloads
                .iter()
                .enumerate()
                .map(|(i, p)| row(i as i64, Some(p), &serde_json::Value::String(p.clone()).to_string()))
                .collect();
            let mut bytes = segment(&rows);
            let len = cut.index(bytes.len() + 1);
            bytes.truncate(len);
            if let Some((at, xor)) = flip && !bytes.is_empty() {
                let at = at.index(bytes.len());
                bytes[at] ^= xor;
            }
            let decoded = decode(&bytes);
            if flip.is_none() {
                proptest::prop_assert!(decoded.damage.is_none());
            }
            for (i, got) in decoded.rows.iter().enumerate() {
                // A flipped byte inside a text may still decode; every
                // record read is whole and in its place.
                proptest::prop_assert_eq!(got.journaled, true);
                if flip.is_none() {
                    proptest::prop_assert!(same(got, &rows[i]));
                }
            }
            if flip.is_none() {
                proptest::prop_assert!(decoded.rows.len() <= rows.len());
            }
        }
    }

    #[test]
    fn records_round_trip() {
        let rows = [
            row(1, Some("tools/call"), r#"{"a":"é ☃","n":[1,2.5,null]}"#),
            row(2, None, "null"),
            row(i64::MAX, Some(""), "\"\""),
        ];
        let decoded = decode(&segment(&rows));
        assert_eq!(decoded.damage, None);
        assert!(!decoded.cut_short);
        assert_eq!(decoded.rows.len(), 3);
        for (a, b) in rows.iter().zip(&decoded.rows) {
            assert!(same(a, b));
        }
    }

    #[test]
    fn a_record_cut_short_anywhere_is_ignored_and_the_ones_before_it_kept() {
        let rows = [row(1, Some("m"), "{}"), row(2, Some("m"), r#"{"x":1}"#)];
        let whole = segment(&rows);
        let first_end = segment(&rows[..1]).len();
        for cut in 0..whole.len() {
            let decoded = decode(&whole[..cut]);
            assert_eq!(decoded.damage, None, "cut at {cut}");
            let expect = if cut >= first_end { 1 } else { 0 };
            assert_eq!(decoded.rows.len(), expect, "cut at {cut}");
            let whole_records = [0, MAGIC.len(), first_end];
            assert_eq!(
                decoded.cut_short,
                !whole_records.contains(&cut),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn damage_stops_the_reading_and_says_where() {
        let rows = [row(1, None, "{}"), row(2, None, "{}")];
        let mut bytes = segment(&rows);
        // The second record's kind byte: header, first record, length, seq.
        let at = segment(&rows[..1]).len() + 4 + 8;
        bytes[at] = 200;
        let decoded = decode(&bytes);
        assert_eq!(decoded.rows.len(), 1);
        assert_eq!(
            decoded.damage.as_deref(),
            Some("record 2: an unknown event kind")
        );

        assert!(decode(b"not a journal at all").damage.is_some());
        let mut bad_json = segment(&[row(1, None, "{")]);
        assert!(decode(&bad_json).damage.is_some());
        bad_json.truncate(MAGIC.len());
        assert!(decode(&bad_json).rows.is_empty());
    }
}
