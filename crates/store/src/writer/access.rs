//! The writer's side of access tokens and approvals.
//!
//! Every check-then-write here runs in one `BEGIN IMMEDIATE` transaction,
//! which takes SQLite's write lock before reading: the check and the write
//! are atomic even when several processes share the file, so a call is
//! never counted against a token revoked a moment before, and a decision
//! and an expiry racing on one approval cannot both land.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension as _, TransactionBehavior};

use super::{Constraint, Core, PreparedToken, constraint};
use crate::StoreError;
use crate::model::{
    ApprovalDecision, ApprovalStatus, Decided, NewApproval, Spend, db_time, parse_db_time,
};

impl Core {
    pub(super) fn put_token(&mut self, token: PreparedToken) -> Result<(), StoreError> {
        let inserted = self.conn.execute(
            "INSERT INTO tokens (id, tenant_id, name, hash, scenario, run_id, scopes, budget, calls_used, created_at, expires_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rusqlite::params![
                token.id,
                token.tenant,
                token.name,
                token.hash,
                token.scenario,
                token.run,
                token.scopes,
                token.budget,
                token.calls_used,
                token.created_at,
                token.expires_at,
                token.revoked_at,
            ],
        );
        let Err(e) = inserted else {
            return Ok(());
        };
        Err(match constraint(&e) {
            Some(Constraint::Unique) => {
                // Tokens are never deleted, so an id taken now was taken at
                // the insert: this tells which of the two unique columns
                // refused the token.
                let id_taken: bool = self
                    .conn
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM tokens WHERE id = ?)",
                        [&token.id],
                        |row| row.get(0),
                    )
                    .map_err(StoreError::sqlite("checking a duplicate token"))?;
                StoreError::DuplicateToken {
                    id: token.id,
                    field: if id_taken { "id" } else { "hash" },
                }
            }
            Some(Constraint::ForeignKey) => StoreError::UnknownTenant {
                tenant: token.tenant,
            },
            _ => StoreError::Sqlite {
                context: "storing a token",
                source: e,
            },
        })
    }

    pub(super) fn revoke_token(
        &mut self,
        tenant: &str,
        id: &str,
        at: &str,
    ) -> Result<bool, StoreError> {
        self.conn
            .execute(
                "UPDATE tokens SET revoked_at = ? WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL",
                rusqlite::params![at, tenant, id],
            )
            .map(|n| n > 0)
            .map_err(StoreError::sqlite("revoking a token"))
    }

    /// Checks tokens and counts their calls, all in one transaction (the
    /// spends queued while the writer was busy); a token that may not make
    /// a call is left as it was. Each reply is sent once the transaction is
    /// committed.
    pub(super) fn spend_tokens(&mut self) {
        if self.spends.is_empty() {
            return;
        }
        let spends = &mut self.spends;
        let outcome = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(StoreError::sqlite("starting to spend a token"))?;
            let results: Vec<Result<Spend, StoreError>> = spends
                .iter()
                .map(|spend| spend_one(&tx, &spend.id, spend.now))
                .collect();
            tx.commit()
                .map_err(StoreError::sqlite("committing a token's call"))?;
            Ok::<_, StoreError>(results)
        })();
        match outcome {
            Ok(results) => {
                for (spend, result) in spends.drain(..).zip(results) {
                    let _ = spend.reply.send(result);
                }
            }
            Err(e) => {
                let e = std::sync::Arc::new(e);
                for spend in spends.drain(..) {
                    let _ = spend.reply.send(Err(StoreError::Shared(e.clone())));
                }
            }
        }
    }

    pub(super) fn request_approval(&mut self, approval: NewApproval) -> Result<(), StoreError> {
        let inserted = self.conn.execute(
            "INSERT INTO approvals (id, tenant_id, run_id, tool, args_hash, arguments, rule, message,
                                    requested_by, requested_at, expires_at, status,
                                    decided_by, decided_args_hash, decided_at, reason)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL)",
            rusqlite::params![
                approval.id,
                approval.tenant,
                approval.run_id,
                approval.tool,
                approval.args_hash,
                approval.arguments.to_string(),
                approval.rule,
                approval.message,
                approval.requested_by,
                db_time(&approval.requested_at),
                db_time(&approval.expires_at),
                ApprovalStatus::Pending.as_str(),
            ],
        );
        let Err(e) = inserted else {
            return Ok(());
        };
        Err(match constraint(&e) {
            Some(Constraint::Unique) => StoreError::DuplicateApproval { id: approval.id },
            Some(Constraint::ForeignKey) => StoreError::UnknownTenant {
                tenant: approval.tenant,
            },
            _ => StoreError::Sqlite {
                context: "storing an approval",
                source: e,
            },
        })
    }

    /// Records the decision if the approval is still pending and not past
    /// its expiry; one past it is marked expired instead.
    pub(super) fn decide_approval(
        &mut self,
        tenant: &str,
        id: &str,
        decision: ApprovalDecision,
        now: DateTime<Utc>,
    ) -> Result<Decided, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("starting to decide an approval"))?;
        let found: Option<(String, String)> = tx
            .query_row(
                "SELECT status, expires_at FROM approvals WHERE id = ? AND tenant_id = ?",
                [id, tenant],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(StoreError::sqlite("reading an approval"))?;
        let Some((status, expires_at)) = found else {
            return Ok(Decided::NotFound);
        };
        match parse_status(status)? {
            ApprovalStatus::Pending => {}
            ApprovalStatus::Expired => return Ok(Decided::Expired),
            decided => return Ok(Decided::AlreadyDecided(decided)),
        }
        let expires_at = parse_db_time(&expires_at).ok_or(StoreError::Corrupt {
            what: "approval expiry time",
            value: expires_at,
        })?;
        let decided = if expires_at <= now {
            mark_expired(&tx, id, now)?;
            Decided::Expired
        } else {
            let status = if decision.approve {
                ApprovalStatus::Approved
            } else {
                ApprovalStatus::Denied
            };
            tx.execute(
                "UPDATE approvals SET status = ?, decided_by = ?, decided_args_hash = ?, decided_at = ?, reason = ?
                 WHERE id = ?",
                rusqlite::params![
                    status.as_str(),
                    decision.by,
                    decision.args_hash,
                    db_time(&now),
                    decision.reason,
                    id,
                ],
            )
            .map_err(StoreError::sqlite("recording a decision"))?;
            Decided::Recorded(status)
        };
        tx.commit()
            .map_err(StoreError::sqlite("committing a decision"))?;
        Ok(decided)
    }

    /// Marks a pending approval expired; returns the status it ends with.
    pub(super) fn expire_approval(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalStatus, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("starting to expire an approval"))?;
        let status: Option<String> = tx
            .query_row("SELECT status FROM approvals WHERE id = ?", [id], |row| {
                row.get(0)
            })
            .optional()
            .map_err(StoreError::sqlite("reading an approval"))?;
        let Some(status) = status else {
            return Err(StoreError::UnknownApproval { id: id.to_owned() });
        };
        match parse_status(status)? {
            ApprovalStatus::Pending => {
                mark_expired(&tx, id, now)?;
                tx.commit()
                    .map_err(StoreError::sqlite("committing an expired approval"))?;
                Ok(ApprovalStatus::Expired)
            }
            done => Ok(done),
        }
    }
}

fn parse_status(status: String) -> Result<ApprovalStatus, StoreError> {
    status.parse().map_err(|_| StoreError::Corrupt {
        what: "approval status",
        value: status,
    })
}

fn mark_expired(
    conn: &rusqlite::Connection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE approvals SET status = ?, decided_at = ? WHERE id = ?",
        rusqlite::params![ApprovalStatus::Expired.as_str(), db_time(&now), id],
    )
    .map(|_| ())
    .map_err(StoreError::sqlite("expiring an approval"))
}

/// A call to count against a token, waiting for the writer.
pub(super) struct PendingSpend {
    pub id: String,
    pub now: DateTime<Utc>,
    pub reply: tokio::sync::oneshot::Sender<Result<Spend, StoreError>>,
}

/// Checks one token and counts one call, inside the caller's transaction.
fn spend_one(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Spend, StoreError> {
    let found = tx
        .prepare_cached(
            "SELECT revoked_at, expires_at, budget, calls_used FROM tokens WHERE id = ?",
        )
        .and_then(|mut statement| {
            statement
                .query_row([id], |row| {
                    Ok((
                        row.get::<_, Option<String>>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .optional()
        })
        .map_err(StoreError::sqlite("reading a token"))?;
    let Some((revoked_at, expires_at, budget, calls_used)) = found else {
        return Ok(Spend::Unknown);
    };
    if revoked_at.is_some() {
        return Ok(Spend::Revoked);
    }
    if let Some(expires_at) = expires_at {
        let expires_at = parse_db_time(&expires_at).ok_or(StoreError::Corrupt {
            what: "token expiry time",
            value: expires_at,
        })?;
        if expires_at <= now {
            return Ok(Spend::Expired);
        }
    }
    // A count at the largest storable value cannot go up: that is a budget
    // too, if an absurd one.
    if budget.is_some_and(|budget| calls_used >= budget) || calls_used == i64::MAX {
        return Ok(Spend::OverBudget);
    }
    let calls_used: i64 = tx
        .prepare_cached(
            "UPDATE tokens SET calls_used = calls_used + 1 WHERE id = ? RETURNING calls_used",
        )
        .and_then(|mut statement| statement.query_row([id], |row| row.get(0)))
        .map_err(StoreError::sqlite("counting a token's call"))?;
    let calls_used = u64::try_from(calls_used).map_err(|_| StoreError::Corrupt {
        what: "token call count",
        value: calls_used.to_string(),
    })?;
    Ok(Spend::Spent { calls_used })
}
