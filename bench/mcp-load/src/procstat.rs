//! CPU time and resident memory of a process, read from Linux's `/proc`.
//!
//! On a machine where the load generator shares the cores with the server
//! it drives, wall-clock throughput says as much about the client as about
//! the server. CPU time spent per call by each side is the figure that does
//! not depend on who else is running, so the load generator samples it
//! around every measured window.

use std::path::PathBuf;

/// The kernel's `USER_HZ`: the unit of the CPU times in `/proc/PID/stat`.
/// It is 100 on every mainstream Linux architecture; reading it properly
/// needs `sysconf`, which this crate leaves alone to stay free of `unsafe`.
const TICKS_PER_SECOND: f64 = 100.0;

/// A process whose CPU time and memory can be sampled.
#[derive(Debug, Clone)]
pub struct Process {
    dir: PathBuf,
}

impl Process {
    /// The process with this id.
    pub fn pid(pid: u32) -> Process {
        Process {
            dir: PathBuf::from(format!("/proc/{pid}")),
        }
    }

    /// The load generator itself.
    pub fn current() -> Process {
        Process {
            dir: PathBuf::from("/proc/self"),
        }
    }

    /// User plus system CPU time of every thread, living or exited, in
    /// seconds; `None` where `/proc` is not there or the process is gone.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(self.dir.join("stat")).ok()?;
        parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / TICKS_PER_SECOND)
    }

    /// Resident set size in kibibytes.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(self.dir.join("status")).ok()?;
        parse_rss_kib(&status)
    }
}

/// `utime + stime` from the text of `/proc/PID/stat`. The command name (the
/// second field) is in parentheses and may itself hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the name: state(3) ppid pgrp session tty_nr tpgid flags minflt
    // cminflt majflt cmajflt utime(14) stime(15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_the_last_parenthesis() {
        let stat =
            "4242 (odd) name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn rss_is_read_from_status() {
        let status = "Name:\tnode\nVmPeak:\t  900 kB\nVmRSS:\t   51234 kB\nThreads:\t7\n";
        assert_eq!(parse_rss_kib(status), Some(51234));
        assert_eq!(parse_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = Process::current();
        assert!(me.cpu_seconds().is_some());
        assert!(me.rss_kib().is_some_and(|kib| kib > 0));
    }
}
