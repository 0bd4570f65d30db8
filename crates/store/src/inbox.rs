//! The queue from the store's handles to its writer thread.
//!
//! A mutex-guarded list and a condition variable, rather than a channel,
//! because thread wake-ups cost more, on the small machines Sandbar runs
//! on, than the work of recording a call (50–150 µs each on a 2-core VM,
//! against some tens of µs to commit a call's events):
//!
//! - A sender knows what the writer is doing and wakes it only when it
//!   must: when somebody waits for what is queued (a control command, a
//!   nudge, the close) or a batch is full. Events nobody waits for yet stay
//!   queued, and the writer commits them together once the oldest has
//!   waited [`HOLD`] (or, if it slept, when it next wakes, within [`NAP`]):
//!   most are a call's request, committed with its response.
//! - Queued events stay here, not in the writer's hands, while the writer
//!   holds them: a caller that waits for its own event while the writer
//!   sleeps commits what is queued itself ([`Urgency::Inline`],
//!   [`Inbox::take_events`]), without the two wake-ups of a hand-off to the
//!   writer and back. Not when the events of several runs crowd in: the
//!   writer's batches then cost each call less ([`CROWD_GAP`]).
//! - The writer is woken after the lock is let go, so it does not wake only
//!   to block on the lock its waker still holds, and it takes everything
//!   queued in one go.
//!
//! Ticket order and queue order are the same: tickets are handed out under
//! the same lock that queues the command.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::writer::{Command, Pending};

/// How long queued events wait for company when nobody waits for them: a
/// call's request event is committed with its response, and the writer,
/// once it has worked, sleeps this long before it sleeps for good (while it
/// does, events nobody waits for do not wake it).
pub(crate) const HOLD: Duration = Duration::from_millis(10);

/// How long the writer sleeps, with nothing to do, before it looks at the
/// queue again on its own. Events nobody waits for do not wake it (at a
/// call every few milliseconds, each call's request event would), so this
/// bounds how late they are written when no response follows them (a
/// client's notification): a few wake-ups a second of an idle process.
pub(crate) const NAP: Duration = Duration::from_millis(250);

/// What the writer is doing, as far as a sender needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// Working, or already woken: it looks at the queue before it sleeps.
    Awake,
    /// Asleep with nothing to do, until [`NAP`] has passed or somebody
    /// waits for a command.
    Idle,
    /// Asleep until a deadline (queued events are due, or it stops
    /// lingering): only a command that somebody waits for wakes it.
    Holding,
    /// Stopped: commands are dropped (their waiters see the store closed).
    Gone,
}

impl Writer {
    /// Asleep, idle or holding: a sender that needs the writer wakes it.
    fn asleep(self) -> bool {
        matches!(self, Writer::Idle | Writer::Holding)
    }
}

struct State {
    /// The last ticket handed out.
    next: u64,
    commands: VecDeque<Command>,
    /// When the oldest queued command was queued; `None` when none is.
    since: Option<Instant>,
    /// When the last command was queued.
    last: Instant,
    writer: Writer,
    /// Every store handle is gone: the writer finishes what is queued and
    /// stops.
    closed: bool,
    /// Somebody waits for what is queued: it goes out now.
    urgent: bool,
    /// The writer has work besides the queue (the WAL has grown long).
    chores: bool,
    /// The run of the last event queued, as a hash, and when it came.
    last_run: Option<(u64, Instant)>,
    /// Until when events of several runs come close together (see
    /// [`CROWD_GAP`]): callers leave their events to the writer.
    crowded_until: Option<Instant>,
}

/// Events of two runs queued less than this apart mean that several
/// sessions are calling at once. The writer then commits their events in
/// batches, which costs each call less than a commit of its own (on a
/// replay at 32 sessions, 5 calls a commit instead of 1 cut the WAL pages
/// written per call from 3 to 2.2, and the fixed cost of a commit is
/// shared). One session alone, or sessions calling seldom, commit their own,
/// which saves them the two thread wake-ups of a hand-off.
const CROWD_GAP: Duration = Duration::from_micros(500);

/// How long callers leave their events to the writer once runs crowd in.
const CROWD_HOLD: Duration = Duration::from_millis(10);

impl State {
    /// A caller waiting for its event may commit it itself: the writer
    /// sleeps and runs are not crowding in.
    fn inline_welcome(&self, now: Instant) -> bool {
        self.writer.asleep() && self.crowded_until.is_none_or(|until| now >= until)
    }
}

/// A run id's hash, to tell runs apart without keeping their ids.
fn run_hash(run: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    run.hash(&mut hasher);
    hasher.finish()
}

pub(crate) struct Inbox {
    state: Mutex<State>,
    wake: Condvar,
    /// [`HOLD`] and [`NAP`], but for tests.
    hold: Duration,
    nap: Duration,
    /// A batch's most events: this many queued are due at once.
    full: usize,
    /// [`CROWD_GAP`] and [`CROWD_HOLD`], but for tests.
    crowd_gap: Duration,
    crowd_hold: Duration,
}

/// What [`Inbox::await_work`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Work {
    /// Commands are due (or chores, or a tick): take them and work.
    Ready,
    /// The store is closed and nothing is left.
    Closed,
}

/// Whether a sender waits for what it queues, and who commits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Urgency {
    /// Nobody waits for it yet: it may wait for company.
    CanWait,
    /// Somebody waits for it: the writer takes it now.
    Waited,
    /// The sender waits for it and, if the writer sleeps and runs are not
    /// crowding in ([`CROWD_GAP`]), commits it itself or else nudges the
    /// writer ([`Inbox::push_ticketed`] says which is its job). Otherwise
    /// the writer takes it now, as for [`Urgency::Waited`].
    Inline,
    /// Nobody waits for it, but it should reach the database soon (a
    /// journaled event, which other processes read only from there): it
    /// may wait for company as long as [`Urgency::CanWait`], but wakes a
    /// writer that sleeps for good.
    Soon,
}

impl Inbox {
    pub(crate) fn new(hold: Duration, nap: Duration, full: usize) -> Inbox {
        Inbox {
            hold,
            nap,
            full: full.max(1),
            crowd_gap: CROWD_GAP,
            crowd_hold: CROWD_HOLD,
            state: Mutex::new(State {
                next: 0,
                commands: VecDeque::new(),
                since: None,
                last: Instant::now(),
                writer: Writer::Awake,
                closed: false,
                urgent: false,
                chores: false,
                last_run: None,
                crowded_until: None,
            }),
            wake: Condvar::new(),
        }
    }

    #[cfg(test)]
    fn with_crowd(mut self, gap: Duration, hold: Duration) -> Inbox {
        self.crowd_gap = gap;
        self.crowd_hold = hold;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues the command `make(ticket)` under the next ticket. Returns the
    /// ticket, and, for [`Urgency::Inline`], whether the command was left
    /// to the sender (the writer sleeps, runs are not crowding in, and the
    /// writer was left asleep): the sender must then commit the command
    /// itself or [`nudge`](Inbox::nudge). If the writer has stopped, the
    /// command is dropped.
    pub(crate) fn push_ticketed(
        &self,
        urgency: Urgency,
        make: impl FnOnce(u64) -> Command,
    ) -> (u64, bool) {
        let mut state = self.lock();
        state.next += 1;
        let ticket = state.next;
        let command = make(ticket);
        let left = self.queue(state, urgency, command);
        (ticket, left)
    }

    /// Queues a command; returns false, dropping it, if the writer has
    /// stopped (a reply channel in it then tells its waiter).
    pub(crate) fn push(&self, urgency: Urgency, command: Command) -> bool {
        let state = self.lock();
        if state.writer == Writer::Gone {
            return false;
        }
        self.queue(state, urgency, command);
        true
    }

    /// Queues; true if the command is left to an [`Urgency::Inline`]
    /// sender.
    fn queue(&self, mut state: MutexGuard<'_, State>, urgency: Urgency, command: Command) -> bool {
        if state.writer == Writer::Gone {
            return false;
        }
        let now = Instant::now();
        match &command {
            Command::Event { event, .. } => self.note_run(&mut state, &event.run_id, now),
            Command::Row { row } => self.note_run(&mut state, &row.run_id, now),
            _ => {}
        }
        state.commands.push_back(command);
        state.last = now;
        if state.since.is_none() {
            state.since = Some(now);
        }
        let asleep = state.writer.asleep();
        let inline = state.inline_welcome(now);
        let full = state.commands.len() >= self.full;
        let (wake, left) = match urgency {
            Urgency::CanWait => (full && asleep, false),
            Urgency::Soon => (asleep && (full || state.writer == Writer::Idle), false),
            Urgency::Waited => {
                state.urgent = true;
                (asleep, false)
            }
            Urgency::Inline if inline => (false, true),
            Urgency::Inline => {
                state.urgent = true;
                (asleep, false)
            }
        };
        self.wake_if(state, wake);
        left
    }

    /// Notes an event of `run` queued at `now`: another run's event less
    /// than the crowd gap before it means that runs crowd in.
    fn note_run(&self, state: &mut State, run: &str, now: Instant) {
        let run = run_hash(run);
        if let Some((last, at)) = state.last_run
            && last != run
            && now.duration_since(at) < self.crowd_gap
        {
            state.crowded_until = Some(now + self.crowd_hold);
        }
        state.last_run = Some((run, now));
    }

    /// Wakes the writer if `wake`, after letting go of the lock.
    fn wake_if(&self, mut state: MutexGuard<'_, State>, wake: bool) {
        if wake {
            state.writer = Writer::Awake;
        }
        drop(state);
        if wake {
            self.wake.notify_one();
        }
    }

    /// Whether a caller waiting for an event may commit it itself: the
    /// writer sleeps and calls of several runs are not crowding in.
    pub(crate) fn inline_welcome(&self) -> bool {
        self.lock().inline_welcome(Instant::now())
    }

    /// Somebody waits for what is queued: the writer takes it now.
    pub(crate) fn nudge(&self) {
        let mut state = self.lock();
        state.urgent = true;
        let wake = state.writer.asleep();
        self.wake_if(state, wake);
    }

    /// The writer has work besides the queue.
    pub(crate) fn chores(&self) {
        let mut state = self.lock();
        state.chores = true;
        let wake = state.writer.asleep();
        self.wake_if(state, wake);
    }

    /// Every store handle is gone.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let wake = state.writer.asleep();
        self.wake_if(state, wake);
    }

    /// The writer has stopped: later commands are dropped, and so are any
    /// still queued (their waiters see the store closed).
    pub(crate) fn writer_gone(&self) {
        let dropped = {
            let mut state = self.lock();
            state.writer = Writer::Gone;
            state.since = None;
            std::mem::take(&mut state.commands)
        };
        drop(dropped);
    }

    /// Moves the queued events at the front of the queue, up to `max` of
    /// them, into `into`, stopping at the first other command (which is the
    /// writer's to handle, in order).
    pub(crate) fn take_events(&self, into: &mut Vec<Pending>, max: usize) {
        let mut state = self.lock();
        let mut taken = 0;
        while taken < max {
            match state.commands.pop_front() {
                Some(Command::Event { ticket, event }) => into.push(Pending::Event(ticket, event)),
                Some(Command::Row { row }) => into.push(Pending::Row(row)),
                Some(other) => {
                    state.commands.push_front(other);
                    break;
                }
                None => break,
            }
            taken += 1;
        }
        if state.commands.is_empty() {
            state.since = None;
            state.urgent = false;
        }
    }

    /// The writer's side: moves every queued command into `into`.
    pub(crate) fn take_all(&self, into: &mut VecDeque<Command>) {
        let mut state = self.lock();
        into.append(&mut state.commands);
        state.since = None;
        state.urgent = false;
    }

    /// The writer's side: sleeps until there is work. Queued commands are
    /// due at once when somebody waits for them, when a batch is full, or
    /// at the close; otherwise once the oldest has waited [`HOLD`]. With
    /// nothing queued the writer lingers until `HOLD` after it last worked
    /// or a command was last queued (while commands keep coming, callers
    /// that commit their own leave the queue empty, and a writer that slept
    /// for good would be woken by nearly every call), then sleeps until a
    /// command comes, or, if `ticking`, returns to look at its chores.
    /// Asleep for good means for [`NAP`] at a time, after which queued
    /// commands are due.
    pub(crate) fn await_work(&self, ticking: bool) -> Work {
        let worked = Instant::now();
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            if std::mem::take(&mut state.chores) {
                state.writer = Writer::Awake;
                return Work::Ready;
            }
            let until = match state.since {
                Some(since) => {
                    let due = since + self.hold;
                    if state.urgent
                        || state.closed
                        || state.commands.len() >= self.full
                        || now >= due
                    {
                        state.writer = Writer::Awake;
                        return Work::Ready;
                    }
                    Some(due)
                }
                None => {
                    state.urgent = false;
                    if state.closed {
                        state.writer = Writer::Awake;
                        return Work::Closed;
                    }
                    let linger_until = worked.max(state.last) + self.hold;
                    if now < linger_until {
                        Some(linger_until)
                    } else if ticking {
                        state.writer = Writer::Awake;
                        return Work::Ready;
                    } else {
                        None
                    }
                }
            };
            state = match until {
                Some(until) => {
                    state.writer = Writer::Holding;
                    self.wake
                        .wait_timeout(state, until - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => {
                    state.writer = Writer::Idle;
                    let (mut state, slept) = self
                        .wake
                        .wait_timeout(state, self.nap)
                        .unwrap_or_else(PoisonError::into_inner);
                    if slept.timed_out() && state.since.is_some() {
                        // What came meanwhile is due.
                        state.writer = Writer::Awake;
                        return Work::Ready;
                    }
                    state
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    fn control() -> Command {
        let (reply, _) = oneshot::channel();
        Command::EnsureTenant {
            id: "t".into(),
            name: "t".into(),
            reply,
        }
    }

    fn event(ticket: u64) -> Command {
        event_of("r")(ticket)
    }

    /// An event of `run`, for `push_ticketed`.
    fn event_of(run: &str) -> impl FnOnce(u64) -> Command + '_ {
        move |ticket| Command::Event {
            ticket,
            event: crate::model::NewEvent {
                run_id: run.into(),
                tenant: "default".into(),
                seq: ticket,
                kind: crate::model::EventKind::Request,
                direction: crate::model::Direction::ToServer,
                method: None,
                request_id: None,
                virtual_time: chrono::Utc::now(),
                wall_time: chrono::Utc::now(),
                payload: serde_json::Value::Null,
            },
        }
    }

    /// A hold no test outlasts: a writer that returns was not holding.
    const LONG: Duration = Duration::from_secs(3600);

    /// Runs `await_work` on a thread of its own and sends back what it
    /// found and how many commands it could then take.
    fn writer(inbox: &Arc<Inbox>, ticking: bool) -> std::sync::mpsc::Receiver<(Work, usize)> {
        let (tx, rx) = std::sync::mpsc::channel();
        let inbox = Arc::clone(inbox);
        std::thread::spawn(move || {
            let work = inbox.await_work(ticking);
            let mut got = VecDeque::new();
            inbox.take_all(&mut got);
            let _ = tx.send((work, got.len()));
        });
        rx
    }

    fn answer(got: &std::sync::mpsc::Receiver<(Work, usize)>) -> (Work, usize) {
        got.recv().expect("the writer thread answers")
    }

    fn until(inbox: &Inbox, state: Writer) {
        while inbox.lock().writer != state {
            std::thread::yield_now();
        }
    }

    fn writer_state(inbox: &Inbox) -> Writer {
        inbox.lock().writer
    }

    #[test]
    fn an_idle_writer_naps_through_events_nobody_waits_for() {
        let inbox = Arc::new(Inbox::new(Duration::from_millis(5), LONG, 4));
        let got = writer(&inbox, false);
        // It lingers first, then sleeps for good.
        until(&inbox, Writer::Idle);
        let (first, left) = inbox.push_ticketed(Urgency::CanWait, event);
        assert_eq!((first, left), (1, false));
        assert_eq!(writer_state(&inbox), Writer::Idle, "not woken");
        // A full batch wakes it, and it takes all that is queued.
        for _ in 0..3 {
            inbox.push_ticketed(Urgency::CanWait, event);
        }
        assert_eq!(answer(&got), (Work::Ready, 4));
        // A waited command wakes it at once.
        let got = writer(&inbox, false);
        until(&inbox, Writer::Idle);
        assert!(inbox.push(Urgency::Waited, control()));
        assert_eq!(answer(&got), (Work::Ready, 1));
    }

    #[test]
    fn events_nobody_waits_for_are_written_after_the_nap() {
        let nap = Duration::from_millis(20);
        let inbox = Arc::new(Inbox::new(Duration::from_millis(5), nap, 16));
        let got = writer(&inbox, false);
        until(&inbox, Writer::Idle);
        inbox.push_ticketed(Urgency::CanWait, event);
        assert_eq!(answer(&got), (Work::Ready, 1));
    }

    #[test]
    fn a_holding_writer_is_woken_only_for_what_somebody_waits_for() {
        for wake in ["waited command", "nudge", "close", "chores"] {
            let inbox = Arc::new(Inbox::new(LONG, LONG, 16));
            let got = writer(&inbox, false);
            // Lingering after work: an event nobody waits for does not wake
            // it, and waits its turn.
            until(&inbox, Writer::Holding);
            inbox.push_ticketed(Urgency::CanWait, event);
            assert_eq!(writer_state(&inbox), Writer::Holding, "{wake}");
            match wake {
                "waited command" => assert!(inbox.push(Urgency::Waited, control())),
                "nudge" => inbox.nudge(),
                "close" => inbox.close(),
                _ => inbox.chores(),
            }
            assert_eq!(writer_state(&inbox), Writer::Awake, "{wake}");
            let expected = if wake == "waited command" { 2 } else { 1 };
            assert_eq!(answer(&got), (Work::Ready, expected), "{wake}");
        }
    }

    #[test]
    fn events_nobody_waits_for_are_due_after_the_hold_or_in_a_full_batch() {
        let inbox = Arc::new(Inbox::new(Duration::from_millis(5), LONG, 16));
        inbox.push_ticketed(Urgency::CanWait, event);
        assert_eq!(answer(&writer(&inbox, false)), (Work::Ready, 1));
        let inbox = Arc::new(Inbox::new(LONG, LONG, 16));
        for _ in 0..16 {
            inbox.push_ticketed(Urgency::CanWait, event);
        }
        assert_eq!(answer(&writer(&inbox, false)), (Work::Ready, 16));
    }

    #[test]
    fn an_inline_event_is_left_to_its_sender_while_the_writer_sleeps() {
        let inbox = Arc::new(Inbox::new(LONG, LONG, 16));
        let got = writer(&inbox, false);
        until(&inbox, Writer::Holding);
        let (_, left) = inbox.push_ticketed(Urgency::Inline, event);
        assert!(left, "the writer sleeps: the sender commits");
        assert_eq!(writer_state(&inbox), Writer::Holding, "not woken");
        let mut events = Vec::new();
        inbox.take_events(&mut events, 8);
        assert_eq!(events.len(), 1);
        // A sender that cannot commit (somebody else holds the core) nudges.
        inbox.push_ticketed(Urgency::Inline, event);
        inbox.nudge();
        assert_eq!(answer(&got), (Work::Ready, 1));

        // An awake writer is told not to hold an inline event back.
        let (_, left) = inbox.push_ticketed(Urgency::Inline, event);
        assert!(!left);
        assert_eq!(answer(&writer(&inbox, false)), (Work::Ready, 1));
    }

    #[test]
    fn when_runs_crowd_in_their_inline_events_go_to_the_writer() {
        let crowd_hold = Duration::from_millis(50);
        // Any two runs' events count as close together.
        let inbox = Arc::new(Inbox::new(LONG, LONG, 16).with_crowd(LONG, crowd_hold));
        let got = writer(&inbox, false);
        until(&inbox, Writer::Holding);
        // One run's call: its caller commits.
        inbox.push_ticketed(Urgency::CanWait, event_of("a"));
        let (_, left) = inbox.push_ticketed(Urgency::Inline, event_of("a"));
        assert!(left, "one run alone commits its own");
        assert!(inbox.inline_welcome());
        let mut events = Vec::new();
        inbox.take_events(&mut events, 8);
        assert_eq!(events.len(), 2);

        // Another run's event close behind it: the writer is woken for it.
        let (_, left) = inbox.push_ticketed(Urgency::Inline, event_of("b"));
        assert!(!left, "crowded: the writer commits");
        assert_eq!(answer(&got), (Work::Ready, 1));
        // While runs crowd in, no caller commits, even with the writer asleep.
        let got = writer(&inbox, false);
        until(&inbox, Writer::Holding);
        assert!(!inbox.inline_welcome());
        let (_, left) = inbox.push_ticketed(Urgency::Inline, event_of("b"));
        assert!(!left);
        assert_eq!(answer(&got), (Work::Ready, 1));

        // Once no other run has come for the crowd hold, callers commit
        // their own again.
        let got = writer(&inbox, false);
        until(&inbox, Writer::Holding);
        std::thread::sleep(crowd_hold + Duration::from_millis(10));
        assert!(inbox.inline_welcome());
        let (_, left) = inbox.push_ticketed(Urgency::Inline, event_of("b"));
        assert!(left);
        inbox.nudge();
        assert_eq!(answer(&got), (Work::Ready, 1));
    }

    #[test]
    fn runs_that_call_seldom_commit_their_own() {
        let gap = Duration::from_millis(5);
        let inbox = Arc::new(Inbox::new(LONG, LONG, 16).with_crowd(gap, LONG));
        let got = writer(&inbox, false);
        until(&inbox, Writer::Holding);
        for run in ["a", "b", "c", "a"] {
            std::thread::sleep(gap + Duration::from_millis(2));
            let (_, left) = inbox.push_ticketed(Urgency::Inline, event_of(run));
            assert!(left, "runs {gap:?} apart do not crowd");
            let mut events = Vec::new();
            inbox.take_events(&mut events, 8);
            assert_eq!(events.len(), 1);
        }
        assert_eq!(writer_state(&inbox), Writer::Holding, "never woken");
        inbox.push_ticketed(Urgency::Waited, event);
        assert_eq!(answer(&got), (Work::Ready, 1));
    }

    #[test]
    fn a_sender_takes_only_the_events_before_a_control_command() {
        let inbox = Inbox::new(LONG, LONG, 16);
        inbox.push_ticketed(Urgency::CanWait, event);
        inbox.push_ticketed(Urgency::CanWait, event);
        assert!(inbox.push(Urgency::Waited, control()));
        inbox.push_ticketed(Urgency::CanWait, event);
        let mut events = Vec::new();
        inbox.take_events(&mut events, 1);
        assert_eq!(events.iter().map(Pending::ticket).collect::<Vec<_>>(), [1]);
        inbox.take_events(&mut events, 8);
        assert_eq!(
            events.iter().map(Pending::ticket).collect::<Vec<_>>(),
            [1, 2]
        );
        // The control command is still first, and still urgent.
        let state = inbox.lock();
        assert!(matches!(
            state.commands.front(),
            Some(Command::EnsureTenant { .. })
        ));
        assert_eq!(state.commands.len(), 2);
        assert!(state.urgent);
    }

    #[test]
    fn a_writer_lingers_while_callers_keep_committing_their_own() {
        let hold = Duration::from_millis(200);
        let inbox = Arc::new(Inbox::new(hold, LONG, 16));
        let got = writer(&inbox, false);
        until(&inbox, Writer::Holding);
        // Calls keep coming, each committed by its caller: the writer
        // never works, but it does not fall asleep for good either, or
        // every next call's request would wake it.
        let start = Instant::now();
        while start.elapsed() < 2 * hold {
            inbox.push_ticketed(Urgency::CanWait, event);
            let (_, left) = inbox.push_ticketed(Urgency::Inline, event);
            assert!(left);
            let mut events = Vec::new();
            inbox.take_events(&mut events, 8);
            assert_eq!(events.len(), 2);
            assert_eq!(writer_state(&inbox), Writer::Holding);
            std::thread::sleep(Duration::from_millis(10));
        }
        // Once calls stop, it sleeps until somebody needs it.
        until(&inbox, Writer::Idle);
        inbox.push_ticketed(Urgency::Waited, event);
        assert_eq!(answer(&got), (Work::Ready, 1));
    }

    #[test]
    fn a_nudge_before_the_writer_looks_is_not_lost() {
        let inbox = Arc::new(Inbox::new(LONG, LONG, 16));
        inbox.push_ticketed(Urgency::CanWait, event);
        inbox.nudge();
        // Somebody waits before the writer has looked: it must not then
        // hold the event.
        assert_eq!(answer(&writer(&inbox, false)), (Work::Ready, 1));
    }

    #[test]
    fn a_ticking_writer_looks_at_its_chores_without_commands() {
        let inbox = Arc::new(Inbox::new(Duration::from_millis(5), LONG, 16));
        assert_eq!(answer(&writer(&inbox, true)), (Work::Ready, 0));
        inbox.close();
        assert_eq!(answer(&writer(&inbox, false)), (Work::Closed, 0));
    }

    #[test]
    fn after_the_writer_is_gone_commands_are_refused_and_dropped() {
        let inbox = Inbox::new(LONG, LONG, 16);
        let (reply, answer) = oneshot::channel::<Result<(), crate::StoreError>>();
        assert!(inbox.push(
            Urgency::Waited,
            Command::EnsureTenant {
                id: "t".into(),
                name: "t".into(),
                reply,
            }
        ));
        inbox.writer_gone();
        // The queued command was dropped: its waiter hears of it.
        assert!(answer.blocking_recv().is_err());
        assert!(!inbox.push(Urgency::Waited, control()));
        assert_eq!(inbox.push_ticketed(Urgency::Inline, event), (1, false));
        assert!(inbox.lock().commands.is_empty());
    }
}
