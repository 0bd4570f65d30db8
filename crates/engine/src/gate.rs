//! The pipeline's authenticate and policy stages for one call.
//!
//! ```text
//! tools/call ─► token scope (tool, arguments) ─► token rate ─► scenario policy
//!            ─► (approval: wait for a person, bound to the arguments' hash)
//!            ─► token budget, revocation and expiry (counted in the store)
//!            ─► route
//! any request to an upstream ─► token scope (upstream, host) ─► forward
//! ```
//!
//! A refusal is a tool error the agent can read (a JSON-RPC error for
//! requests that are not tool calls) and a `policy` event; the call never
//! reaches a stub, a recording or an upstream. Every decision on a gated
//! call — allowed or not — is a `policy` event naming who (the token), what
//! (the tool), which rule and the outcome.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value, json};

use sandbar_store::{ApprovalStatus, Direction, EventKind, NewApproval, Spend};

use crate::access::{Principal, Refusal, arguments_hash};
use crate::call::Call;
use crate::client::Client;
use crate::policy::{PolicyInput, Verdict};
use crate::run::Run;
use sandbar_scenario::LogLevel;
use sandbar_scenario::duration::format_duration as human;

/// How often a call waiting for approval looks for a decision.
const APPROVAL_POLL: Duration = Duration::from_millis(50);

/// What a rule that asks for approval said: its name, its message, how
/// long to wait.
struct Asked<'a> {
    rule: &'a str,
    message: &'a str,
    timeout: Duration,
}

/// A refusal and the rule (or token part) that made it.
pub(crate) struct Refused {
    rule: String,
    refusal: Refusal,
}

impl Refused {
    fn new(rule: &str, code: &'static str, message: String) -> Refused {
        Refused {
            rule: rule.to_owned(),
            refusal: Refusal { code, message },
        }
    }
}

impl Run {
    /// Whether tool calls of this run pass the gate at all: it has a token
    /// or its scenario has a policy.
    pub(crate) fn gated(&self) -> bool {
        self.principal.is_some() || self.policy.is_some()
    }

    /// Decides a tool call — scope, rate, policy, approval, budget — and
    /// records the decision. `Err` carries the text the agent reads.
    pub(crate) async fn admit_call(
        &self,
        tool: &str,
        arguments: Option<&Map<String, Value>>,
        call: &Call,
        client: &dyn Client,
    ) -> Result<(), String> {
        let empty = Map::new();
        let args = arguments.unwrap_or(&empty);
        let token = self.principal.as_ref().map(|p| p.token_id.clone());
        let decided = self.decide(tool, args, call, client).await;
        let (decision, rule, code, message) = match &decided {
            Ok(rule) => ("allow", rule.clone(), None, None),
            Err(r) => (
                "deny",
                Some(r.rule.clone()),
                Some(r.refusal.code),
                Some(r.refusal.message.clone()),
            ),
        };
        self.record(
            EventKind::Policy,
            Direction::Internal,
            Some("tools/call"),
            call.request_id.clone(),
            json!({
                "decision": decision,
                "tool": tool,
                "token": token,
                "rule": rule,
                "code": code,
                "message": message,
            }),
        );
        decided
            .map(|_| ())
            .map_err(|r| format!("sandbar refused this call: {}", r.refusal.message))
    }

    /// The decision itself: `Ok` names the rule that allowed the call, if
    /// one did.
    async fn decide(
        &self,
        tool: &str,
        args: &Map<String, Value>,
        call: &Call,
        client: &dyn Client,
    ) -> Result<Option<String>, Refused> {
        let engine = self.engine();
        let verdict = {
            let current = engine.current();
            let route = current.offer.tools.get(tool);
            let upstream = route
                .and_then(|r| r.upstream.as_ref())
                .map(|(u, _)| engine.scenario().upstreams[*u].name.as_str());
            let mode = route.map_or("stub", |r| r.mode.as_str());
            let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
            let input = PolicyInput {
                tenant: engine.tenant(),
                token: self.principal.as_ref().map(|p| p.token_id.as_str()),
                tool,
                args,
                upstream,
                mode,
                history: &history,
            };
            if let Some(principal) = &self.principal {
                principal
                    .scope
                    .check_call(&principal.token_id, &input)
                    .map_err(|refusal| Refused {
                        rule: "token scope".to_owned(),
                        refusal,
                    })?;
                if let Some((calls, per)) = principal.scope.rate()
                    && let Err(wait) = engine.token_rates.admit(&principal.token_id, calls, per)
                {
                    return Err(Refused::new(
                        "token rate",
                        "rate_limited",
                        format!(
                            "token {} allows {calls} calls per {}; try again in {}",
                            principal.token_id,
                            human(per),
                            human(wait)
                        ),
                    ));
                }
            }
            self.policy.as_ref().map(|p| p.decide(&input))
        };
        let allowed_by = match verdict {
            None => None,
            Some(Verdict::Allow { rule }) => rule,
            Some(Verdict::Deny { rule, message }) => {
                return Err(Refused::new(&rule, "denied", message));
            }
            Some(Verdict::RateLimited {
                rule,
                message,
                retry_after,
            }) => {
                return Err(Refused::new(
                    &rule,
                    "rate_limited",
                    format!("{message}; try again in {}", human(retry_after)),
                ));
            }
            Some(Verdict::Approve {
                rule,
                message,
                timeout,
            }) => {
                let asked = Asked {
                    rule: &rule,
                    message: &message,
                    timeout,
                };
                self.await_approval(tool, args, asked, call, client)
                    .await
                    .map_err(|refusal| Refused {
                        rule: rule.clone(),
                        refusal,
                    })?;
                Some(rule)
            }
        };
        // Counted last, so a refused call never spends the budget; the
        // store checks revocation and expiry in the same step, which makes
        // a revocation effective on the next call on every node.
        if let Some(principal) = &self.principal {
            let id = &principal.token_id;
            let refused = |code, message| Err(Refused::new("token", code, message));
            match engine.store().spend_token(id, Utc::now()).await {
                Ok(Spend::Spent { .. }) => {}
                Ok(Spend::Revoked) => {
                    return refused("revoked", format!("token {id} has been revoked"));
                }
                Ok(Spend::Expired) => return refused("expired", format!("token {id} has expired")),
                Ok(Spend::OverBudget) => {
                    return refused(
                        "over_budget",
                        format!("token {id} has used its whole call budget"),
                    );
                }
                Ok(Spend::Unknown) => {
                    return refused("unknown_token", format!("token {id} no longer exists"));
                }
                Err(e) => {
                    return refused(
                        "store",
                        format!("sandbar could not count this call against token {id}: {e}"),
                    );
                }
            }
        }
        Ok(allowed_by)
    }

    /// Asks for a person's decision and waits for it, at most `timeout`.
    /// The decision counts only for these exact arguments.
    async fn await_approval(
        &self,
        tool: &str,
        args: &Map<String, Value>,
        asked: Asked<'_>,
        call: &Call,
        client: &dyn Client,
    ) -> Result<(), Refusal> {
        let Asked {
            rule,
            message,
            timeout,
        } = asked;
        let engine = self.engine();
        let store = engine.store();
        let hash = arguments_hash(tool, args);
        let id = format!("apr_{}", uuid::Uuid::new_v4().simple());
        let now = Utc::now();
        let requested_by = self
            .principal
            .as_ref()
            .map_or_else(|| "open".to_owned(), |p| p.token_id.clone());
        let store_failed = |e: sandbar_store::StoreError| Refusal {
            code: "store",
            message: format!("sandbar could not keep the approval request: {e}"),
        };
        store
            .request_approval(NewApproval {
                id: id.clone(),
                tenant: engine.tenant().to_owned(),
                run_id: self.id().to_owned(),
                tool: tool.to_owned(),
                args_hash: hash.clone(),
                arguments: Value::Object(args.clone()),
                rule: rule.to_owned(),
                message: message.to_owned(),
                requested_by,
                requested_at: now,
                expires_at: now + chrono::Duration::from_std(timeout).unwrap_or_default(),
            })
            .await
            .map_err(store_failed)?;
        self.record(
            EventKind::Policy,
            Direction::Internal,
            Some("tools/call"),
            call.request_id.clone(),
            json!({
                "decision": "approval_requested",
                "approval": id,
                "tool": tool,
                "rule": rule,
                "args_hash": hash,
                "timeout_ms": timeout.as_millis() as u64,
            }),
        );
        // Tell the client why the call is slow, at level `notice`, unless it
        // asked for less.
        if self
            .state()
            .log_level
            .is_none_or(|min| LogLevel::Notice >= min)
        {
            let params = json!({
                "level": "notice",
                "logger": "sandbar",
                "data": format!(
                    "`{tool}` waits for a person's approval ({message}); approve or deny it with `sandbar approve {id}` or `sandbar deny {id}` within {}",
                    human(timeout)
                ),
            });
            self.record(
                EventKind::Notification,
                Direction::ToClient,
                Some("notifications/message"),
                None,
                params.clone(),
            );
            // A client that cannot be told still gets its answer.
            let _ = client.notify("notifications/message", params).await;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let decided = loop {
            let record = store.approval(&id).await.map_err(store_failed)?;
            if let Some(record) = record
                && record.status != ApprovalStatus::Pending
            {
                break record;
            }
            if tokio::time::Instant::now() >= deadline {
                match store.expire_approval(&id, Utc::now()).await {
                    Ok(ApprovalStatus::Pending | ApprovalStatus::Expired) => {
                        return Err(Refusal {
                            code: "approval_timeout",
                            message: format!(
                                "`{tool}` needs approval ({message}) and none came within {}; approval {id} expired",
                                human(timeout)
                            ),
                        });
                    }
                    // A decision landed just before the timeout: it counts.
                    Ok(_) => continue,
                    Err(e) => return Err(store_failed(e)),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(APPROVAL_POLL) => {}
                _ = call.cancel.cancelled() => {
                    let _ = store.expire_approval(&id, Utc::now()).await;
                    return Err(Refusal {
                        code: "cancelled",
                        message: format!("the call was cancelled while waiting for approval {id}"),
                    });
                }
            }
        };
        let by = decided.decided_by.clone().unwrap_or_default();
        match decided.status {
            ApprovalStatus::Approved
                if decided.decided_args_hash.as_deref() == Some(hash.as_str()) =>
            {
                Ok(())
            }
            ApprovalStatus::Approved => Err(Refusal {
                code: "approval_mismatch",
                message: format!(
                    "approval {id} by {by} was given for other arguments than this call's; the call did not go through"
                ),
            }),
            ApprovalStatus::Denied => Err(Refusal {
                code: "approval_denied",
                message: match &decided.reason {
                    Some(reason) => format!("{by} denied approval {id}: {reason}"),
                    None => format!("{by} denied approval {id}"),
                },
            }),
            ApprovalStatus::Expired | ApprovalStatus::Pending => Err(Refusal {
                code: "approval_timeout",
                message: format!("approval {id} expired before anyone decided"),
            }),
        }
    }

    /// The tool list as this run's token may see it: tools its scope does
    /// not allow are left out.
    pub(crate) fn visible_tools(&self, listing: &Value) -> Value {
        let Some(principal) = self.principal.as_ref().filter(|p| p.scope.limits_tools()) else {
            return listing.clone();
        };
        let mut listing = listing.clone();
        if let Some(tools) = listing.get_mut("tools").and_then(Value::as_array_mut) {
            tools.retain(|t| {
                t.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| principal.scope.allows_tool(name))
            });
        }
        listing
    }

    /// Checks that the run's token is still good (not revoked, not
    /// expired) for a request that is not a tool call.
    pub(crate) async fn token_alive(&self, principal: &Principal) -> Result<(), String> {
        let engine = self.engine();
        let id = &principal.token_id;
        match engine.store().token(engine.tenant(), id).await {
            Ok(Some(t)) if t.revoked_at.is_some() => Err(format!("token {id} has been revoked")),
            Ok(Some(t)) if t.expires_at.is_some_and(|at| at <= Utc::now()) => {
                Err(format!("token {id} has expired"))
            }
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(format!("token {id} no longer exists")),
            Err(e) => Err(format!("sandbar could not check token {id}: {e}")),
        }
    }

    /// Checks that this run's token may reach upstream `index`; a refusal
    /// is recorded and its text returned.
    pub(crate) fn admit_upstream(
        &self,
        index: usize,
        method: &str,
        call: &Call,
    ) -> Result<(), String> {
        let Some(principal) = &self.principal else {
            return Ok(());
        };
        let spec = &self.engine().scenario().upstreams[index];
        let host = match &spec.transport {
            sandbar_scenario::UpstreamTransport::Http { url, .. } => url_host(url),
            sandbar_scenario::UpstreamTransport::Stdio { .. } => None,
        };
        let Err(refusal) = principal
            .scope
            .check_upstream(&principal.token_id, &spec.name, host)
        else {
            return Ok(());
        };
        self.record(
            EventKind::Policy,
            Direction::Internal,
            Some(method),
            call.request_id.clone(),
            json!({
                "decision": "deny",
                "upstream": spec.name,
                "token": principal.token_id,
                "rule": "token scope",
                "code": refusal.code,
                "message": refusal.message,
            }),
        );
        Err(format!("sandbar refused this call: {}", refusal.message))
    }
}

/// The host of an `http(s)://` URL, without user info or port.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_urls() {
        assert_eq!(url_host("http://127.0.0.1:8080/mcp"), Some("127.0.0.1"));
        assert_eq!(
            url_host("https://user:pw@api.example.test/x?y"),
            Some("api.example.test")
        );
        assert_eq!(url_host("http://[::1]:9/mcp"), Some("[::1]"));
        assert_eq!(url_host("nonsense"), None);
    }
}
