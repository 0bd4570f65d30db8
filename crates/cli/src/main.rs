//! The `sandbar` binary: argument parsing, wiring and exit codes. Every
//! capability lives in a library crate; this file only connects them.

#![forbid(unsafe_code)]

/// Prints a line on stdout, returning an error (rather than panicking, as
/// `println!` does) when stdout is closed, e.g. by `| head`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// Like [`out!`] without the newline.
macro_rules! out_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod commands;
mod exit;
mod keys;
mod logging;
mod timeline;
mod wiring;

/// mimalloc: a call allocates and frees many small objects on several
/// threads (the request, its events, the redactor's buffers), where glibc's
/// allocator spent a tenth of the server's time, much of it consolidating
/// its free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::ExitCode;

/// Sandbar: a sandbox environment for AI agents.
///
/// Serve a scenario's tools, resources and prompts over MCP, record every
/// call (redacted) in an embedded store, and inspect the recorded runs.
#[derive(Debug, Parser)]
#[command(name = "sandbar", version, about, long_about = None, after_help = exit::HELP)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// Where runs are stored (a SQLite file is created inside).
    #[arg(long, global = true, env = "SANDBAR_DATA", default_value = ".sandbar")]
    data: PathBuf,
    /// Log filter for messages on stderr, e.g. `info` or `sandbar=debug`.
    #[arg(long, global = true, env = "SANDBAR_LOG", default_value = "warn")]
    log: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check scenario files; report every problem with file, line and column.
    ///
    /// Exit status: 0 when every file is valid, 1 when one is not.
    Validate(commands::validate::ValidateArgs),
    /// Print the JSON Schema of the scenario format.
    Schema,
    /// Serve a scenario to MCP clients over Streamable HTTP or stdio.
    ///
    /// Over HTTP the endpoint is http://ADDR/mcp. Every MCP session is a run,
    /// recorded in the data directory; stateless requests share a run named
    /// by their X-Sandbar-Run header.
    Serve(commands::serve::ServeArgs),
    /// Serve a recorded cassette as an MCP server, offline.
    ///
    /// Every call is answered from the recording: the same calls get the same
    /// bytes back. A call the recording does not hold gets an error naming the
    /// closest recorded calls, and the run gets a divergence event. Nothing is
    /// forwarded anywhere: no upstream is started and no connection is opened.
    Replay(commands::replay::ReplayArgs),
    /// Report the secrets and personal data in files (kind, place, a redacted preview).
    ///
    /// Exit status: 0 when nothing is found, 1 when something is, 2 on usage errors.
    Scan(commands::scan::ScanArgs),
    /// Mask files: personal data becomes consistent pseudonyms (or another
    /// operator's output), secrets are redacted. JSON, JSONL, CSV and text.
    Mask(commands::mask::MaskArgs),
    /// List, show, export, import and compare recorded runs.
    #[command(subcommand)]
    Runs(commands::runs::RunsCommand),
    /// Show Sandbar working: serve a scenario, drive a short scripted MCP
    /// session through it as a client would, and print the recorded timeline.
    Demo(commands::demo::DemoArgs),
    /// Turn tokens (the `tokenize` operator's output) back into the values
    /// they stand for, with the tenant's key. Each unmask is written to the
    /// audit trail, with its reason, before anything is shown.
    Unmask(commands::unmask::UnmaskArgs),
    /// The vault: store secrets sealed at rest, list, remove, check, rotate
    /// the key. Values come from standard input or a file, never from an
    /// argument, and are never printed.
    Secret(commands::secret::SecretArgs),
    /// Show a tenant's audit trail and check its hash chain.
    ///
    /// Exit status: 0 when the chain is intact, 1 when an entry was changed
    /// or removed.
    Audit(commands::unmask::AuditArgs),
    /// Issue, list and revoke the bearer tokens agents hold: scoped to
    /// tools, arguments, upstreams and hosts, with a budget, a rate and an
    /// expiry. A token is shown once and stored only as a hash.
    Token(commands::token::TokenArgs),
    /// List the calls waiting for a person's approval (and, with --all,
    /// past decisions).
    Approvals(commands::approval::ApprovalsArgs),
    /// Approve a call waiting for approval; it goes through if its
    /// arguments are the ones approved.
    Approve(commands::approval::DecideArgs),
    /// Deny a call waiting for approval; the agent reads the reason.
    Deny(commands::approval::DecideArgs),
}

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                ExitCode::Usage
            } else {
                ExitCode::Success
            };
            let _ = e.print();
            return code.into();
        }
    };
    let redactor = sandbar_redact::SharedRedactor::new(sandbar_redact::Redactor::new());
    if let Err(e) = logging::init(
        &cli.global.log,
        redactor.for_sink(sandbar_redact::Sink::Logs),
    ) {
        eprintln!("sandbar: {e}");
        return ExitCode::Usage.into();
    }
    // A scenario or cassette that cannot be read is said before anything is
    // created in the data directory (a mistyped path leaves no key behind).
    let input = match &cli.command {
        Command::Serve(args) => Some(args.input()),
        Command::Replay(args) => Some(args.input()),
        Command::Demo(args) => Some(args.input()),
        _ => None,
    };
    if let Some(path) = input
        && let Err(e) = std::fs::File::open(path)
    {
        let message = format!("{}: cannot read: {e}", path.display());
        eprintln!("sandbar: {}", redactor.redact_str(&message));
        return ExitCode::Failure.into();
    }
    // Commands that write runs, cassettes or exports mask personal data in
    // them (the scenario's policy replaces this default once it is loaded).
    // Those that only read the data directory create no key in it.
    let privacy = match &cli.command {
        Command::Runs(runs) if !runs.writes_data() => Some(keys::install_privacy_read_only(
            &redactor,
            &cli.global.data,
            sandbar_redact::PrivacyPolicy::default(),
        )),
        Command::Serve(_)
        | Command::Replay(_)
        | Command::Runs(_)
        | Command::Demo(_)
        | Command::Unmask(_)
        | Command::Secret(_)
        | Command::Audit(_)
        | Command::Token(_)
        | Command::Approvals(_)
        | Command::Approve(_)
        | Command::Deny(_) => Some(keys::install_privacy(
            &redactor,
            &cli.global.data,
            sandbar_redact::PrivacyPolicy::default(),
        )),
        Command::Validate(_) | Command::Schema | Command::Scan(_) | Command::Mask(_) => None,
    };
    if let Some(Err(e)) = privacy {
        eprintln!("sandbar: {e:#}");
        return ExitCode::Failure.into();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sandbar: cannot start the async runtime: {e}");
            return ExitCode::Failure.into();
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Validate(args) => {
                commands::validate::run(args, &cli.global.data, &redactor).await
            }
            Command::Schema => commands::schema(),
            Command::Serve(args) => {
                commands::serve::run(args, &cli.global.data, redactor.clone()).await
            }
            Command::Scan(args) => commands::scan::run(args, &redactor),
            Command::Mask(args) => commands::mask::run(args, &cli.global.data, &redactor),
            Command::Replay(args) => {
                commands::replay::run(args, &cli.global.data, redactor.clone()).await
            }
            Command::Runs(cmd) => {
                commands::runs::run(cmd, &cli.global.data, redactor.clone()).await
            }
            Command::Demo(args) => {
                commands::demo::run(args, &cli.global.data, redactor.clone()).await
            }
            Command::Unmask(args) => {
                commands::unmask::unmask(args, &cli.global.data, redactor.clone()).await
            }
            Command::Secret(args) => {
                commands::secret::run(args, &cli.global.data, redactor.clone()).await
            }
            Command::Audit(args) => {
                commands::unmask::audit(args, &cli.global.data, redactor.clone()).await
            }
            Command::Token(args) => {
                commands::token::run(args, &cli.global.data, redactor.clone()).await
            }
            Command::Approvals(args) => {
                commands::approval::list(args, &cli.global.data, redactor.clone()).await
            }
            Command::Approve(args) => {
                commands::approval::decide(args, true, &cli.global.data, redactor.clone()).await
            }
            Command::Deny(args) => {
                commands::approval::decide(args, false, &cli.global.data, redactor.clone()).await
            }
        }
    });
    match result {
        Ok(code) => code.into(),
        // A closed stdout (`sandbar ... | head`) ends the command quietly.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::Failure.into()
        }
        Err(e) => {
            eprintln!("sandbar: {}", redactor.redact_str(&format!("{e:#}")));
            ExitCode::Failure.into()
        }
    }
}
