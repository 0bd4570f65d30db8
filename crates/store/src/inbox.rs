//! The queue from the store's handles to its writer thread.
//!
//! A mutex-guarded list and a condition variable, rather than a channel,
//! for two reasons, both about thread wake-ups (which, on the small
//! machines Sandbar runs on, cost more than the work of recording a call):
//!
//! - A sender knows what the writer is doing, and wakes it only when it
//!   must: when the writer sleeps with nothing to do, or sleeps holding a
//!   batch open and the new command is one somebody waits for (an event
//!   waited on, a control command, the close). Events nobody waits for yet
//!   join the held batch without waking it.
//! - The writer is woken after the lock is let go, so it does not wake only
//!   to block on the lock its waker still holds, and it takes everything
//!   queued in one go.
//!
//! Ticket order and queue order are the same: tickets are handed out under
//! the same lock that queues the command.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::writer::Command;

/// What the writer is doing, as far as a sender needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// Working, or already woken: it looks at the queue before it sleeps.
    Awake,
    /// Asleep with nothing to do: any command wakes it.
    Idle,
    /// Asleep holding a batch open until a deadline: only a command that
    /// somebody waits for wakes it.
    Holding,
    /// Stopped: commands are dropped (their waiters see the store closed).
    Gone,
}

struct State {
    /// The last ticket handed out.
    next: u64,
    commands: VecDeque<Command>,
    writer: Writer,
    /// Every store handle is gone: the writer finishes what is queued and
    /// stops.
    closed: bool,
    /// Somebody started waiting for a queued event since the writer last
    /// looked: a batch held open goes out now.
    nudged: bool,
}

pub(crate) struct Inbox {
    state: Mutex<State>,
    wake: Condvar,
}

/// What [`Inbox::receive`] got.
pub(crate) enum Received {
    /// Commands were moved into the writer's buffer.
    Some,
    /// The deadline passed with nothing queued, or somebody now waits for
    /// a queued event: hold the batch no longer.
    Timeout,
    /// The store is closed and nothing is left.
    Closed,
}

/// Whether a sender waits for what it queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Urgency {
    /// An event nobody waits for yet: it may join a batch held open.
    CanWait,
    /// Somebody waits for it.
    Waited,
}

impl Inbox {
    pub(crate) fn new() -> Inbox {
        Inbox {
            state: Mutex::new(State {
                next: 0,
                commands: VecDeque::new(),
                writer: Writer::Awake,
                closed: false,
                nudged: false,
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues the command `make(ticket)` under the next ticket, and returns
    /// the ticket. If the writer has stopped, the command is dropped.
    pub(crate) fn push_ticketed(&self, urgency: Urgency, make: impl FnOnce(u64) -> Command) -> u64 {
        let mut state = self.lock();
        state.next += 1;
        let ticket = state.next;
        let command = make(ticket);
        self.queue(state, urgency, command);
        ticket
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

    fn queue(&self, mut state: MutexGuard<'_, State>, urgency: Urgency, command: Command) {
        if state.writer == Writer::Gone {
            return;
        }
        state.commands.push_back(command);
        let wake = match state.writer {
            Writer::Idle => true,
            Writer::Holding => urgency == Urgency::Waited,
            Writer::Awake | Writer::Gone => false,
        };
        self.wake_if(state, wake);
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

    /// Wakes the writer if it holds a batch open: somebody now waits for an
    /// event already queued.
    pub(crate) fn nudge(&self) {
        let mut state = self.lock();
        state.nudged = true;
        let wake = state.writer == Writer::Holding;
        self.wake_if(state, wake);
    }

    /// Every store handle is gone.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let wake = state.writer != Writer::Gone;
        self.wake_if(state, wake);
    }

    /// The writer has stopped: later commands are dropped, and so are any
    /// still queued (their waiters see the store closed).
    pub(crate) fn writer_gone(&self) {
        let dropped = {
            let mut state = self.lock();
            state.writer = Writer::Gone;
            std::mem::take(&mut state.commands)
        };
        drop(dropped);
    }

    /// The writer's side: moves every queued command into `into`. With
    /// nothing queued, sleeps until something is (`until: None`), or, while
    /// holding a batch open, until a waited-for command comes or `until`
    /// passes.
    pub(crate) fn receive(&self, into: &mut VecDeque<Command>, until: Option<Instant>) -> Received {
        let mut state = self.lock();
        loop {
            if !state.commands.is_empty() {
                into.append(&mut state.commands);
                state.writer = Writer::Awake;
                return Received::Some;
            }
            if state.closed {
                state.writer = Writer::Awake;
                return Received::Closed;
            }
            match until {
                None => {
                    state.nudged = false;
                    state.writer = Writer::Idle;
                    state = self
                        .wake
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline || std::mem::take(&mut state.nudged) {
                        state.writer = Writer::Awake;
                        return Received::Timeout;
                    }
                    state.writer = Writer::Holding;
                    state = self
                        .wake
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
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

    /// Runs `receive` on a thread of its own, holding until `hold` from now,
    /// and sends back what it got once it returns.
    fn writer(
        inbox: &Arc<Inbox>,
        hold: Option<Duration>,
    ) -> std::sync::mpsc::Receiver<(bool, usize)> {
        let (tx, rx) = std::sync::mpsc::channel();
        let inbox = Arc::clone(inbox);
        std::thread::spawn(move || {
            let mut got = VecDeque::new();
            let received = inbox.receive(&mut got, hold.map(|d| Instant::now() + d));
            let _ = tx.send((matches!(received, Received::Some), got.len()));
        });
        rx
    }

    fn until_asleep(inbox: &Inbox, state: Writer) {
        while inbox.lock().writer != state {
            std::thread::yield_now();
        }
    }

    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn an_idle_writer_wakes_for_anything_and_takes_all_that_is_queued() {
        let inbox = Arc::new(Inbox::new());
        let got = writer(&inbox, None);
        until_asleep(&inbox, Writer::Idle);
        let first = inbox.push_ticketed(Urgency::CanWait, |_| control());
        assert_eq!(first, 1);
        assert_eq!(got.recv().expect("the writer thread answers"), (true, 1));
        // Queued while nobody listens: taken in one go.
        assert!(inbox.push(Urgency::CanWait, control()));
        assert!(inbox.push(Urgency::Waited, control()));
        assert_eq!(
            writer(&inbox, None)
                .recv()
                .expect("the writer thread answers"),
            (true, 2)
        );
    }

    #[test]
    fn a_held_batch_is_not_woken_by_events_nobody_waits_for() {
        let inbox = Arc::new(Inbox::new());
        let got = writer(&inbox, Some(Duration::from_millis(300)));
        until_asleep(&inbox, Writer::Holding);
        assert!(inbox.push(Urgency::CanWait, control()));
        // Still holding: the push did not wake it.
        assert_eq!(inbox.lock().writer, Writer::Holding);
        // At the deadline it takes what came meanwhile.
        assert_eq!(got.recv().expect("the writer thread answers"), (true, 1));
    }

    #[test]
    fn a_held_batch_goes_out_when_somebody_waits() {
        for wake in ["waited command", "nudge", "close"] {
            let inbox = Arc::new(Inbox::new());
            let got = writer(&inbox, Some(LONG));
            until_asleep(&inbox, Writer::Holding);
            match wake {
                "waited command" => assert!(inbox.push(Urgency::Waited, control())),
                "nudge" => inbox.nudge(),
                _ => inbox.close(),
            }
            let expected = if wake == "waited command" {
                (true, 1)
            } else {
                (false, 0)
            };
            assert_eq!(
                got.recv().expect("the writer thread answers"),
                expected,
                "{wake}"
            );
        }
    }

    #[test]
    fn a_nudge_before_the_writer_holds_is_not_lost() {
        let inbox = Arc::new(Inbox::new());
        inbox.nudge();
        // The writer has not started holding yet when somebody starts
        // waiting; it must not then sleep until its deadline.
        assert_eq!(
            writer(&inbox, Some(LONG))
                .recv()
                .expect("the writer thread answers"),
            (false, 0)
        );
    }

    #[test]
    fn after_the_writer_is_gone_commands_are_refused_and_dropped() {
        let inbox = Inbox::new();
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
        assert_eq!(inbox.push_ticketed(Urgency::CanWait, |_| control()), 1);
        assert!(inbox.lock().commands.is_empty());
    }
}
