//! Forwarding to the other real servers CI installs: server-memory keeps
//! its knowledge graph across the calls of one session, server-filesystem
//! reads files in the directory it was started with (Sandbar's empty roots
//! leave that directory in place).

mod common;

use serde_json::json;

use sandbar_upstream::{McpUpstream, Transport};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_state_persists_across_calls_in_a_session() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let memory_file = dir.path().join("memory.jsonl");
    let script = server_script("server-memory", "dist/index.js");
    let upstream = McpUpstream::new(config(
        "memory",
        stdio(
            "node",
            &[&script.display().to_string()],
            &[("MEMORY_FILE_PATH", &memory_file.display().to_string())],
        ),
    ));
    let session = connect(&upstream).await;
    let catalog = match bounded("catalog", session.catalog()).await {
        Ok(catalog) => catalog,
        Err(e) => panic!("{e}"),
    };
    let tools: Vec<_> = catalog
        .tools
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        tools.contains(&"create_entities") && tools.contains(&"read_graph"),
        "{tools:?}"
    );
    // server-memory declares no prompts: that list is empty, not an error.
    assert!(catalog.prompts.is_empty());

    let client = Recorder::default();
    call_tool(
        session.as_ref(),
        &client,
        "create_entities",
        json!({"entities": [{
            "name": "Sandbar",
            "entityType": "project",
            "observations": ["records agent runs"]
        }]}),
    )
    .await;
    let graph = call_tool(session.as_ref(), &client, "read_graph", json!({})).await;
    let text = graph.to_string();
    assert!(
        text.contains("Sandbar") && text.contains("records agent runs"),
        "{graph}"
    );
    bounded("close", session.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_reads_a_file_in_its_directory() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The server resolves symlinks in its allowed directories; so do we.
    let root = std::fs::canonicalize(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let file = root.join("note.txt");
    std::fs::write(&file, "hello from the sandbox\n").unwrap_or_else(|e| panic!("{e}"));
    let script = server_script("server-filesystem", "dist/index.js");
    let upstream = McpUpstream::new(config(
        "fs",
        Transport::Stdio {
            command: "node".to_owned(),
            args: vec![script.display().to_string(), root.display().to_string()],
            env: Default::default(),
            cwd: Some(root.clone()),
        },
    ));
    let session = connect(&upstream).await;
    let catalog = match bounded("catalog", session.catalog()).await {
        Ok(catalog) => catalog,
        Err(e) => panic!("{e}"),
    };
    assert!(catalog.tools.iter().any(|t| t["name"] == "read_text_file"));

    let client = Recorder::default();
    let read = call_tool(
        session.as_ref(),
        &client,
        "read_text_file",
        json!({"path": file.display().to_string()}),
    )
    .await;
    assert_eq!(first_text(&read), "hello from the sandbox\n", "{read}");
    let outside = call_tool(
        session.as_ref(),
        &client,
        "read_text_file",
        json!({"path": "/etc/hostname"}),
    )
    .await;
    assert_eq!(outside["isError"], true, "{outside}");
    bounded("close", session.close()).await;
}
