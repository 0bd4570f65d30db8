//! Versioned schema migrations, embedded in the binary and applied on open.
//!
//! Each migration is one SQL file with a version number; `schema_version`
//! records those applied. Applying is idempotent: a store already at the
//! latest version is left alone, and one written by a newer Sandbar is
//! refused rather than misread.

use std::path::Path;

use sqlx::{Connection, SqliteConnection};

use crate::StoreError;

/// The SQLite migrations, in version order. PostgreSQL will get its own list
/// with the same version numbers.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_audit.sql")),
    (3, include_str!("../migrations/sqlite/0003_secrets.sql")),
    (4, include_str!("../migrations/sqlite/0004_access.sql")),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Brings the database to `SCHEMA_VERSION`.
///
/// Everything runs in one `BEGIN IMMEDIATE` transaction, which takes
/// SQLite's write lock before reading the version: two processes opening a
/// fresh store at once then apply the migrations once, one after the other,
/// instead of racing to create the same tables.
pub async fn migrate(conn: &mut SqliteConnection, path: &Path) -> Result<(), StoreError> {
    let fail = |version: i64| {
        move |source: sqlx::Error| StoreError::Migration {
            path: path.to_owned(),
            version,
            source,
        }
    };

    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(fail(SCHEMA_VERSION))?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL
         )",
    )
    .execute(&mut *tx)
    .await
    .map_err(fail(SCHEMA_VERSION))?;

    let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
        .fetch_one(&mut *tx)
        .await
        .map_err(fail(SCHEMA_VERSION))?;
    let current = current.unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found: current,
            supported: SCHEMA_VERSION,
        });
    }

    for &(version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(fail(version))?;
        sqlx::query("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)")
            .bind(version)
            .bind(crate::model::db_time(&chrono::Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(fail(version))?;
        tracing::debug!(version, path = %path.display(), "applied store migration");
    }
    tx.commit().await.map_err(fail(SCHEMA_VERSION))?;
    Ok(())
}

#[cfg(test)]
// Tests fail by panicking; unwrapping is how they say so.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, (version, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1);
        }
    }
}
