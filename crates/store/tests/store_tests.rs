//! End-to-end tests of the event store through its public API, on real files
//! in temporary directories: round trips, reopening, recovery of runs left
//! active, redaction down to the raw file bytes, concurrency, failing writes,
//! and a child process killed with SIGKILL mid-write.

// Tests fail by panicking; unwrapping is how they say so.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::{DateTime, Duration, TimeZone, Utc};
use sandbar_redact::{Redactor, SharedRedactor};
use sandbar_store::{
    Direction, EventKind, EventRecord, NewEvent, NewRun, RunStatus, Store, StoreError,
    StoreOptions, SyncMode, Ticket,
};
use serde_json::json;
use sqlx::{Connection, SqliteConnection};

const SECRET: &str = "sk-live-7f3a9c2e41d8b6f05e9a";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 9, 0, 0).unwrap()
}

fn plain_redactor() -> SharedRedactor {
    SharedRedactor::new(Redactor::new())
}

fn secret_redactor() -> SharedRedactor {
    SharedRedactor::new(
        Redactor::builder()
            .secret("mailer_token", SECRET)
            .unwrap()
            .build(),
    )
}

async fn open(dir: &Path) -> Store {
    Store::open(dir, plain_redactor(), StoreOptions::default())
        .await
        .unwrap()
}

fn new_run(id: &str, started_minutes: i64) -> NewRun {
    NewRun {
        id: id.to_owned(),
        tenant: "default".to_owned(),
        scenario_name: "refund-desk".to_owned(),
        scenario_hash: "sha256:0f00".to_owned(),
        seed: u64::MAX - 7,
        clock_start: t0(),
        started_at: t0() + Duration::minutes(started_minutes),
        transport: "stdio".to_owned(),
        labels: json!({"ci": true, "branch": "main"}),
    }
}

fn event(run_id: &str, seq: u64) -> NewEvent {
    NewEvent {
        run_id: run_id.to_owned(),
        tenant: "default".to_owned(),
        seq,
        kind: if seq.is_multiple_of(2) {
            EventKind::Request
        } else {
            EventKind::Response
        },
        direction: if seq.is_multiple_of(2) {
            Direction::ToServer
        } else {
            Direction::ToClient
        },
        method: (seq.is_multiple_of(2)).then(|| "tools/call".to_owned()),
        request_id: Some(format!("{}", seq / 2)),
        virtual_time: t0() + Duration::milliseconds(seq as i64),
        wall_time: t0() + Duration::nanoseconds(1_000_123 * seq as i64),
        payload: json!({"seq": seq, "text": format!("event {seq} of {run_id}")}),
    }
}

fn record(e: &NewEvent) -> EventRecord {
    EventRecord {
        run_id: e.run_id.clone(),
        tenant: e.tenant.clone(),
        seq: e.seq,
        kind: e.kind,
        direction: e.direction,
        method: e.method.clone(),
        request_id: e.request_id.clone(),
        virtual_time: e.virtual_time,
        wall_time: e.wall_time,
        payload: e.payload.clone(),
    }
}

/// Runs `body` in a task per run, `run-00`, `run-01`, …, each run created
/// first, on the test's runtime, and waits for every task.
async fn in_runs<F, Fut>(store: &Store, runs: usize, body: F)
where
    F: Fn(Store, String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut tasks = Vec::new();
    for r in 0..runs {
        let id = format!("run-{r:02}");
        store.create_run(&new_run(&id, r as i64)).await.unwrap();
        tasks.push(tokio::spawn(body(store.clone(), id)));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

fn seqs(events: &[EventRecord]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

#[tokio::test]
async fn round_trip_create_append_read_list_find() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    for (i, id) in ["abcd1111", "abcd2222", "beef0001"].into_iter().enumerate() {
        store.create_run(&new_run(id, i as i64)).await.unwrap();
    }
    let appended: Vec<NewEvent> = (0..10).map(|seq| event("abcd1111", seq)).collect();
    let mut last = Ticket(0);
    for e in &appended {
        let ticket = store.append(e.clone());
        assert!(ticket > last, "tickets increase");
        last = ticket;
    }
    store.append(event("beef0001", 0));
    store.durable(last).await.unwrap();

    let stored = store.events("abcd1111").await.unwrap();
    assert_eq!(stored, appended.iter().map(record).collect::<Vec<_>>());

    let runs = store.list_runs("default", None).await.unwrap();
    let listed: Vec<(&str, u64)> = runs
        .iter()
        .map(|r| (r.id.as_str(), r.event_count))
        .collect();
    // Newest first. The beef0001 event was appended after the awaited ticket,
    // so its run's count is only checked after the flush below.
    assert_eq!(listed[1..], [("abcd2222", 0), ("abcd1111", 10)]);
    store.flush().await.unwrap();
    let runs = store.list_runs("default", Some(2)).await.unwrap();
    let listed: Vec<(&str, u64)> = runs
        .iter()
        .map(|r| (r.id.as_str(), r.event_count))
        .collect();
    assert_eq!(listed, [("beef0001", 1), ("abcd2222", 0)]);
    assert!(store.list_runs("another", None).await.unwrap().is_empty());

    let run = &store.list_runs("default", None).await.unwrap()[2];
    let expected = new_run("abcd1111", 0);
    assert_eq!(
        (
            run.tenant.as_str(),
            run.scenario_name.as_str(),
            run.scenario_hash.as_str()
        ),
        ("default", "refund-desk", "sha256:0f00")
    );
    assert_eq!(run.seed, u64::MAX - 7);
    assert_eq!(
        (run.clock_start, run.started_at),
        (expected.clock_start, expected.started_at)
    );
    assert_eq!(
        (run.transport.as_str(), &run.labels),
        ("stdio", &expected.labels)
    );
    assert_eq!((run.status, run.ended_at), (RunStatus::Active, None));

    // Data-driven find_run cases.
    // (tenant, query, the id found or the error message)
    type Case<'a> = (&'a str, &'a str, Result<Option<&'a str>, &'a str>);
    let cases: &[Case] = &[
        ("default", "abcd1111", Ok(Some("abcd1111"))),
        ("default", "abcd1", Ok(Some("abcd1111"))),
        ("default", "abcd2", Ok(Some("abcd2222"))),
        ("default", "beef", Ok(Some("beef0001"))),
        (
            "default",
            "abcd",
            Err("\"abcd\" matches several runs (abcd1111, abcd2222); give more characters"),
        ),
        ("default", "abc", Ok(None)),
        ("default", "a", Ok(None)),
        ("default", "", Ok(None)),
        ("default", "zzzz", Ok(None)),
        ("default", "ABCD1111", Ok(None)),
        ("default", "abcd1111x", Ok(None)),
        ("default", "abcd%", Ok(None)),
        ("default", "abc_", Ok(None)),
        ("another", "beef0001", Ok(None)),
        ("another", "beef", Ok(None)),
    ];
    for (tenant, query, expect) in cases {
        let got = store.find_run(tenant, query).await;
        match (expect, got) {
            (Ok(id), Ok(run)) => assert_eq!(run.map(|r| r.id).as_deref(), *id, "{tenant}/{query}"),
            (Err(msg), Err(e @ StoreError::AmbiguousRun { .. })) => {
                assert_eq!(e.to_string(), *msg, "{tenant}/{query}")
            }
            (expect, got) => panic!("{tenant}/{query}: expected {expect:?}, got {got:?}"),
        }
    }

    let ended = t0() + Duration::hours(1);
    store
        .end_run("abcd1111", RunStatus::Completed, ended)
        .await
        .unwrap();
    let run = store
        .find_run("default", "abcd1111")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (run.status, run.ended_at, run.event_count),
        (RunStatus::Completed, Some(ended), 10)
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn reopen_after_close_sees_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&new_run("run-1", 0)).await.unwrap();
    for seq in 0..1000 {
        store.append(event("run-1", seq));
    }
    store
        .end_run("run-1", RunStatus::Completed, t0())
        .await
        .unwrap();
    store.close().await.unwrap();
    // A clean close leaves no write-ahead log behind.
    let wal = dir.path().join("sandbar.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "WAL left behind"
    );

    let store = open(dir.path()).await;
    let events = store.events("run-1").await.unwrap();
    assert_eq!(seqs(&events), (0..1000).collect::<Vec<_>>());
    assert_eq!(events[999], record(&event("run-1", 999)));
    let run = store.find_run("default", "run-1").await.unwrap().unwrap();
    assert_eq!((run.status, run.event_count), (RunStatus::Completed, 1000));
    store.close().await.unwrap();
}

#[tokio::test]
async fn runs_left_active_become_interrupted_but_live_ones_stay_active() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).await;
    first.create_run(&new_run("live-run", 0)).await.unwrap();
    for seq in 0..3 {
        first.append(event("live-run", seq));
    }
    first.flush().await.unwrap();

    // A second store on the same directory (another process, say `sandbar
    // runs list`) must not take the first one's run for dead.
    let second = open(dir.path()).await;
    let run = second
        .find_run("default", "live-run")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Active);
    second.close().await.unwrap();
    let run = first
        .find_run("default", "live-run")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Active);

    // Dropping the store without closing it abandons the run.
    drop(first);
    let third = open(dir.path()).await;
    let run = third
        .find_run("default", "live-run")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Interrupted);
    // The end time is the last stored event's wall time, not the recovery time.
    assert_eq!(run.ended_at, Some(event("live-run", 2).wall_time));
    third.close().await.unwrap();
}

#[tokio::test]
async fn close_marks_unfinished_runs_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&new_run("done", 0)).await.unwrap();
    store.create_run(&new_run("unfinished", 1)).await.unwrap();
    store
        .end_run("done", RunStatus::Failed, t0())
        .await
        .unwrap();
    store.close().await.unwrap();
    let store = open(dir.path()).await;
    let statuses: Vec<(String, RunStatus)> = store
        .list_runs("default", None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("unfinished".to_owned(), RunStatus::Interrupted),
            ("done".to_owned(), RunStatus::Failed)
        ]
    );
    store.close().await.unwrap();
}

/// Every file SQLite keeps for the store, and its journals, concatenated.
fn raw_store_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["sandbar.db", "sandbar.db-wal", "sandbar.db-shm"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            bytes.extend(b);
        }
    }
    bytes.extend(journal_bytes(dir));
    bytes
}

/// The store's journal segments, concatenated.
fn journal_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("store-instances")) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|x| x == "journal") {
                bytes.extend(std::fs::read(entry.path()).unwrap());
            }
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn secrets_never_reach_the_database_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), secret_redactor(), StoreOptions::default())
        .await
        .unwrap();
    let mut run = new_run("run-secret", 0);
    run.scenario_name = format!("uses {SECRET}");
    run.labels = json!({"token": SECRET, "nested": [{"k": format!("Bearer {SECRET}")}]});
    store.create_run(&run).await.unwrap();

    let mut e = event("run-secret", 0);
    e.method = Some(format!("tools/{SECRET}"));
    e.request_id = Some(SECRET.to_owned());
    e.payload = json!({
        "params": {"arguments": {"authorization": format!("Bearer {SECRET}")}},
        "list": [SECRET, 1, {"deep": SECRET}],
    });
    let ticket = store.append(e);
    store.durable(ticket).await.unwrap();

    // Ids that carry the secret are refused outright, not written.
    let mut bad = new_run(&format!("run-{SECRET}"), 1);
    let err = store.create_run(&bad).await.unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidInput { what: "run id", .. }),
        "{err}"
    );
    bad.id = "fine".to_owned();
    bad.tenant = SECRET.to_owned();
    assert!(store.create_run(&bad).await.is_err());
    let mut e = event(&format!("run-{SECRET}"), 0);
    e.payload = json!(SECRET);
    let ticket = store.append(e);
    let err = store.durable(ticket).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    assert!(
        !err.to_string().contains(SECRET),
        "the error itself leaks: {err}"
    );

    store.flush().await.unwrap_or_default();
    let bytes = raw_store_bytes(dir.path());
    assert!(!bytes.is_empty());
    assert!(
        !contains(&bytes, SECRET.as_bytes()),
        "the secret reached a database file"
    );
    // The redacted values did get written, as the redactor renders them.
    let marker = secret_redactor().redact_str(SECRET);
    assert_ne!(marker, SECRET);
    assert!(contains(&bytes, marker.as_bytes()));
    // The event went through the journal, redacted there too.
    assert!(contains(&journal_bytes(dir.path()), marker.as_bytes()));

    let stored = store.events("run-secret").await.unwrap();
    assert_eq!(stored[0].request_id.as_deref(), Some(marker.as_str()));
    assert_eq!(
        stored[0].method.as_deref(),
        Some(format!("tools/{marker}").as_str())
    );
    assert_eq!(stored[0].payload["list"][2]["deep"], json!(marker));
    let run = store
        .find_run("default", "run-secret")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.labels["token"], json!(marker));
    assert_eq!(run.scenario_name, format!("uses {marker}"));

    store.close().await.unwrap();
    assert!(!contains(&raw_store_bytes(dir.path()), SECRET.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_to_many_runs_keep_each_runs_order() {
    const RUNS: usize = 16;
    const EVENTS: u64 = 400;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        plain_redactor(),
        StoreOptions {
            batch_max: 64,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    in_runs(&store, RUNS, |store, id| async move {
        let mut tickets = Vec::new();
        for seq in 0..EVENTS {
            tickets.push(store.append(event(&id, seq)));
            if seq % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        for ticket in tickets {
            store.durable(ticket).await.unwrap();
        }
    })
    .await;
    for r in 0..RUNS {
        let id = format!("run-{r:02}");
        let events = store.events(&id).await.unwrap();
        assert_eq!(seqs(&events), (0..EVENTS).collect::<Vec<_>>(), "{id}");
        assert!(
            events
                .iter()
                .all(|e| e.payload["text"] == json!(format!("event {} of {id}", e.seq)))
        );
    }
    store.close().await.unwrap();
}

/// Calls as the engine records them: a request nobody waits for, then a
/// response the caller waits for (committed on the caller's thread when the
/// writer sleeps, by the writer otherwise), from many tasks on two threads,
/// with control commands (new runs, audit entries) queued among them. Every
/// response is durable when its wait returns, and every run keeps its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waited_events_from_many_tasks_are_durable_when_answered() {
    const RUNS: usize = 12;
    const CALLS: u64 = 150;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    in_runs(&store, RUNS, |store, id| async move {
        for call in 0..CALLS {
            let _ = store.append(event(&id, 2 * call));
            store
                .append_waited(event(&id, 2 * call + 1))
                .durable()
                .await
                .unwrap();
            if call % 40 == 0 {
                store
                    .audit(&sandbar_store::NewAudit {
                        tenant: "default".to_owned(),
                        actor: "test".to_owned(),
                        action: "call".to_owned(),
                        detail: json!({"run": id, "call": call}),
                    })
                    .await
                    .unwrap();
            }
            if call % 7 == 0 {
                // Let the writer fall asleep now and then, so that both
                // the writer and the callers commit.
                tokio::time::sleep(std::time::Duration::from_millis(15)).await;
            }
        }
    })
    .await;
    for r in 0..RUNS {
        let id = format!("run-{r:02}");
        let events = store.events(&id).await.unwrap();
        assert_eq!(seqs(&events), (0..2 * CALLS).collect::<Vec<_>>(), "{id}");
        for e in &events {
            assert_eq!(*e, record(&event(&id, e.seq)));
        }
    }
    store.close().await.unwrap();
}

/// An event queued to be waited for, when the caller stops waiting before
/// it starts (its task cancelled), is still written: the writer, left
/// asleep for the caller to commit, is woken instead (or writes it when it
/// next wakes on its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waited_event_nobody_waits_for_after_all_is_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&new_run("run", 0)).await.unwrap();
    for seq in 0..3 {
        // Long enough for the writer to stop lingering and sleep.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        match seq {
            0 => drop(store.append_waited(event("run", seq))),
            1 => drop(store.append_waited(event("run", seq)).durable()),
            _ => {
                let waiting = store.append_waited(event("run", seq));
                let ticket = waiting.ticket();
                drop(waiting);
                // The ticket is good for `durable` too.
                store.durable(ticket).await.unwrap();
            }
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let events = store.events("run").await.unwrap();
            if events.len() as u64 == seq + 1 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "event {seq} was not written: {:?}",
                seqs(&events)
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    store.close().await.unwrap();
}

/// Under a steady load, with every event waited on as a call waits for its
/// own, the write-ahead log starts over instead of growing: the background
/// checkpoints alone never catch up with commits that keep coming, and the
/// log once grew to 1.5 GB in twelve seconds. Two shapes: thirty-two runs
/// at once (their events committed in the writer's batches) and one run
/// alone (each event committed by its caller, the writer asleep), each
/// writing 100–200 MB of log frames; the file must stay within the length
/// at which the writer checkpoints it (16 MiB) and a little more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_load_keeps_the_write_ahead_log_short() {
    for (runs, events) in [(32, 1_500), (1, 12_000)] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        let wal = dir.path().join("sandbar.db-wal");
        let longest = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (wal, longest, done) = (wal.clone(), longest.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    if let Ok(meta) = std::fs::metadata(&wal) {
                        longest.fetch_max(meta.len(), std::sync::atomic::Ordering::AcqRel);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            })
        };
        in_runs(&store, runs, |store, id| async move {
            for seq in 0..events {
                store
                    .append_waited(event(&id, seq))
                    .durable()
                    .await
                    .unwrap();
            }
        })
        .await;
        done.store(true, std::sync::atomic::Ordering::Release);
        watcher.join().unwrap();
        let longest = longest.load(std::sync::atomic::Ordering::Acquire);
        assert!(longest > 0, "the watcher never saw the WAL");
        assert!(
            longest < 48 << 20,
            "the WAL grew to {longest} bytes under a steady load of {runs} run(s)"
        );
        for r in [0, runs - 1] {
            let id = format!("run-{r:02}");
            let events_read = store.events(&id).await.unwrap();
            assert_eq!(seqs(&events_read), (0..events).collect::<Vec<_>>(), "{id}");
        }
        store.close().await.unwrap();
    }
}

/// A duplicate `(run_id, seq)` and an event for an unknown run fail on their
/// own, whether they share a batch with good events or not.
#[tokio::test]
async fn a_failing_row_reports_to_its_waiter_and_the_rest_land() {
    for batch_max in [1, 3, 512] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            plain_redactor(),
            StoreOptions {
                batch_max,
                ..StoreOptions::default()
            },
        )
        .await
        .unwrap();
        store.create_run(&new_run("r", 0)).await.unwrap();
        let good1 = store.append(event("r", 0));
        let good2 = store.append(event("r", 1));
        let dup = store.append(event("r", 1));
        let orphan = store.append(event("no-such-run", 0));
        let good3 = store.append(event("r", 2));
        let flushed = store.flush().await.unwrap_err();
        assert!(
            matches!(flushed, StoreError::EventsNotWritten { count: 2, .. }),
            "batch_max {batch_max}: {flushed}"
        );

        for ticket in [good1, good2, good3] {
            store.durable(ticket).await.unwrap();
        }
        let err = store.durable(dup).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "event #{} was not written: event 1 of run \"r\" was appended twice; the second one was not written (each run's seq must be unique)",
                dup.0
            )
        );
        let err = store.durable(orphan).await.unwrap_err();
        assert!(err.to_string().contains("has no run with that id"), "{err}");

        // The writer keeps serving, and a later flush is clean.
        let later = store.append(event("r", 3));
        store.flush().await.unwrap();
        store.durable(later).await.unwrap();
        let events = store.events("r").await.unwrap();
        assert_eq!(seqs(&events), [0, 1, 2, 3], "batch_max {batch_max}");
        // The first event with seq 1 is the one kept.
        assert_eq!(events[1], record(&event("r", 1)));
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_failed_transaction_fails_every_waiter_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&new_run("r", 0)).await.unwrap();
    // A trigger added behind the store's back makes one insert fail with an
    // error that is not a plain constraint on the row, the way an I/O error
    // or a full disk would: the whole transaction is lost.
    let url = format!("sqlite://{}", store.path().display());
    let mut other = SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER fail_seq_13 BEFORE INSERT ON events WHEN NEW.seq = 13
         BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END",
    )
    .execute(&mut other)
    .await
    .unwrap();

    // Where the writer cuts its batches depends on when its thread wakes
    // (usually all five form one batch; on a loaded machine it may take the
    // first before the rest are queued). Whatever the cut, the batch that
    // holds seq 13 fails whole, and only it.
    let batch: Vec<Ticket> = (10..15).map(|seq| store.append(event("r", seq))).collect();
    let err = store.flush().await.unwrap_err();
    let StoreError::EventsNotWritten { count, .. } = err else {
        panic!("{err}");
    };
    let mut failed: Vec<u64> = Vec::new();
    for (seq, ticket) in (10..15).zip(&batch) {
        if let Err(err) = store.durable(*ticket).await {
            assert!(err.to_string().contains("simulated write failure"), "{err}");
            failed.push(seq);
        }
    }
    assert!(failed.contains(&13), "{failed:?}");
    assert_eq!(failed.len() as u64, count, "{failed:?}");
    assert!(failed.windows(2).all(|w| w[1] == w[0] + 1), "{failed:?}");
    // A flush reports the failures of the events appended since the last
    // flush that no `durable` call has returned; these were reported by the
    // flush above and returned since, so the next flush is clean.
    store.flush().await.unwrap();

    // Durability is never pretended: none of the failed batch is stored.
    // The writer keeps serving once the cause is gone.
    let kept: Vec<u64> = (10..15).filter(|seq| !failed.contains(seq)).collect();
    assert_eq!(seqs(&store.events("r").await.unwrap()), kept);
    sqlx::query("DROP TRIGGER fail_seq_13")
        .execute(&mut other)
        .await
        .unwrap();
    other.close().await.unwrap();
    let later: Vec<Ticket> = failed
        .iter()
        .map(|&seq| store.append(event("r", seq)))
        .collect();
    for ticket in later {
        store.durable(ticket).await.unwrap();
    }
    assert_eq!(
        seqs(&store.events("r").await.unwrap()),
        [10, 11, 12, 13, 14]
    );

    // A seq too large to store fails alone, before any SQL runs.
    let too_big = store.append(event("r", u64::MAX));
    let fine = store.append(event("r", 15));
    let err = store.durable(too_big).await.unwrap_err();
    assert!(err.to_string().contains("seq is larger"), "{err}");
    store.durable(fine).await.unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn run_commands_report_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_run(&new_run("r1", 0)).await.unwrap();

    let err = store.create_run(&new_run("r1", 0)).await.unwrap_err();
    assert_eq!(err.to_string(), "a run with id \"r1\" already exists");

    let mut other = new_run("r2", 0);
    other.tenant = "acme".to_owned();
    let err = store.create_run(&other).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no tenant with id \"acme\"; create it with Store::ensure_tenant first"
    );
    store.ensure_tenant("acme", "Acme Corp").await.unwrap();
    store.ensure_tenant("acme", "Acme Corp").await.unwrap();
    store.create_run(&other).await.unwrap();
    assert_eq!(store.list_runs("acme", None).await.unwrap().len(), 1);
    assert_eq!(store.list_runs("default", None).await.unwrap().len(), 1);

    // An event can never be filed under another tenant's run.
    let mut cross = event("r2", 0);
    cross.tenant = "default".to_owned();
    let ticket = store.append(cross);
    assert!(store.durable(ticket).await.is_err());

    let mut bad_labels = new_run("r3", 0);
    bad_labels.labels = json!(["not", "an", "object"]);
    let err = store.create_run(&bad_labels).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid labels: expected a JSON object, got an array"
    );
    bad_labels.labels = serde_json::Value::Null;
    store.create_run(&bad_labels).await.unwrap();
    let run = store.find_run("default", "r3").await.unwrap().unwrap();
    assert_eq!(run.labels, json!({}));

    let err = store
        .end_run("nope", RunStatus::Completed, t0())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no run with id \"nope\"");
    let err = store
        .end_run("r1", RunStatus::Active, t0())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid run status: a run cannot end as active"
    );

    let err = store.durable(Ticket(1_000_000)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "ticket #1000000 was not issued by this store"
    );
    store.durable(Ticket(0)).await.unwrap();

    let handle = store.clone();
    store.close().await.unwrap();
    let ticket = handle.append(event("r1", 0));
    assert!(matches!(
        handle.durable(ticket).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        handle.list_runs("default", None).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        handle.create_run(&new_run("r9", 0)).await,
        Err(StoreError::Closed)
    ));
}

#[tokio::test]
async fn a_store_from_a_newer_sandbar_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let path = store.path().to_owned();
    store.close().await.unwrap();
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("INSERT INTO schema_version (version, applied_at) VALUES (7, 'x')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let err = Store::open(dir.path(), plain_redactor(), StoreOptions::default())
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "the store at {} was written by a newer Sandbar (schema 7 > {}); upgrade Sandbar to read it",
            path.display(),
            sandbar_store::SCHEMA_VERSION
        )
    );
    // Neither the closed stores nor the refused one left a lock file.
    let leftovers = std::fs::read_dir(dir.path().join("store-instances"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0);
}

#[tokio::test]
async fn opening_is_idempotent_and_a_file_in_the_way_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        open(dir.path()).await.close().await.unwrap();
    }
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(
        &file.join("data"),
        plain_redactor(),
        StoreOptions::default(),
    )
    .await
    .err()
    .unwrap();
    assert!(
        err.to_string().starts_with(&format!(
            "the data directory {} is not writable: ",
            file.join("data").display()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn full_sync_mode_writes_too() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        sync: SyncMode::Full,
        batch_max: 8,
    };
    let store = Store::open(dir.path(), plain_redactor(), options)
        .await
        .unwrap();
    store.create_run(&new_run("r", 0)).await.unwrap();
    let tickets: Vec<Ticket> = (0..20).map(|seq| store.append(event("r", seq))).collect();
    store.durable(tickets[19]).await.unwrap();
    assert_eq!(store.events("r").await.unwrap().len(), 20);
    store.close().await.unwrap();
}

/// Set in the child process of the kill test: the data directory to write.
const KILL_CHILD_DIR: &str = "SANDBAR_STORE_KILL_CHILD_DIR";
const KILL_RUN: &str = "killed-run";
const ACKS_BEFORE_KILL: usize = 300;

/// The child half of `acknowledged_events_survive_sigkill`. Run normally it
/// does nothing; run with `KILL_CHILD_DIR` set it appends events until it is
/// killed, printing each one's seq once it is durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_child_appends_until_killed() {
    let Some(dir) = std::env::var_os(KILL_CHILD_DIR) else {
        return;
    };
    let store = Store::open(Path::new(&dir), plain_redactor(), StoreOptions::default())
        .await
        .unwrap();
    store.create_run(&new_run(KILL_RUN, 0)).await.unwrap();
    let mut stdout = std::io::stdout().lock();
    // The test harness has printed the test's name without a line break;
    // start the acknowledgements on a line of their own.
    writeln!(stdout).unwrap();
    // Bounded so that an orphaned child stops by itself.
    let mut pending = Vec::new();
    for seq in 0..200_000u64 {
        pending.push((seq, store.append(event(KILL_RUN, seq))));
        // Acknowledge in small groups, as a request path would.
        if pending.len() == 7 {
            for (seq, ticket) in pending.drain(..) {
                store.durable(ticket).await.unwrap();
                writeln!(stdout, "ack {seq}").unwrap();
            }
            stdout.flush().unwrap();
        }
    }
}

#[test]
fn acknowledged_events_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "kill_child_appends_until_killed",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL_CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(seq) = line.strip_prefix("ack ") {
            acked.push(seq.parse::<u64>().unwrap());
            if acked.len() >= ACKS_BEFORE_KILL {
                break;
            }
        }
    }
    // SIGKILL: no destructor, no close, no flush runs in the child.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(
        acked.len(),
        ACKS_BEFORE_KILL,
        "the child stopped early ({status}): {stderr}"
    );
    assert_eq!(acked, (0..ACKS_BEFORE_KILL as u64).collect::<Vec<_>>());

    // The child's events became durable in its journal first; the writer
    // folds them into the database later, and only a clean close deletes
    // the journal.
    let journals = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.path().join("store-instances"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "journal"))
            .collect()
    };
    assert!(!journals().is_empty(), "the killed child left no journal");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let path = dir.path().join("sandbar.db");
        let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(integrity, "ok");
        conn.close().await.unwrap();

        let store = open(dir.path()).await;
        assert_eq!(
            journals(),
            Vec::<std::path::PathBuf>::new(),
            "folded in and deleted at open"
        );
        let events = store.events(KILL_RUN).await.unwrap();
        let stored = seqs(&events);
        // Every acknowledged event is there, in order, with nothing missing
        // in between; unacknowledged ones may or may not have made it.
        assert!(stored.len() >= acked.len());
        assert_eq!(stored, (0..stored.len() as u64).collect::<Vec<_>>());
        for e in &events {
            assert_eq!(*e, record(&event(KILL_RUN, e.seq)));
        }
        let run = store.find_run("default", KILL_RUN).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Interrupted);
        store.close().await.unwrap();
    });
}

#[tokio::test]
async fn the_audit_trail_is_a_redacted_hash_chain_per_tenant_that_shows_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.ensure_tenant("acme", "Acme").await.unwrap();
    for (tenant, n) in [("default", 1), ("acme", 1), ("default", 2), ("default", 3)] {
        store
            .audit(&sandbar_store::NewAudit {
                tenant: tenant.to_owned(),
                actor: "cli:ops".to_owned(),
                action: "unmask".to_owned(),
                detail: json!({"n": n, "note": "password=hunter2hunter2"}),
            })
            .await
            .unwrap();
    }
    let trail = store.audit_trail("default").await.unwrap();
    assert_eq!(trail.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(trail[0].prev_hash, sandbar_store::AUDIT_GENESIS);
    for pair in trail.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    assert!(trail.iter().all(|e| e.hash == e.expected_hash()));
    assert_eq!(trail[0].detail["note"], "password=[REDACTED:password]");
    let acme = store.audit_trail("acme").await.unwrap();
    assert_eq!(acme.len(), 1, "each tenant has its own chain");
    assert_eq!(acme[0].prev_hash, sandbar_store::AUDIT_GENESIS);

    let err = store
        .audit(&sandbar_store::NewAudit {
            tenant: "nobody".to_owned(),
            actor: "cli:ops".to_owned(),
            action: "unmask".to_owned(),
            detail: json!({}),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownTenant { .. }), "{err}");

    // An entry changed behind the store's back no longer has its hash.
    let url = format!("sqlite://{}", store.path().display());
    let mut other = SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit SET detail = '{\"n\":20}' WHERE tenant_id = 'default' AND seq = 2")
        .execute(&mut other)
        .await
        .unwrap();
    let trail = store.audit_trail("default").await.unwrap();
    assert_ne!(trail[1].hash, trail[1].expected_hash());
    assert_eq!(trail[0].hash, trail[0].expected_hash());
    store.close().await.unwrap();
}
