//! The stdio transport: one client per process, the same behaviour as over
//! HTTP, a run recorded with transport `stdio`, ended when the client leaves.

mod common;

use serde_json::json;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_session_is_a_recorded_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let client = TestClient::default();
    let inbox = client.inbox.clone();
    let s = connect_stdio(&example("support-desk"), &data, client).await;

    let info = s.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("support-desk")
    );
    assert!(
        info.instructions
            .as_deref()
            .unwrap_or("")
            .contains("supervisor")
    );
    let tools = s.list_all_tools().await.expect("tools");
    assert_eq!(tools.len(), 5);

    let order = call(&s, "lookup_order", json!({"order_id": "o1001"})).await;
    assert_eq!(order["structuredContent"]["status"], json!("delivered"));
    let refund = call(
        &s,
        "issue_refund",
        json!({"order_id": "o1001", "amount": 120}),
    )
    .await;
    assert_eq!(
        refund["structuredContent"]["order"]["status"],
        json!("refunded"),
        "{refund}"
    );
    let twice = call(
        &s,
        "issue_refund",
        json!({"order_id": "o1001", "amount": 10}),
    )
    .await;
    assert_eq!(text(&twice), "order o1001 was already refunded");
    // The scenario's 10% provider fault fires on the third refund under seed 42.
    let faulted = call(
        &s,
        "issue_refund",
        json!({"order_id": "o1003", "amount": 40}),
    )
    .await;
    assert_eq!(text(&faulted), "payment provider timeout (gateway 504)");
    let too_much = call(
        &s,
        "issue_refund",
        json!({"order_id": "o1003", "amount": 40}),
    )
    .await;
    assert_eq!(text(&too_much), "cannot refund 40: order o1003 totals 35.5");
    assert!(
        inbox.all().is_empty(),
        "no notifications expected: {:?}",
        inbox.all()
    );
    s.cancel().await.expect("close");

    // The child exits when its client goes away; its run is complete.
    let mut shown = newest_run(&data);
    for _ in 0..100 {
        if shown["run"]["status"] == json!("completed") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        shown = newest_run(&data);
    }
    assert_eq!(shown["run"]["transport"], json!("stdio"));
    assert_eq!(shown["run"]["status"], json!("completed"));
    let calls = shown["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["method"] == json!("tools/call"))
        .count();
    assert!(calls >= 8, "{calls} tools/call events");
}
