//! `sandbar serve SCENARIO`: loads the scenario, connects its upstreams,
//! opens the store and serves MCP over Streamable HTTP (default) or stdio
//! until interrupted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use tokio_util::sync::CancellationToken;

use sandbar_engine::{Engine, EngineOptions};
use sandbar_mcp::{Access, HttpOptions, Shared, serve_http, serve_stdio};
use sandbar_redact::SharedRedactor;
use sandbar_scenario::Mode;
use sandbar_store::Store;

use crate::exit::ExitCode;
use crate::wiring;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The scenario file to serve.
    #[arg(value_name = "SCENARIO")]
    scenario: PathBuf,
    /// Seed for every run (overrides the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Write every run to a cassette in this directory (one `RUN_ID.jsonl`
    /// per run), whatever the tools' modes.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    #[command(flatten)]
    front: FrontArgs,
}

impl ServeArgs {
    /// The file the command reads first: the scenario.
    pub fn input(&self) -> &std::path::Path {
        &self.scenario
    }
}

/// How MCP clients reach the sandbox.
#[derive(Debug, Args)]
pub struct FrontArgs {
    /// Address for Streamable HTTP; the endpoint is http://ADDR/mcp. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:7332", value_name = "ADDR")]
    listen: String,
    /// Serve one client over stdin/stdout instead of HTTP.
    #[arg(long, conflicts_with = "listen")]
    stdio: bool,
    /// Serve HTTP without sessions: every request stands alone and requests
    /// share the run named by their X-Sandbar-Run header.
    #[arg(long)]
    stateless: bool,
    /// Also accept this Host header (needed when listening beyond loopback). Repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// Also accept this browser Origin (scheme://host[:port|:*]). Repeatable.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Largest HTTP request body accepted, in bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024, value_name = "BYTES")]
    max_body: usize,
    /// Close an HTTP session (and end its run) after this many seconds without a request.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    session_idle: u64,
    /// `required`: refuse clients without a valid token (HTTP:
    /// `Authorization: Bearer`, stdio: SANDBAR_TOKEN). `open` (the local
    /// single-user default): clients may come without one, and a client
    /// that presents one is held to its scope.
    #[arg(long, value_enum, default_value_t = AuthMode::Open)]
    auth: AuthMode,
}

/// Whether clients must authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    Open,
    Required,
}

pub async fn run(
    args: ServeArgs,
    data: &Path,
    redactor: SharedRedactor,
) -> anyhow::Result<ExitCode> {
    // The vault's secrets, for `{{ secrets.NAME }}` in upstream headers and
    // environments; registered with the redactor as they are opened.
    let vault = super::secret::open_vault(data, crate::keys::DEFAULT_TENANT, &redactor).await?;
    let scenario = match sandbar_scenario::load_path_with_vault(&args.scenario, vault.as_ref()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("{}", redactor.redact_str(&e.detailed()));
            return Ok(ExitCode::Failure);
        }
    };
    crate::keys::install_privacy(&redactor, data, scenario.privacy.policy.clone())?;
    let cassette = match scenario
        .replay
        .cassette
        .as_ref()
        .filter(|_| scenario.uses_replay())
    {
        Some(path) => match wiring::load_cassette(path) {
            Ok(c) => {
                wiring::check_mask_key(&c, path, &redactor);
                Some(c)
            }
            Err(message) => {
                eprintln!("sandbar: {}", redactor.redact_str(&message));
                return Ok(ExitCode::Failure);
            }
        },
        None => None,
    };
    let store = crate::wiring::open_store(data, &redactor).await?;
    let record_dir = match (&args.record, &scenario.record_dir) {
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => dir.clone(),
        (None, None) => data.join("cassettes"),
    };
    let records = |m: Option<Mode>| m == Some(Mode::Record);
    // Where runs' cassettes go, when runs write them: always with
    // `--record`, else when something is in `record` mode.
    let cassettes = (args.record.is_some()
        || records(scenario.mode)
        || scenario.upstreams.iter().any(|u| records(u.mode))
        || scenario.tools.iter().any(|t| records(t.mode)))
    .then(|| record_dir.clone());
    let options = EngineOptions {
        upstreams: wiring::upstreams(&scenario),
        cassette,
        replay_only: false,
        record_dir: Some(record_dir),
        record_everything: args.record.is_some(),
    };
    let engine = match Engine::build(scenario, store.clone(), &redactor, options).await {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("sandbar: {}", redactor.redact_str(&e.to_string()));
            store.close().await?;
            return Ok(ExitCode::Failure);
        }
    };
    let label = args.scenario.display().to_string();
    let served = Served {
        label: &label,
        data,
        cassettes: cassettes.as_deref(),
    };
    serve_engine(engine, store, &args.front, args.seed, served).await
}

/// What is served, for what the server says on stderr.
pub struct Served<'a> {
    /// The scenario or cassette served.
    pub label: &'a str,
    /// The data directory runs are recorded in.
    pub data: &'a Path,
    /// Where runs write their cassettes, when they write them.
    pub cassettes: Option<&'a Path>,
}

/// Serves an engine over the chosen front until interrupted (HTTP) or
/// until the client leaves (stdio). Once the runs have ended, says where
/// their cassettes are, if they wrote any.
pub async fn serve_engine(
    engine: Arc<Engine>,
    store: Store,
    front: &FrontArgs,
    seed: Option<u64>,
    served: Served<'_>,
) -> anyhow::Result<ExitCode> {
    // A little before now: the store may keep start times less precisely.
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    let Served {
        label,
        data,
        cassettes,
    } = served;
    let mut access = Access {
        required: front.auth == AuthMode::Required,
        stdio_principal: None,
    };
    if front.stdio {
        match std::env::var("SANDBAR_TOKEN") {
            Ok(bearer) if !bearer.trim().is_empty() => match engine.authenticate(&bearer).await {
                Ok(principal) => {
                    tracing::info!(token = %principal.token_id, "the stdio client authenticated");
                    access.stdio_principal = Some(principal);
                }
                Err(e) => {
                    eprintln!("sandbar: SANDBAR_TOKEN does not authenticate: {e}");
                    store.close().await?;
                    return Ok(ExitCode::Failure);
                }
            },
            _ if access.required => {
                eprintln!(
                    "sandbar: --auth required: set SANDBAR_TOKEN to a token from `sandbar token issue`"
                );
                store.close().await?;
                return Ok(ExitCode::Failure);
            }
            _ => eprintln!(
                "sandbar: serving over stdio without a token (local single-user mode; --auth required and SANDBAR_TOKEN change that)"
            ),
        }
    }
    let shared = Shared::with_access(
        engine,
        if front.stdio { "stdio" } else { "http" },
        seed,
        access,
    );
    if front.stdio {
        tracing::info!("serving {label} over stdio");
        serve_stdio(shared).await?;
        if let Some(dir) = cassettes {
            report_cassettes(&store, dir, since).await;
        }
        store.close().await?;
        return Ok(ExitCode::Success);
    }

    let listener = tokio::net::TcpListener::bind(&front.listen)
        .await
        .with_context(|| format!("cannot listen on {}", front.listen))?;
    let address = listener.local_addr()?;
    let mut options = HttpOptions::default();
    options
        .allowed_hosts
        .extend(front.allow_hosts.iter().cloned());
    options
        .allowed_origins
        .extend(front.allow_origins.iter().cloned());
    options.max_body_bytes = front.max_body;
    options.stateless = front.stateless;
    options.session_idle = std::time::Duration::from_secs(front.session_idle.max(1));
    if !address.ip().is_loopback()
        && options.allowed_hosts.len() == HttpOptions::default().allowed_hosts.len()
    {
        eprintln!(
            "sandbar: listening on {address}, but only loopback Host headers are accepted; add --allow-host NAME for the names clients use"
        );
    }
    out!("listening on http://{address}/mcp");
    let cassettes_to = cassettes
        .map(|dir| format!(" (cassettes to {}/RUN_ID.jsonl)", dir.display()))
        .unwrap_or_default();
    eprintln!(
        "sandbar: serving {label} ({}) at http://{address}/mcp, recording to {}{cassettes_to}; {}",
        shared.engine().scenario().name,
        data.display(),
        if shared.auth_required() {
            "authentication required (Authorization: Bearer, from `sandbar token issue`)"
        } else {
            "open: clients need no token (local single-user mode; --auth required changes that)"
        }
    );
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signal.cancel();
    });
    serve_http(listener, shared, options, shutdown).await?;
    if let Some(dir) = cassettes {
        report_cassettes(&store, dir, since).await;
    }
    store.close().await?;
    Ok(ExitCode::Success)
}

/// Most cassettes named one by one when a server stops; past this many
/// the rest are counted.
const CASSETTES_NAMED: usize = 20;

/// Says on stderr where the runs started since `since` wrote their
/// cassettes (`DIR/RUN_ID.jsonl`, as the engine names them), once they
/// have ended.
async fn report_cassettes(store: &Store, dir: &Path, since: chrono::DateTime<chrono::Utc>) {
    let runs = match store.list_runs(crate::keys::DEFAULT_TENANT, None).await {
        Ok(runs) => runs,
        Err(e) => {
            eprintln!(
                "sandbar: cannot list the runs to find their cassettes in {}: {e}",
                dir.display()
            );
            return;
        }
    };
    // Newest first; the oldest of this server's runs is named first.
    let mut written: Vec<(String, PathBuf)> = runs
        .iter()
        .take_while(|run| run.started_at >= since)
        .map(|run| (run.id.clone(), dir.join(format!("{}.jsonl", run.id))))
        .filter(|(_, path)| path.is_file())
        .collect();
    written.reverse();
    for (id, path) in written.iter().take(CASSETTES_NAMED) {
        eprintln!("sandbar: run {id} wrote its cassette to {}", path.display());
    }
    if written.len() > CASSETTES_NAMED {
        eprintln!(
            "sandbar: and {} more runs wrote theirs to {}",
            written.len() - CASSETTES_NAMED,
            dir.display()
        );
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
