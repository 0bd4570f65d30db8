//! Access tokens and approvals through the store's public API, on real
//! files in temporary directories: storing and finding tokens, revoking,
//! spending against a budget (also from a second store on the same file),
//! and approvals from request to decision or expiry, redacted on disk.

// Tests fail by panicking; unwrapping is how they say so.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use sandbar_redact::{Redactor, SharedRedactor};
use sandbar_store::{
    ApprovalDecision, ApprovalStatus, Decided, NewApproval, Spend, Store, StoreError, StoreOptions,
    StoredToken,
};
use serde_json::json;
use sha2::{Digest as _, Sha256};

const SECRET: &str = "sk-live-7f3a9c2e41d8b6f05e9a";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 9, 0, 0).unwrap()
}

fn secret_redactor() -> SharedRedactor {
    SharedRedactor::new(
        Redactor::builder()
            .secret("mailer_token", SECRET)
            .unwrap()
            .build(),
    )
}

async fn open(dir: &Path) -> Store {
    Store::open(dir, secret_redactor(), StoreOptions::default())
        .await
        .unwrap()
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn token(id: &str, tenant: &str, minutes: i64) -> StoredToken {
    StoredToken {
        id: id.to_owned(),
        tenant: tenant.to_owned(),
        name: format!("label of {id}"),
        hash: sha256(&format!("bearer-{id}")),
        scenario: Some("refund-desk".to_owned()),
        run: None,
        scopes: json!({"tools": ["refund", "lookup"]}),
        budget: None,
        calls_used: 0,
        created_at: t0() + Duration::minutes(minutes),
        expires_at: None,
        revoked_at: None,
    }
}

fn approval(id: &str, tenant: &str, minutes: i64) -> NewApproval {
    let arguments = json!({"order": 42, "amount": 1200});
    NewApproval {
        id: id.to_owned(),
        tenant: tenant.to_owned(),
        run_id: "run-1".to_owned(),
        tool: "refund".to_owned(),
        args_hash: sha256(&arguments.to_string()),
        arguments,
        rule: "refunds-over-1000".to_owned(),
        message: "refund 1200 on order 42?".to_owned(),
        requested_by: "tok_a".to_owned(),
        requested_at: t0() + Duration::minutes(minutes),
        expires_at: t0() + Duration::minutes(minutes + 10),
    }
}

fn decision(approve: bool, args_hash: &str) -> ApprovalDecision {
    ApprovalDecision {
        approve,
        by: "alice".to_owned(),
        args_hash: args_hash.to_owned(),
        reason: Some("checked the order".to_owned()),
    }
}

/// Every file SQLite keeps for the store, concatenated.
fn raw_store_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["sandbar.db", "sandbar.db-wal", "sandbar.db-shm"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            bytes.extend(b);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn tokens_are_stored_listed_and_found_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.ensure_tenant("acme", "Acme").await.unwrap();
    let mut b = token("tok_b", "acme", 2);
    b.budget = Some(5);
    b.expires_at = Some(t0() + Duration::days(1));
    b.run = Some("run-7".to_owned());
    let a = token("tok_a", "acme", 1);
    let other = token("tok_z", "default", 0);
    for t in [&b, &a, &other] {
        store.put_token(t.clone()).await.unwrap();
    }

    assert_eq!(store.tokens("acme").await.unwrap(), [a.clone(), b.clone()]);
    assert_eq!(store.tokens("default").await.unwrap(), [other]);
    assert_eq!(store.token_by_hash(&b.hash).await.unwrap(), Some(b.clone()));
    assert_eq!(store.token_by_hash(&sha256("nope")).await.unwrap(), None);
    assert_eq!(store.token("acme", "tok_a").await.unwrap(), Some(a.clone()));
    assert_eq!(store.token("default", "tok_a").await.unwrap(), None);

    // The same hash under another id, and the same id, are both refused.
    let mut dup = token("tok_c", "acme", 3);
    dup.hash = a.hash.clone();
    let err = store.put_token(dup).await.unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateToken { field: "hash", .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "token \"tok_c\" was not stored: a token with the same hash already exists"
    );
    let err = store
        .put_token(token("tok_a", "acme", 3))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateToken { field: "id", .. }),
        "{err}"
    );
    assert_eq!(store.tokens("acme").await.unwrap().len(), 2);

    // A bearer value where the hash belongs is refused without being echoed.
    let mut raw = token("tok_d", "acme", 4);
    raw.hash = SECRET.to_owned();
    let err = store.put_token(raw).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidInput {
                what: "token hash",
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains(SECRET), "{err}");
    let err = store
        .put_token(token(&format!("tok_{SECRET}"), "acme", 4))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidInput {
                what: "token id",
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .put_token(token("tok_e", "nobody", 4))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownTenant { .. }), "{err}");

    store.close().await.unwrap();
    let store = open(dir.path()).await;
    assert_eq!(store.tokens("acme").await.unwrap(), [a, b]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn revoking_is_once_and_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.put_token(token("tok_a", "default", 0)).await.unwrap();
    let at = t0() + Duration::hours(1);
    assert!(!store.revoke_token("acme", "tok_a", at).await.unwrap());
    assert!(!store.revoke_token("default", "tok_x", at).await.unwrap());
    assert!(store.revoke_token("default", "tok_a", at).await.unwrap());
    assert!(
        !store
            .revoke_token("default", "tok_a", at + Duration::hours(1))
            .await
            .unwrap()
    );
    let stored = store.token("default", "tok_a").await.unwrap().unwrap();
    assert_eq!(stored.revoked_at, Some(at), "the first revocation stands");
    store.close().await.unwrap();
}

#[tokio::test]
async fn spending_counts_up_to_the_budget_and_no_further() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let mut limited = token("tok_b", "default", 0);
    limited.budget = Some(3);
    store.put_token(limited).await.unwrap();
    let now = t0() + Duration::hours(1);
    for n in 1..=3 {
        assert_eq!(
            store.spend_token("tok_b", now).await.unwrap(),
            Spend::Spent { calls_used: n }
        );
    }
    for _ in 0..2 {
        assert_eq!(
            store.spend_token("tok_b", now).await.unwrap(),
            Spend::OverBudget
        );
    }
    let stored = store.token("default", "tok_b").await.unwrap().unwrap();
    assert_eq!(stored.calls_used, 3, "refused calls are not counted");

    let mut zero = token("tok_zero", "default", 0);
    zero.budget = Some(0);
    store.put_token(zero).await.unwrap();
    assert_eq!(
        store.spend_token("tok_zero", now).await.unwrap(),
        Spend::OverBudget
    );

    store
        .put_token(token("tok_free", "default", 0))
        .await
        .unwrap();
    for n in 1..=50 {
        assert_eq!(
            store.spend_token("tok_free", now).await.unwrap(),
            Spend::Spent { calls_used: n }
        );
    }
    store.close().await.unwrap();
}

#[tokio::test]
async fn expired_revoked_and_unknown_tokens_are_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let expires = t0() + Duration::hours(1);
    let mut expiring = token("tok_exp", "default", 0);
    expiring.expires_at = Some(expires);
    expiring.budget = Some(10);
    store.put_token(expiring).await.unwrap();
    assert_eq!(
        store
            .spend_token("tok_exp", expires - Duration::nanoseconds(1))
            .await
            .unwrap(),
        Spend::Spent { calls_used: 1 }
    );
    assert_eq!(
        store.spend_token("tok_exp", expires).await.unwrap(),
        Spend::Expired,
        "a token is expired from its expires_at on"
    );
    assert_eq!(
        store
            .spend_token("tok_exp", expires + Duration::days(1))
            .await
            .unwrap(),
        Spend::Expired
    );

    // Revoked wins over expired and over-budget alike.
    store
        .put_token(token("tok_rev", "default", 0))
        .await
        .unwrap();
    assert!(
        store
            .revoke_token("default", "tok_rev", t0())
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke_token("default", "tok_exp", t0())
            .await
            .unwrap()
    );
    assert_eq!(
        store.spend_token("tok_rev", t0()).await.unwrap(),
        Spend::Revoked
    );
    assert_eq!(
        store
            .spend_token("tok_exp", expires + Duration::days(1))
            .await
            .unwrap(),
        Spend::Revoked
    );
    assert_eq!(
        store.spend_token("tok_nobody", t0()).await.unwrap(),
        Spend::Unknown
    );
    let calls = |id: &'static str| {
        let store = store.clone();
        async move {
            store
                .token("default", id)
                .await
                .unwrap()
                .unwrap()
                .calls_used
        }
    };
    assert_eq!(calls("tok_exp").await, 1);
    assert_eq!(calls("tok_rev").await, 0);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_share_revocations_and_budgets() {
    let dir = tempfile::tempdir().unwrap();
    let node_a = open(dir.path()).await;
    let node_b = open(dir.path()).await;
    let mut shared = token("tok_s", "default", 0);
    shared.budget = Some(40);
    node_a.put_token(shared).await.unwrap();
    node_a
        .put_token(token("tok_r", "default", 0))
        .await
        .unwrap();
    let now = t0() + Duration::hours(1);

    assert_eq!(
        node_b.spend_token("tok_r", now).await.unwrap(),
        Spend::Spent { calls_used: 1 }
    );
    assert!(node_a.revoke_token("default", "tok_r", now).await.unwrap());
    assert_eq!(
        node_b.spend_token("tok_r", now).await.unwrap(),
        Spend::Revoked,
        "a revocation through one store is seen by the other at once"
    );
    assert!(
        node_b
            .token_by_hash(&sha256("bearer-tok_r"))
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );

    // Both nodes spend one budget concurrently: exactly the budget is spent.
    let spend_all = |store: Store| {
        tokio::spawn(async move {
            let mut spent = Vec::new();
            for _ in 0..30 {
                match store.spend_token("tok_s", now).await.unwrap() {
                    Spend::Spent { calls_used } => spent.push(calls_used),
                    Spend::OverBudget => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            spent
        })
    };
    let a = spend_all(node_a.clone());
    let b = spend_all(node_b.clone());
    let mut spent = a.await.unwrap();
    spent.extend(b.await.unwrap());
    spent.sort_unstable();
    assert_eq!(spent, (1..=40).collect::<Vec<u64>>(), "each count once");
    assert_eq!(
        node_a
            .token("default", "tok_s")
            .await
            .unwrap()
            .unwrap()
            .calls_used,
        40
    );
    node_a.close().await.unwrap();
    node_b.close().await.unwrap();
}

#[tokio::test]
async fn an_approval_goes_from_pending_to_decided_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.ensure_tenant("acme", "Acme").await.unwrap();
    let first = approval("apr_1", "acme", 0);
    let second = approval("apr_2", "acme", 1);
    store.request_approval(first.clone()).await.unwrap();
    store.request_approval(second.clone()).await.unwrap();
    store
        .request_approval(approval("apr_3", "default", 2))
        .await
        .unwrap();

    let pending = store.approvals("acme", true).await.unwrap();
    let ids: Vec<&str> = pending.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["apr_2", "apr_1"], "newest first, this tenant only");
    let record = &pending[1];
    assert_eq!(record.status, ApprovalStatus::Pending);
    assert_eq!(record.arguments, first.arguments);
    assert_eq!(record.args_hash, first.args_hash);
    assert_eq!(record.requested_at, first.requested_at);
    assert_eq!(record.expires_at, first.expires_at);
    assert_eq!(
        (&record.decided_by, &record.decided_at, &record.reason),
        (&None, &None, &None)
    );

    // The decider reviewed other arguments: their hash is stored as given.
    let reviewed = sha256("other arguments");
    let now = t0() + Duration::minutes(5);
    assert_eq!(
        store
            .decide_approval("acme", "apr_1", decision(true, &reviewed), now)
            .await
            .unwrap(),
        Decided::Recorded(ApprovalStatus::Approved)
    );
    let decided = store.approval("apr_1").await.unwrap().unwrap();
    assert_eq!(decided.status, ApprovalStatus::Approved);
    assert_eq!(
        decided.decided_args_hash.as_deref(),
        Some(reviewed.as_str())
    );
    assert_eq!(decided.decided_by.as_deref(), Some("alice"));
    assert_eq!(decided.decided_at, Some(now));
    assert_eq!(decided.reason.as_deref(), Some("checked the order"));

    assert_eq!(
        store
            .decide_approval("acme", "apr_1", decision(false, &reviewed), now)
            .await
            .unwrap(),
        Decided::AlreadyDecided(ApprovalStatus::Approved)
    );
    assert_eq!(
        store.approval("apr_1").await.unwrap().unwrap().status,
        ApprovalStatus::Approved,
        "the first decision stands"
    );
    let all = store.approvals("acme", false).await.unwrap();
    assert_eq!(all.len(), 2);
    let pending = store.approvals("acme", true).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, "apr_2");

    // Another tenant cannot see or decide it; unknown ids are not found.
    assert_eq!(
        store
            .decide_approval("default", "apr_2", decision(true, &second.args_hash), now)
            .await
            .unwrap(),
        Decided::NotFound
    );
    assert_eq!(
        store
            .decide_approval("acme", "apr_9", decision(true, &second.args_hash), now)
            .await
            .unwrap(),
        Decided::NotFound
    );
    assert_eq!(
        store.approval("apr_2").await.unwrap().unwrap().status,
        ApprovalStatus::Pending
    );
    assert_eq!(
        store
            .decide_approval("acme", "apr_2", decision(false, &second.args_hash), now)
            .await
            .unwrap(),
        Decided::Recorded(ApprovalStatus::Denied)
    );

    let err = store.request_approval(first).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateApproval { .. }), "{err}");
    let err = store
        .decide_approval("acme", "apr_2", decision(true, "not a hash"), now)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    let err = store
        .request_approval(approval("apr_4", "nobody", 0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownTenant { .. }), "{err}");
    assert!(store.approval("apr_4").await.unwrap().is_none());
    store.close().await.unwrap();
}

#[tokio::test]
async fn approvals_expire_by_time_or_by_timeout_but_a_decision_wins_if_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let late = approval("apr_late", "default", 0);
    store.request_approval(late.clone()).await.unwrap();
    assert_eq!(
        store
            .decide_approval(
                "default",
                "apr_late",
                decision(true, &late.args_hash),
                late.expires_at
            )
            .await
            .unwrap(),
        Decided::Expired
    );
    let record = store.approval("apr_late").await.unwrap().unwrap();
    assert_eq!(record.status, ApprovalStatus::Expired);
    assert_eq!(record.decided_by, None);
    assert_eq!(record.decided_at, Some(late.expires_at));
    assert_eq!(
        store
            .decide_approval("default", "apr_late", decision(true, &late.args_hash), t0())
            .await
            .unwrap(),
        Decided::Expired,
        "an expired approval stays expired"
    );
    assert_eq!(
        store.expire_approval("apr_late", t0()).await.unwrap(),
        ApprovalStatus::Expired
    );

    // A timeout expires a pending approval before its expires_at...
    let timed_out = approval("apr_timeout", "default", 1);
    store.request_approval(timed_out.clone()).await.unwrap();
    assert_eq!(
        store.expire_approval("apr_timeout", t0()).await.unwrap(),
        ApprovalStatus::Expired
    );
    assert_eq!(
        store
            .decide_approval(
                "default",
                "apr_timeout",
                decision(true, &timed_out.args_hash),
                t0()
            )
            .await
            .unwrap(),
        Decided::Expired
    );

    // ...but a decision that landed first is what the expiry returns.
    for (id, approve, status) in [
        ("apr_yes", true, ApprovalStatus::Approved),
        ("apr_no", false, ApprovalStatus::Denied),
    ] {
        let a = approval(id, "default", 2);
        store.request_approval(a.clone()).await.unwrap();
        assert_eq!(
            store
                .decide_approval("default", id, decision(approve, &a.args_hash), t0())
                .await
                .unwrap(),
            Decided::Recorded(status)
        );
        assert_eq!(store.expire_approval(id, t0()).await.unwrap(), status);
        assert_eq!(store.approval(id).await.unwrap().unwrap().status, status);
    }

    let err = store.expire_approval("apr_none", t0()).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownApproval { .. }), "{err}");
    assert_eq!(err.to_string(), "no approval with id \"apr_none\"");
    assert!(store.approvals("default", true).await.unwrap().is_empty());
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_racing_an_expiry_either_lands_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let node_a = open(dir.path()).await;
    let node_b = open(dir.path()).await;
    for i in 0..20 {
        let id = format!("apr_{i}");
        let a = approval(&id, "default", 0);
        node_a.request_approval(a.clone()).await.unwrap();
        let decide = {
            let (store, id) = (node_a.clone(), id.clone());
            tokio::spawn(async move {
                store
                    .decide_approval("default", &id, decision(true, &a.args_hash), t0())
                    .await
                    .unwrap()
            })
        };
        let expire = {
            let (store, id) = (node_b.clone(), id.clone());
            tokio::spawn(async move { store.expire_approval(&id, t0()).await.unwrap() })
        };
        let (decided, expired) = (decide.await.unwrap(), expire.await.unwrap());
        let stored = node_b.approval(&id).await.unwrap().unwrap().status;
        match decided {
            Decided::Recorded(ApprovalStatus::Approved) => {
                assert_eq!(expired, ApprovalStatus::Approved);
            }
            Decided::Expired => assert_eq!(expired, ApprovalStatus::Expired),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(stored, expired, "both callers saw the status that stuck");
    }
    node_a.close().await.unwrap();
    node_b.close().await.unwrap();
}

#[tokio::test]
async fn approval_arguments_and_texts_are_redacted_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let mut a = approval("apr_s", "default", 0);
    a.arguments = json!({
        "to": "ops@example.com",
        "headers": {"authorization": format!("Bearer {SECRET}")},
        "list": [SECRET, 1],
    });
    a.message = format!("send with {SECRET}?");
    store.request_approval(a.clone()).await.unwrap();
    let d = ApprovalDecision {
        reason: Some(format!("the key {SECRET} is fine")),
        ..decision(true, &a.args_hash)
    };
    assert_eq!(
        store
            .decide_approval("default", "apr_s", d, t0())
            .await
            .unwrap(),
        Decided::Recorded(ApprovalStatus::Approved)
    );

    let marker = secret_redactor().redact_str(SECRET);
    assert_ne!(marker, SECRET);
    let stored = store.approval("apr_s").await.unwrap().unwrap();
    assert_eq!(stored.arguments["list"][0], json!(marker));
    assert_eq!(stored.message, format!("send with {marker}?"));
    assert_eq!(stored.args_hash, a.args_hash, "hashes are kept as given");
    assert!(!stored.reason.unwrap().contains(SECRET));

    // An id carrying the secret is refused, not written.
    let err = store
        .request_approval(approval(&format!("apr_{SECRET}"), "default", 0))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidInput {
                what: "approval id",
                ..
            }
        ),
        "{err}"
    );

    let bytes = raw_store_bytes(dir.path());
    assert!(contains(&bytes, marker.as_bytes()));
    assert!(
        !contains(&bytes, SECRET.as_bytes()),
        "the secret reached a database file"
    );
    store.close().await.unwrap();
    assert!(!contains(&raw_store_bytes(dir.path()), SECRET.as_bytes()));
}
