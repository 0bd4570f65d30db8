//! Queries over the read pool: listing and finding runs, reading events,
//! the audit trail, secrets, tokens and approvals.
//! Rows are validated as they are decoded; a value this code could not have
//! written is reported as `StoreError::Corrupt` rather than guessed at.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use crate::StoreError;
use crate::model::{
    ApprovalRecord, AuditRecord, EventRecord, RunRecord, StoredSecret, StoredToken, parse_db_time,
};

/// The columns of a run, with its event count. The count is a correlated
/// subquery over the events' primary key rather than a counter kept in
/// `runs`, so writing an event never has to touch its run's row.
macro_rules! select_runs {
    ($($rest:literal),*) => {
        concat!(
            "SELECT r.id, r.tenant_id, r.scenario_name, r.scenario_hash, r.seed, r.clock_start,
                    r.started_at, r.transport, r.labels, r.status, r.ended_at,
                    (SELECT COUNT(*) FROM events e WHERE e.run_id = r.id) AS event_count
             FROM runs r ",
            $($rest),*
        )
    };
}

/// How many ambiguous matches an error names.
const AMBIGUOUS_SHOWN: usize = 5;

/// The shortest prefix `find_run` accepts.
const MIN_PREFIX_CHARS: usize = 4;

pub async fn list_runs(
    pool: &SqlitePool,
    tenant: &str,
    limit: Option<usize>,
) -> Result<Vec<RunRecord>, StoreError> {
    // One statement for both cases: a limit of i64::MAX means none, in SQLite
    // and PostgreSQL alike.
    let limit = limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let rows = sqlx::query(select_runs!(
        "WHERE r.tenant_id = ? ORDER BY r.started_at DESC, r.id DESC LIMIT ?"
    ))
    .bind(tenant)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(StoreError::db("listing runs"))?;
    rows.iter().map(run_from_row).collect()
}

pub async fn find_run(
    pool: &SqlitePool,
    tenant: &str,
    id_or_prefix: &str,
) -> Result<Option<RunRecord>, StoreError> {
    let exact = sqlx::query(select_runs!("WHERE r.tenant_id = ? AND r.id = ?"))
        .bind(tenant)
        .bind(id_or_prefix)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::db("finding a run"))?;
    if let Some(row) = exact {
        return run_from_row(&row).map(Some);
    }
    let chars = id_or_prefix.chars().count();
    if chars < MIN_PREFIX_CHARS {
        return Ok(None);
    }
    // `substr` rather than `LIKE`: LIKE is case-insensitive in SQLite and
    // would need its wildcards escaped.
    let rows = sqlx::query(select_runs!(
        "WHERE r.tenant_id = ? AND substr(r.id, 1, ?) = ? ORDER BY r.id LIMIT ?"
    ))
    .bind(tenant)
    .bind(i64::try_from(chars).unwrap_or(i64::MAX))
    .bind(id_or_prefix)
    .bind(AMBIGUOUS_SHOWN as i64 + 1)
    .fetch_all(pool)
    .await
    .map_err(StoreError::db("finding a run"))?;
    match rows.as_slice() {
        [] => Ok(None),
        [row] => run_from_row(row).map(Some),
        rows => {
            let mut matches = rows
                .iter()
                .take(AMBIGUOUS_SHOWN)
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::db("finding a run"))?;
            if rows.len() > AMBIGUOUS_SHOWN {
                matches.push("…".to_owned());
            }
            Err(StoreError::AmbiguousRun {
                prefix: id_or_prefix.to_owned(),
                matches,
            })
        }
    }
}

pub async fn events(pool: &SqlitePool, run_id: &str) -> Result<Vec<EventRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT run_id, tenant_id, seq, kind, direction, method, request_id, virtual_time, wall_time, payload
         FROM events WHERE run_id = ? ORDER BY seq",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await
    .map_err(StoreError::db("reading events"))?;
    rows.iter().map(event_from_row).collect()
}

fn get<T>(row: &SqliteRow, column: usize) -> Result<T, StoreError>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column)
        .map_err(StoreError::db("decoding a row"))
}

fn parse<T: std::str::FromStr>(what: &'static str, value: String) -> Result<T, StoreError> {
    value
        .parse()
        .map_err(|_| StoreError::Corrupt { what, value })
}

fn time(what: &'static str, value: String) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    parse_db_time(&value).ok_or(StoreError::Corrupt { what, value })
}

fn json(what: &'static str, value: String) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(&value).map_err(|_| StoreError::Corrupt { what, value })
}

pub async fn audit(pool: &SqlitePool, tenant: &str) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT tenant_id, seq, at, actor, action, detail, prev_hash, hash
         FROM audit WHERE tenant_id = ? ORDER BY seq",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .map_err(StoreError::db("reading the audit trail"))?;
    rows.iter()
        .map(|row| {
            let seq: i64 = get(row, 1)?;
            let detail: String = get(row, 5)?;
            Ok(AuditRecord {
                tenant: get(row, 0)?,
                seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt {
                    what: "audit seq",
                    value: seq.to_string(),
                })?,
                at: {
                    let at: String = get(row, 2)?;
                    parse_db_time(&at).ok_or(StoreError::Corrupt {
                        what: "audit time",
                        value: at,
                    })?
                },
                actor: get(row, 3)?,
                action: get(row, 4)?,
                detail: serde_json::from_str(&detail).map_err(|_| StoreError::Corrupt {
                    what: "audit detail",
                    value: detail.clone(),
                })?,
                prev_hash: get(row, 6)?,
                hash: get(row, 7)?,
            })
        })
        .collect()
}

pub async fn secrets(pool: &SqlitePool, tenant: &str) -> Result<Vec<StoredSecret>, StoreError> {
    let rows = sqlx::query(
        "SELECT tenant_id, name, key_id, nonce, ciphertext, created_at, updated_at
         FROM secrets WHERE tenant_id = ? ORDER BY name",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .map_err(StoreError::db("reading secrets"))?;
    let time = |row: &SqliteRow, i: usize| -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
        let text: String = get(row, i)?;
        parse_db_time(&text).ok_or(StoreError::Corrupt {
            what: "secret time",
            value: text,
        })
    };
    rows.iter()
        .map(|row| {
            Ok(StoredSecret {
                tenant: get(row, 0)?,
                name: get(row, 1)?,
                key_id: get(row, 2)?,
                nonce: get(row, 3)?,
                ciphertext: get(row, 4)?,
                created_at: time(row, 5)?,
                updated_at: time(row, 6)?,
            })
        })
        .collect()
}

/// The columns of a token, in the order `token_from_row` reads them.
macro_rules! select_tokens {
    ($rest:literal) => {
        concat!(
            "SELECT id, tenant_id, name, hash, scenario, run_id, scopes, budget, calls_used,
                    created_at, expires_at, revoked_at
             FROM tokens ",
            $rest
        )
    };
}

pub async fn token_by_hash(
    pool: &SqlitePool,
    hash: &str,
) -> Result<Option<StoredToken>, StoreError> {
    let row = sqlx::query(select_tokens!("WHERE hash = ?"))
        .bind(hash)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::db("finding a token"))?;
    row.as_ref().map(token_from_row).transpose()
}

pub async fn token(
    pool: &SqlitePool,
    tenant: &str,
    id: &str,
) -> Result<Option<StoredToken>, StoreError> {
    let row = sqlx::query(select_tokens!("WHERE tenant_id = ? AND id = ?"))
        .bind(tenant)
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::db("finding a token"))?;
    row.as_ref().map(token_from_row).transpose()
}

pub async fn tokens(pool: &SqlitePool, tenant: &str) -> Result<Vec<StoredToken>, StoreError> {
    let rows = sqlx::query(select_tokens!(
        "WHERE tenant_id = ? ORDER BY created_at, id"
    ))
    .bind(tenant)
    .fetch_all(pool)
    .await
    .map_err(StoreError::db("listing tokens"))?;
    rows.iter().map(token_from_row).collect()
}

/// A count stored as INTEGER, which must not be negative.
fn count(what: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        what,
        value: value.to_string(),
    })
}

fn token_from_row(row: &SqliteRow) -> Result<StoredToken, StoreError> {
    Ok(StoredToken {
        id: get(row, 0)?,
        tenant: get(row, 1)?,
        name: get(row, 2)?,
        hash: get(row, 3)?,
        scenario: get(row, 4)?,
        run: get(row, 5)?,
        scopes: json("token scopes", get(row, 6)?)?,
        budget: get::<Option<i64>>(row, 7)?
            .map(|b| count("token budget", b))
            .transpose()?,
        calls_used: count("token call count", get(row, 8)?)?,
        created_at: time("token creation time", get(row, 9)?)?,
        expires_at: get::<Option<String>>(row, 10)?
            .map(|t| time("token expiry time", t))
            .transpose()?,
        revoked_at: get::<Option<String>>(row, 11)?
            .map(|t| time("token revocation time", t))
            .transpose()?,
    })
}

/// The columns of an approval, in the order `approval_from_row` reads them.
macro_rules! select_approvals {
    ($rest:literal) => {
        concat!(
            "SELECT id, tenant_id, run_id, tool, args_hash, arguments, rule, message, requested_by,
                    requested_at, expires_at, status, decided_by, decided_args_hash, decided_at, reason
             FROM approvals ",
            $rest
        )
    };
}

pub async fn approval(pool: &SqlitePool, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
    let row = sqlx::query(select_approvals!("WHERE id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::db("finding an approval"))?;
    row.as_ref().map(approval_from_row).transpose()
}

pub async fn approvals(
    pool: &SqlitePool,
    tenant: &str,
    pending_only: bool,
) -> Result<Vec<ApprovalRecord>, StoreError> {
    // One statement for both cases, like `list_runs`' limit.
    let rows = sqlx::query(select_approvals!(
        "WHERE tenant_id = ? AND (? = 0 OR status = 'pending')
         ORDER BY requested_at DESC, id DESC"
    ))
    .bind(tenant)
    .bind(pending_only)
    .fetch_all(pool)
    .await
    .map_err(StoreError::db("listing approvals"))?;
    rows.iter().map(approval_from_row).collect()
}

fn approval_from_row(row: &SqliteRow) -> Result<ApprovalRecord, StoreError> {
    Ok(ApprovalRecord {
        id: get(row, 0)?,
        tenant: get(row, 1)?,
        run_id: get(row, 2)?,
        tool: get(row, 3)?,
        args_hash: get(row, 4)?,
        arguments: json("approval arguments", get(row, 5)?)?,
        rule: get(row, 6)?,
        message: get(row, 7)?,
        requested_by: get(row, 8)?,
        requested_at: time("approval request time", get(row, 9)?)?,
        expires_at: time("approval expiry time", get(row, 10)?)?,
        status: parse("approval status", get(row, 11)?)?,
        decided_by: get(row, 12)?,
        decided_args_hash: get(row, 13)?,
        decided_at: get::<Option<String>>(row, 14)?
            .map(|t| time("approval decision time", t))
            .transpose()?,
        reason: get(row, 15)?,
    })
}

fn run_from_row(row: &SqliteRow) -> Result<RunRecord, StoreError> {
    Ok(RunRecord {
        id: get(row, 0)?,
        tenant: get(row, 1)?,
        scenario_name: get(row, 2)?,
        scenario_hash: get(row, 3)?,
        seed: parse("run seed", get(row, 4)?)?,
        clock_start: time("run clock start", get(row, 5)?)?,
        started_at: time("run start time", get(row, 6)?)?,
        transport: get(row, 7)?,
        labels: json("run labels", get(row, 8)?)?,
        status: parse("run status", get(row, 9)?)?,
        ended_at: get::<Option<String>>(row, 10)?
            .map(|t| time("run end time", t))
            .transpose()?,
        event_count: u64::try_from(get::<i64>(row, 11)?).unwrap_or(0),
    })
}

fn event_from_row(row: &SqliteRow) -> Result<EventRecord, StoreError> {
    let seq: i64 = get(row, 2)?;
    Ok(EventRecord {
        run_id: get(row, 0)?,
        tenant: get(row, 1)?,
        seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt {
            what: "event seq",
            value: seq.to_string(),
        })?,
        kind: parse("event kind", get(row, 3)?)?,
        direction: parse("event direction", get(row, 4)?)?,
        method: get(row, 5)?,
        request_id: get(row, 6)?,
        virtual_time: time("event virtual time", get(row, 7)?)?,
        wall_time: time("event wall time", get(row, 8)?)?,
        payload: json("event payload", get(row, 9)?)?,
    })
}
