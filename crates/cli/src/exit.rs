//! Exit codes, documented in one place and shown in `--help`.

/// How `sandbar` exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything worked; every file checked is valid.
    Success = 0,
    /// What was checked is not valid, what was asked for does not exist, or
    /// the command failed at run time (the message on stderr says which).
    Failure = 1,
    /// The command line itself is wrong.
    Usage = 2,
}

/// The exit-status section of `--help`.
pub const HELP: &str = "Exit status:\n  0  success (every scenario valid)\n  1  invalid scenario, unknown run, or a failure at run time\n  2  usage error (bad arguments)";

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}
