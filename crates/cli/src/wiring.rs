//! Connects the library crates: the scenario's upstream declarations become
//! connections on the MCP SDK, and cassette files become recordings the
//! engine replays.

use std::path::Path;
use std::sync::Arc;

use sandbar_cassette::Cassette;
use sandbar_engine::Upstream;
use sandbar_redact::SharedRedactor;
use sandbar_scenario::{Scenario, UpstreamTransport};
use sandbar_store::{Store, StoreOptions};
use sandbar_upstream::{McpUpstream, Transport, UpstreamConfig};

/// One connection factory per upstream the scenario declares, in its order.
pub fn upstreams(scenario: &Scenario) -> Vec<Arc<dyn Upstream>> {
    scenario
        .upstreams
        .iter()
        .map(|u| {
            let transport = match &u.transport {
                UpstreamTransport::Stdio {
                    command,
                    args,
                    env,
                    cwd,
                } => Transport::Stdio {
                    command: command.clone(),
                    args: args.clone(),
                    env: env.clone(),
                    cwd: cwd.clone(),
                },
                UpstreamTransport::Http { url, headers } => Transport::Http {
                    url: url.clone(),
                    headers: headers.clone(),
                },
            };
            let upstream: Arc<dyn Upstream> = McpUpstream::new(UpstreamConfig {
                name: u.name.clone(),
                transport,
                timeout: u.timeout,
                connect_timeout: u.connect_timeout,
            });
            upstream
        })
        .collect()
}

/// Opens the store in `data`, its writes redacted for the store's sink.
pub async fn open_store(data: &Path, redactor: &SharedRedactor) -> anyhow::Result<Store> {
    use anyhow::Context as _;
    Store::open(
        data,
        redactor.for_sink(sandbar_redact::Sink::Store),
        StoreOptions::default(),
    )
    .await
    .with_context(|| format!("cannot open the store in {}", data.display()))
}

/// Says on stderr when `cassette` was masked under another key than the
/// one in force: its calls that carry personal data will not match.
pub fn check_mask_key(cassette: &Cassette, path: &Path, redactor: &SharedRedactor) {
    let current = redactor.privacy().map(|p| p.key().id());
    if let (Some(recorded), Some(current)) = (&cassette.header.mask_key, current)
        && *recorded != current
    {
        eprintln!(
            "sandbar: warning: {} was masked under key {recorded}, and this data directory's key is {current}; \
             calls that carry personal data will not match it. Replay with the key it was recorded under \
             (the same --data directory, or SANDBAR_MASK_KEY).",
            path.display()
        );
    }
}

/// Loads and validates a cassette, with a message naming the file when it
/// cannot.
pub fn load_cassette(path: &Path) -> Result<Arc<Cassette>, String> {
    if std::fs::metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Err(format!(
            "{}: the cassette does not exist (no such file)",
            path.display()
        ));
    }
    Cassette::load(path)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}
