//! The stub route: answers from the scenario.
//!
//! A tool call is validated against the tool's input schema, checked for
//! faults (drawn from the run's seed), matched against the response rules,
//! and then runs the chosen rule's steps, applies its effects to the twin,
//! and renders its response.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use sandbar_scenario::{
    ContentTemplate, Effect, Fault, FaultAction, ProtocolErrorTemplate, ResourceBody, Response,
    Role, Rule, Step, ValueTemplate,
};
use sandbar_store::{Direction, EventKind};

use crate::call::{Call, CompletionRef, Outcome, ProtocolError};
use crate::client::{Client, ClientError};
use crate::forward::cancelled;
use crate::matcher;
use crate::render::{RenderError, Scope};
use crate::rng::Stream;
use crate::run::{Run, format_time, resource_not_found};
use crate::transcript;
use crate::twin::Changes;

/// Most values `completion/complete` returns, as the specification caps it.
const MAX_COMPLETIONS: usize = 100;

pub(crate) async fn call_tool(
    run: &Run,
    name: &str,
    arguments: Option<&Map<String, Value>>,
    call: &Call,
    client: &dyn Client,
) -> Outcome {
    let scenario = &run.engine.scenario;
    let Some(tool) = scenario.tool(name) else {
        return Outcome::Error(ProtocolError::invalid_params(format!(
            "unknown tool: {name}"
        )));
    };
    let args = Value::Object(arguments.cloned().unwrap_or_default());

    // Argument errors are tool errors, not protocol errors, so the agent's
    // model reads them and can correct its call (MCP 2025-11-25, SEP-1303).
    if let Some(validator) = &tool.validator {
        let problems: Vec<String> = validator
            .iter_errors(&args)
            .take(10)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if !problems.is_empty() {
            return Outcome::tool_error(format!(
                "invalid arguments for tool {name}: {}",
                problems.join("; ")
            ));
        }
    }

    let call_no = {
        let mut state = run.state();
        let n = state.tool_calls.entry(name.to_owned()).or_insert(0);
        *n += 1;
        *n
    };
    let call_label = call_no.to_string();
    let mut scope = {
        let state = run.state();
        let stream = Stream::new(
            run.seed,
            &[b"template", name.as_bytes(), call_label.as_bytes()],
        );
        let mut scope = Scope::new(
            &state.twin,
            &format_time(state.now),
            run.seed,
            &scenario.template_secrets,
            stream,
        );
        scope.set("args", &args);
        scope.set("tool", &Value::from(name));
        scope.set("call", &Value::from(call_no));
        scope
    };

    if let Some(fault) = firing_fault(run, &tool.faults, name, call_no, &args) {
        run.record(
            EventKind::Fault,
            Direction::Internal,
            Some("tools/call"),
            call.request_id.clone(),
            json!({
                "tool": name,
                "call": call_no,
                "fault": fault.index,
                "latency_ms": fault.latency.map(|d| d.as_millis() as u64),
                "action": match &fault.action {
                    FaultAction::DelayOnly => "delay",
                    FaultAction::ToolError(_) => "tool_error",
                    FaultAction::ProtocolError(_) => "protocol_error",
                    FaultAction::Hang => "hang",
                },
            }),
        );
        if let Some(latency) = fault.latency {
            advance(run, latency, &mut scope);
            tokio::select! {
                _ = tokio::time::sleep(latency) => {}
                _ = call.cancel.cancelled() => return cancelled(),
            }
        }
        let ctx = scope.context();
        match &fault.action {
            FaultAction::DelayOnly => {}
            FaultAction::ToolError(text) => {
                return match run.engine.renderer.text(text, &ctx) {
                    Ok(message) => Outcome::tool_error(message),
                    Err(e) => template_failure(e),
                };
            }
            FaultAction::ProtocolError(pe) => return protocol_error(run, pe, &ctx),
            FaultAction::Hang => {
                call.cancel.cancelled().await;
                return cancelled();
            }
        }
    }

    let rule = match choose_rule(run, &tool.rules, &args, &scope) {
        Ok(Some(rule)) => rule,
        Ok(None) => {
            return Outcome::tool_error(format!(
                "no response rule of tool {name} matches these arguments"
            ));
        }
        Err(e) => return template_failure(e),
    };
    let outcome = execute(run, rule, &tool.effects, &args, &mut scope, call, client).await;
    check_output(tool, outcome)
}

/// A result whose structured content breaks the tool's output schema is the
/// scenario's mistake, and clients are entitled to trust the schema: say so
/// rather than send it.
fn check_output(tool: &sandbar_scenario::Tool, outcome: Outcome) -> Outcome {
    let (Some(validator), Outcome::Result(result)) = (&tool.output_validator, &outcome) else {
        return outcome;
    };
    if result.get("isError") == Some(&Value::Bool(true)) {
        return outcome;
    }
    let problem = match result.get("structuredContent") {
        None => Some(format!(
            "scenario error: tool {} declares an output schema but this answer has no structured content",
            tool.name
        )),
        Some(structured) => validator.iter_errors(structured).next().map(|e| {
            format!(
                "scenario error: the structured content of tool {} does not fit its output schema: {e}",
                tool.name
            )
        }),
    };
    match problem {
        None => outcome,
        Some(message) => Outcome::Error(ProtocolError::internal(message)),
    }
}

/// Runs a chosen rule: its steps, its effects, then its answer — or, for a
/// rule with `then`, the first of its branches that matches now that the
/// steps' answers are known. The tool's own effects apply only when the
/// final answer is a result.
fn execute<'a>(
    run: &'a Run,
    rule: &'a Rule,
    tool_effects: &'a [Effect],
    args: &'a Value,
    scope: &'a mut Scope,
    call: &'a Call,
    client: &'a dyn Client,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send + 'a>> {
    Box::pin(async move {
        if let Err(outcome) = run_steps(run, rule, scope, call, client).await {
            return outcome;
        }
        let final_effects: &[Effect] = match rule.response {
            Response::Result { .. } => tool_effects,
            _ => &[],
        };
        if !rule.effects.is_empty() || !final_effects.is_empty() {
            match apply_effects(run, rule.effects.iter().chain(final_effects), scope) {
                Ok(changes) if !changes.is_empty() => {
                    run.record(
                        EventKind::Lifecycle,
                        Direction::Internal,
                        Some("state/change"),
                        call.request_id.clone(),
                        changes.to_json(),
                    );
                }
                Ok(_) => {}
                Err(outcome) => return outcome,
            }
        }
        if let Response::Then(branches) = &rule.response {
            return match choose_rule(run, branches, args, scope) {
                Ok(Some(next)) => execute(run, next, tool_effects, args, scope, call, client).await,
                Ok(None) => Outcome::tool_error("no `then` rule matches after the steps ran"),
                Err(e) => template_failure(e),
            };
        }
        let ctx = scope.context();
        match render_response(run, &rule.response, &ctx) {
            Ok(outcome) => outcome,
            Err(e) => template_failure(e),
        }
    })
}

/// The first rule whose conditions hold and whose `if` expression is true.
fn choose_rule<'a>(
    run: &Run,
    rules: &'a [Rule],
    args: &Value,
    scope: &Scope,
) -> Result<Option<&'a Rule>, RenderError> {
    let ctx = scope.context();
    for rule in rules {
        if !matcher::all_hold(&rule.conditions, args, &run.state().twin) {
            continue;
        }
        match rule.guard {
            None => return Ok(Some(rule)),
            Some(id) => {
                if truthy(
                    &run.engine
                        .renderer
                        .value(&ValueTemplate::Expression(id), &ctx)?,
                ) {
                    return Ok(Some(rule));
                }
            }
        }
    }
    Ok(None)
}

/// Truth as templates see it: false, null, 0, "" and empty collections are false.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The first fault that fires for this call, if any.
fn firing_fault<'a>(
    run: &Run,
    faults: &'a [Fault],
    tool: &str,
    call_no: u64,
    args: &Value,
) -> Option<&'a Fault> {
    faults.iter().find(|f| {
        if f.every
            .is_some_and(|n| n == 0 || !call_no.is_multiple_of(n))
        {
            return false;
        }
        if f.after.is_some_and(|n| call_no <= n) {
            return false;
        }
        if f.on_calls
            .as_ref()
            .is_some_and(|calls| !calls.contains(&call_no))
        {
            return false;
        }
        if !f.conditions.is_empty() && !matcher::all_hold(&f.conditions, args, &run.state().twin) {
            return false;
        }
        match f.probability {
            None => true,
            Some(p) => {
                let index = f.index.to_string();
                let call = call_no.to_string();
                let mut stream = Stream::new(
                    run.seed,
                    &[b"fault", tool.as_bytes(), index.as_bytes(), call.as_bytes()],
                );
                stream.next_f64() < p
            }
        }
    })
}

/// Lets virtual time pass, and shows templates the new time.
fn advance(run: &Run, by: Duration, scope: &mut Scope) {
    let now = {
        let mut state = run.state();
        state.now += chrono::Duration::from_std(by).unwrap_or_default();
        state.now
    };
    scope.set_now(format_time(now));
}

fn template_failure(e: RenderError) -> Outcome {
    Outcome::Error(ProtocolError::internal(format!("scenario error: {e}")))
}

async fn run_steps(
    run: &Run,
    rule: &Rule,
    scope: &mut Scope,
    call: &Call,
    client: &dyn Client,
) -> Result<(), Outcome> {
    let renderer = &run.engine.renderer;
    for step in &rule.steps {
        if call.cancel.is_cancelled() {
            return Err(cancelled());
        }
        let ctx = scope.context();
        match step {
            Step::Progress {
                progress,
                total,
                message,
            } => {
                let Some(token) = &call.progress_token else {
                    continue;
                };
                let mut params = json!({"progressToken": token, "progress": progress});
                if let Some(t) = total {
                    params["total"] = json!(t);
                }
                if let Some(m) = message {
                    params["message"] =
                        Value::String(renderer.text(m, &ctx).map_err(template_failure)?);
                }
                notify(run, client, "notifications/progress", params).await;
            }
            Step::Log {
                level,
                message,
                logger,
            } => {
                let threshold = run.state().log_level;
                if threshold.is_some_and(|min| *level < min) {
                    continue;
                }
                let mut params = json!({"level": level.as_str(), "data": renderer.text(message, &ctx).map_err(template_failure)?});
                if let Some(l) = logger {
                    params["logger"] = Value::String(l.clone());
                }
                notify(run, client, "notifications/message", params).await;
            }
            Step::Wait(d) => advance(run, *d, scope),
            Step::ResourceUpdated(uri) => {
                let uri = renderer.text(uri, &ctx).map_err(template_failure)?;
                if run.state().subscriptions.contains(&uri) {
                    notify(
                        run,
                        client,
                        "notifications/resources/updated",
                        json!({"uri": uri}),
                    )
                    .await;
                }
            }
            Step::Sample {
                save_as,
                prompt,
                system,
                max_tokens,
            } => {
                if !client.supports("sampling") {
                    return Err(Outcome::tool_error(
                        "this tool asks the client's model a question (sampling), but the client does not support sampling",
                    ));
                }
                let mut params = json!({
                    "messages": [{"role": "user", "content": {"type": "text", "text": renderer.text(prompt, &ctx).map_err(template_failure)?}}],
                    "maxTokens": max_tokens,
                });
                if let Some(s) = system {
                    params["systemPrompt"] =
                        Value::String(renderer.text(s, &ctx).map_err(template_failure)?);
                }
                let mut answer = ask(run, client, call, "sampling/createMessage", params).await?;
                // `answers.NAME.text` is the reply's text, for convenience.
                if let Some(text) = answer.pointer("/content/text").cloned() {
                    answer["text"] = text;
                }
                scope.add_answer(save_as, &answer);
            }
            Step::Elicit {
                save_as,
                message,
                schema,
            } => {
                if !client.supports("elicitation") {
                    return Err(Outcome::tool_error(
                        "this tool asks the user a question (elicitation), but the client does not support elicitation",
                    ));
                }
                let params = json!({
                    "message": renderer.text(message, &ctx).map_err(template_failure)?,
                    "requestedSchema": schema,
                });
                let answer = ask(run, client, call, "elicitation/create", params).await?;
                scope.add_answer(save_as, &answer);
            }
        }
    }
    Ok(())
}

async fn notify(run: &Run, client: &dyn Client, method: &str, params: Value) {
    run.record(
        EventKind::Notification,
        Direction::ToClient,
        Some(method),
        None,
        params.clone(),
    );
    if let Err(e) = client.notify(method, params).await {
        run.record(
            EventKind::Error,
            Direction::Internal,
            Some(method),
            None,
            json!({"message": e.to_string()}),
        );
    }
}

async fn ask(
    run: &Run,
    client: &dyn Client,
    call: &Call,
    method: &str,
    params: Value,
) -> Result<Value, Outcome> {
    run.record(
        EventKind::Request,
        Direction::ToClient,
        Some(method),
        None,
        params.clone(),
    );
    // A call cancelled while the client is asked ends cancelled, even if
    // the question failed at the same moment (a session that ends does
    // both).
    let answer = tokio::select! {
        biased;
        _ = call.cancel.cancelled() => return Err(cancelled()),
        a = client.request(method, params) => a,
    };
    let (kind, payload) = transcript::answer_event(&transcript::answer_outcome(&answer));
    run.record(kind, Direction::ToServer, Some(method), None, payload);
    answer.map_err(|e| match e {
        ClientError::Unsupported(what) => {
            Outcome::tool_error(format!("the client does not support {what}"))
        }
        other => Outcome::tool_error(format!("{method} failed: {other}")),
    })
}

/// Applies effects to a copy of the twin and swaps it in only if all of
/// them succeed, so a failing effect leaves no partial change behind.
fn apply_effects<'a>(
    run: &Run,
    effects: impl Iterator<Item = &'a Effect>,
    scope: &mut Scope,
) -> Result<Changes, Outcome> {
    let renderer = &run.engine.renderer;
    let mut state = run.state();
    let mut twin = state.twin.clone();
    let mut changes = Changes::default();
    let ctx = scope.context();
    let render_columns = |columns: &[(String, ValueTemplate)],
                          ctx: &minijinja::Value|
     -> Result<Vec<(String, Value)>, Outcome> {
        columns
            .iter()
            .map(|(k, v)| Ok((k.clone(), renderer.value(v, ctx).map_err(template_failure)?)))
            .collect()
    };
    for effect in effects {
        let result = match effect {
            Effect::Insert { table, row } => {
                let row: Map<String, Value> = render_columns(row, &ctx)?.into_iter().collect();
                twin.insert(table, row, &mut changes).map(|_| 1)
            }
            Effect::Update { table, filter, set } => {
                let filter = render_columns(filter, &ctx)?;
                let mut failure = None;
                let result = twin.update(
                    table,
                    &filter,
                    |row| {
                        // `set` may read the row it changes: `stock: "{{ row.stock - args.qty }}"`.
                        let mut row_scope = scope.clone();
                        row_scope.set("row", &Value::Object(row.clone()));
                        render_columns(set, &row_scope.context()).map_err(|o| {
                            failure = Some(o);
                            String::new()
                        })
                    },
                    &mut changes,
                );
                if let Some(o) = failure {
                    return Err(o);
                }
                result
            }
            Effect::Delete { table, filter } => {
                let filter = render_columns(filter, &ctx)?;
                twin.delete(table, &filter, &mut changes)
            }
        };
        if let Err(message) = result {
            return Err(Outcome::tool_error(message));
        }
    }
    state.twin = twin;
    scope.refresh_tables(&state.twin);
    scope.set("effects", &changes.to_json());
    Ok(changes)
}

fn protocol_error(run: &Run, pe: &ProtocolErrorTemplate, ctx: &minijinja::Value) -> Outcome {
    match run.engine.renderer.text(&pe.message, ctx) {
        Ok(message) => Outcome::Error(ProtocolError {
            code: pe.code,
            message,
            data: pe.data.clone(),
        }),
        Err(e) => template_failure(e),
    }
}

fn render_response(
    run: &Run,
    response: &Response,
    ctx: &minijinja::Value,
) -> Result<Outcome, RenderError> {
    let renderer = &run.engine.renderer;
    Ok(match response {
        Response::ToolError(text) => Outcome::tool_error(renderer.text(text, ctx)?),
        Response::ProtocolError(pe) => protocol_error(run, pe, ctx),
        Response::Then(_) => Outcome::Error(ProtocolError::internal(
            "a branching rule has no answer of its own",
        )),
        Response::Result {
            content,
            structured,
        } => {
            let structured = structured
                .as_ref()
                .map(|s| renderer.value(s, ctx))
                .transpose()?;
            let mut blocks = Vec::with_capacity(content.len());
            for c in content {
                // A `json:` response sends its value as structured content and
                // as text; render it once and reuse it for both.
                if let (ContentTemplate::Json(_), Some(v)) = (c, &structured)
                    && content.len() == 1
                {
                    blocks.push(json!({"type": "text", "text": v.to_string()}));
                    continue;
                }
                blocks.push(render_content(run, c, ctx)?);
            }
            let mut result = json!({"content": blocks});
            if let Some(s) = structured {
                result["structuredContent"] = s;
            }
            Outcome::Result(result)
        }
    })
}

fn render_content(
    run: &Run,
    content: &ContentTemplate,
    ctx: &minijinja::Value,
) -> Result<Value, RenderError> {
    let renderer = &run.engine.renderer;
    Ok(match content {
        ContentTemplate::Text(t) => json!({"type": "text", "text": renderer.text(t, ctx)?}),
        ContentTemplate::Json(v) => {
            json!({"type": "text", "text": renderer.value(v, ctx)?.to_string()})
        }
        ContentTemplate::Image { data, mime_type } => {
            json!({"type": "image", "data": &**data, "mimeType": mime_type})
        }
        ContentTemplate::Audio { data, mime_type } => {
            json!({"type": "audio", "data": &**data, "mimeType": mime_type})
        }
        ContentTemplate::Resource {
            uri,
            mime_type,
            body,
        } => {
            json!({"type": "resource", "resource": resource_contents(run, uri, mime_type.as_deref(), body, ctx)?})
        }
        ContentTemplate::ResourceLink {
            uri,
            name,
            description,
            mime_type,
        } => {
            let mut link = json!({"type": "resource_link", "uri": uri, "name": name});
            if let Some(d) = description {
                link["description"] = json!(d);
            }
            if let Some(m) = mime_type {
                link["mimeType"] = json!(m);
            }
            link
        }
    })
}

fn resource_contents(
    run: &Run,
    uri: &str,
    mime_type: Option<&str>,
    body: &ResourceBody,
    ctx: &minijinja::Value,
) -> Result<Value, RenderError> {
    let renderer = &run.engine.renderer;
    let mut contents = json!({"uri": uri});
    if let Some(m) = mime_type {
        contents["mimeType"] = json!(m);
    }
    match body {
        ResourceBody::Text(t) => contents["text"] = json!(renderer.text(t, ctx)?),
        ResourceBody::Json(v) => contents["text"] = json!(renderer.value(v, ctx)?.to_string()),
        ResourceBody::Blob(b) => contents["blob"] = json!(&**b),
    }
    Ok(contents)
}

fn plain_scope(run: &Run, labels: &[&[u8]]) -> Scope {
    let scenario = &run.engine.scenario;
    let state = run.state();
    Scope::new(
        &state.twin,
        &format_time(state.now),
        run.seed,
        &scenario.template_secrets,
        Stream::new(run.seed, labels),
    )
}

pub(crate) fn read_resource(run: &Run, uri: &str) -> Outcome {
    let scenario = &run.engine.scenario;
    let (mime_type, body, params) = if let Some(r) = scenario.resource(uri) {
        (r.mime_type.as_deref(), &r.body, BTreeMap::new())
    } else if let Some((t, params)) = scenario.match_resource_template(uri) {
        (t.mime_type.as_deref(), &t.body, params)
    } else {
        return resource_not_found(uri);
    };
    let mut scope = plain_scope(run, &[b"resource", uri.as_bytes()]);
    scope.set("params", &serde_json::to_value(&params).unwrap_or_default());
    match resource_contents(run, uri, mime_type, body, &scope.context()) {
        Ok(contents) => Outcome::Result(json!({"contents": [contents]})),
        Err(e) => template_failure(e),
    }
}

pub(crate) fn get_prompt(run: &Run, name: &str, arguments: &Map<String, Value>) -> Outcome {
    let Some(prompt) = run.engine.scenario.prompt(name) else {
        return Outcome::Error(ProtocolError::invalid_params(format!(
            "unknown prompt: {name}"
        )));
    };
    let missing: Vec<&str> = prompt
        .arguments
        .iter()
        .filter(|a| a.required && !arguments.contains_key(&a.name))
        .map(|a| a.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Outcome::Error(ProtocolError::invalid_params(format!(
            "prompt {name} needs the argument(s): {}",
            missing.join(", ")
        )));
    }
    let mut scope = plain_scope(run, &[b"prompt", name.as_bytes()]);
    scope.set("args", &Value::Object(arguments.clone()));
    let ctx = scope.context();
    let mut messages = Vec::with_capacity(prompt.messages.len());
    for m in &prompt.messages {
        let content = match render_content(run, &m.content, &ctx) {
            Ok(c) => c,
            Err(e) => return template_failure(e),
        };
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        messages.push(json!({"role": role, "content": content}));
    }
    let mut result = json!({"messages": messages});
    if let Some(d) = &prompt.description {
        result["description"] = json!(d);
    }
    Outcome::Result(result)
}

pub(crate) fn complete(
    run: &Run,
    reference: &CompletionRef,
    argument: &str,
    value: &str,
) -> Outcome {
    let scenario = &run.engine.scenario;
    let candidates: &[String] = match reference {
        CompletionRef::Prompt(name) => match scenario.prompt(name) {
            Some(p) => p
                .arguments
                .iter()
                .find(|a| a.name == argument)
                .map(|a| a.completions.as_slice())
                .unwrap_or(&[]),
            None => {
                return Outcome::Error(ProtocolError::invalid_params(format!(
                    "unknown prompt: {name}"
                )));
            }
        },
        CompletionRef::ResourceTemplate(uri) => {
            match scenario
                .resource_templates
                .iter()
                .find(|t| t.uri.template == *uri)
            {
                Some(t) => t
                    .completions
                    .get(argument)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
                None => {
                    return Outcome::Error(ProtocolError::invalid_params(format!(
                        "unknown resource template: {uri}"
                    )));
                }
            }
        }
    };
    let prefix = value.to_lowercase();
    let matching: Vec<&String> = candidates
        .iter()
        .filter(|c| c.to_lowercase().starts_with(&prefix))
        .collect();
    let total = matching.len();
    let values: Vec<&String> = matching.into_iter().take(MAX_COMPLETIONS).collect();
    Outcome::Result(
        json!({"completion": {"values": values, "total": total, "hasMore": total > MAX_COMPLETIONS}}),
    )
}
