//! Marks runs whose writer is gone as `interrupted`: at open for runs left
//! by dead store instances, and at close for this instance's own unfinished
//! runs.
//!
//! An interrupted run's `ended_at` is the wall time of its last stored event
//! (NULL if it has none): the best available estimate of when it stopped, and
//! never a time invented at recovery.

use std::path::Path;

use sqlx::SqliteConnection;

use crate::StoreError;
use crate::instance::{Liveness, liveness};

pub(crate) const INTERRUPT: &str = "UPDATE runs
     SET status = 'interrupted',
         ended_at = (SELECT MAX(e.wall_time) FROM events e WHERE e.run_id = runs.id),
         owner = NULL
     WHERE status = 'active' AND owner = ?";

/// Marks the active runs of `owner` as interrupted; returns how many.
pub async fn interrupt_owned_by(
    conn: &mut SqliteConnection,
    owner: &str,
) -> Result<u64, StoreError> {
    let done = sqlx::query(INTERRUPT)
        .bind(owner)
        .execute(conn)
        .await
        .map_err(StoreError::db("marking unfinished runs interrupted"))?;
    Ok(done.rows_affected())
}

/// Marks as interrupted every active run whose owning instance is dead.
pub async fn interrupt_dead_owners(
    conn: &mut SqliteConnection,
    dir: &Path,
) -> Result<u64, StoreError> {
    let owners: Vec<Option<String>> =
        sqlx::query_scalar("SELECT DISTINCT owner FROM runs WHERE status = 'active'")
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::db("looking for unfinished runs"))?;
    let mut interrupted = 0;
    for owner in owners {
        match owner {
            Some(owner) => {
                if liveness(dir, &owner) == Liveness::Dead {
                    interrupted += interrupt_owned_by(conn, &owner).await?;
                }
            }
            None => {
                // An active run always has an owner; one without cannot be
                // continued by anyone.
                let done = sqlx::query(
                    "UPDATE runs
                     SET status = 'interrupted',
                         ended_at = (SELECT MAX(e.wall_time) FROM events e WHERE e.run_id = runs.id)
                     WHERE status = 'active' AND owner IS NULL",
                )
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db("marking unfinished runs interrupted"))?;
                interrupted += done.rows_affected();
            }
        }
    }
    if interrupted > 0 {
        tracing::info!(
            runs = interrupted,
            "runs left active by a stopped process were marked interrupted"
        );
    }
    Ok(interrupted)
}
