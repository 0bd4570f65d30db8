//! `sandbar demo`: the first run. It serves a scenario over Streamable HTTP
//! on a free loopback port, connects a real MCP client to it, walks a short
//! scripted session (list and call every tool with its examples, read the
//! resources, fetch the prompts), then prints the run's recorded timeline.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, GetPromptRequestParams,
    Implementation, ReadResourceRequestParams,
};
use rmcp::transport::StreamableHttpClientTransport;
use tokio_util::sync::CancellationToken;

use sandbar_engine::{DEFAULT_TENANT, Engine};
use sandbar_mcp::{HttpOptions, Shared, serve_http};
use sandbar_redact::SharedRedactor;

use crate::exit::ExitCode;
use crate::timeline;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The scenario to demonstrate.
    #[arg(
        value_name = "SCENARIO",
        default_value = "examples/support-desk/scenario.yaml"
    )]
    scenario: PathBuf,
}

impl DemoArgs {
    /// The file the command reads first: the scenario.
    pub fn input(&self) -> &std::path::Path {
        &self.scenario
    }
}

pub async fn run(
    args: DemoArgs,
    data: &Path,
    redactor: SharedRedactor,
) -> anyhow::Result<ExitCode> {
    let scenario = match sandbar_scenario::load_path(&args.scenario) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("{}", redactor.redact_str(&e.detailed()));
            return Ok(ExitCode::Failure);
        }
    };
    // The demo is the first run, with nothing to install: its scripted
    // client drives stubs. Upstreams are real servers to start or reach,
    // which `serve` does.
    if !scenario.upstreams.is_empty() {
        let names: Vec<&str> = scenario.upstreams.iter().map(|u| u.name.as_str()).collect();
        eprintln!(
            "sandbar: {} declares upstreams ({}), real MCP servers that the demo does not start; serve it with `sandbar serve {}` and point an MCP client at it",
            args.scenario.display(),
            names.join(", "),
            args.scenario.display()
        );
        return Ok(ExitCode::Usage);
    }
    crate::keys::install_privacy(&redactor, data, scenario.privacy.policy.clone())?;
    let store = crate::wiring::open_store(data, &redactor).await?;
    let engine = Engine::new(scenario.clone(), store.clone(), &redactor)?;
    let shared = Shared::new(engine, "http", None);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve_http(
        listener,
        shared,
        HttpOptions::default(),
        shutdown.clone(),
    ));
    out!(
        "Serving {} ({}) at {url}",
        args.scenario.display(),
        scenario.name
    );
    out!("Driving a scripted MCP session through it...\n");

    let script = drive(&url, &scenario).await;
    shutdown.cancel();
    server.await.context("the server task failed")??;
    let transcript = script?;
    for line in &transcript {
        out!("  {}", redactor.redact_str(line));
    }

    let runs = store.list_runs(DEFAULT_TENANT, Some(1)).await?;
    let Some(run) = runs.first() else {
        anyhow::bail!("the session left no run in the store");
    };
    let events = store.events(&run.id).await?;
    out!("\nRecorded timeline (sandbar runs show {}):\n", run.id);
    out_raw!("{}", redactor.redact_str(&timeline::render(run, &events)));
    out!(
        "\nInspect it again with `sandbar runs show {}`, or export it with `sandbar runs export {} --format jsonl`.",
        run.id,
        run.id
    );
    store.close().await?;
    Ok(ExitCode::Success)
}

/// The scripted session. Returns one line per step for the transcript.
async fn drive(url: &str, scenario: &sandbar_scenario::Scenario) -> anyhow::Result<Vec<String>> {
    let identity = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("sandbar-demo", env!("CARGO_PKG_VERSION")),
    );
    let client = identity
        .serve(StreamableHttpClientTransport::from_uri(url.to_owned()))
        .await
        .context("the demo client could not connect")?;
    let mut lines = Vec::new();
    let tools = client.list_all_tools().await?;
    lines.push(format!(
        "tools/list → {} tools: {}",
        tools.len(),
        tools
            .iter()
            .map(|t| t.name.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for tool in &scenario.tools {
        for example in &tool.examples {
            let request =
                CallToolRequestParams::new(tool.name.clone()).with_arguments(example.clone());
            let result = client.call_tool(request).await?;
            let value = serde_json::to_value(&result)?;
            let text = value
                .pointer("/content/0/text")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .replace('\n', " ");
            let marker = if result.is_error == Some(true) {
                "tool error"
            } else {
                "ok"
            };
            lines.push(format!(
                "tools/call {} {} → {marker}: {}",
                tool.name,
                serde_json::Value::Object(example.clone()),
                shorten(&text)
            ));
        }
    }
    for resource in &scenario.resources {
        let result = client
            .read_resource(ReadResourceRequestParams::new(resource.uri.clone()))
            .await?;
        lines.push(format!(
            "resources/read {} → {} content item(s)",
            resource.uri,
            result.contents.len()
        ));
    }
    for prompt in scenario
        .prompts
        .iter()
        .filter(|p| p.arguments.iter().all(|a| !a.required))
    {
        let result = client
            .get_prompt(GetPromptRequestParams::new(prompt.name.clone()))
            .await?;
        lines.push(format!(
            "prompts/get {} → {} message(s)",
            prompt.name,
            result.messages.len()
        ));
    }
    client.cancel().await?;
    Ok(lines)
}

fn shorten(text: &str) -> String {
    if text.chars().count() > 100 {
        format!("{}…", text.chars().take(99).collect::<String>())
    } else {
        text.to_owned()
    }
}
