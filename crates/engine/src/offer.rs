//! What the sandbox offers an agent, and where each item is answered.
//!
//! The offer merges the scenario's declared tools, resources and prompts
//! with the catalogs of its upstreams, and gives every tool a route: its
//! mode, the upstream behind it (if any) and its replay settings. It is
//! built once per engine; the list results an agent reads are prebuilt from
//! it.
//!
//! Naming rule for upstream items (tools and prompts): an item is offered
//! under its `rename`d name, else `prefix` + its name. If that name is
//! already taken by a declared item, or offered by more than one upstream,
//! every upstream copy of it is offered as `UPSTREAM__NAME` instead, so no
//! name is ever ambiguous and declared items keep theirs. Resources keep
//! their URIs; when two sources offer the same URI the first one (declared
//! resources first, then upstreams in file order) answers it.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value, json};

use sandbar_cassette::{FieldPath, MatchConfig, MatchOptions, PathMatch, PathRule};
use sandbar_scenario::{MatchRules, MissPolicy, Mode, Scenario, UriTemplate};

use crate::listing::Listings;
use crate::upstream::Catalog;

/// How one offered tool is answered.
#[derive(Debug, Clone)]
pub(crate) struct ToolRoute {
    /// The scenario declares it (its rules answer in stub mode).
    pub declared: bool,
    /// The upstream behind it (index into the engine's upstreams) and the
    /// tool's name there.
    pub upstream: Option<(usize, String)>,
    pub mode: Mode,
    pub miss: MissPolicy,
    /// Whether forwarded answers are masked before the agent sees them.
    pub mask: bool,
}

/// Where an upstream prompt lives.
#[derive(Debug, Clone)]
pub(crate) struct ItemRoute {
    pub upstream: usize,
    /// The item's name (prompts) or URI (resources) on the upstream.
    pub name: String,
    pub mode: Mode,
    /// Whether forwarded answers are masked before the agent sees them.
    pub mask: bool,
}

/// The merged offer.
#[derive(Debug)]
pub(crate) struct Offer {
    pub listings: Listings,
    pub tools: HashMap<String, ToolRoute>,
    pub prompts: HashMap<String, ItemRoute>,
    pub resources: HashMap<String, ItemRoute>,
    pub resource_templates: Vec<(UriTemplate, ItemRoute)>,
    /// How calls are compared with recorded ones.
    pub matching: MatchOptions,
    /// Upstreams whose items are forwarded in some mode (and so may be
    /// connected to).
    pub modes_by_upstream: Vec<Mode>,
}

/// Why the offer cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error("{0}")]
    Invalid(String),
}

/// Whether an upstream's answers are masked before the agent sees them.
pub(crate) fn upstream_masks(scenario: &Scenario, upstream: usize) -> bool {
    scenario.upstreams[upstream]
        .mask
        .unwrap_or(scenario.privacy.mask_upstream)
}

/// The mode of an upstream's undeclared items.
pub(crate) fn upstream_mode(scenario: &Scenario, upstream: usize) -> Mode {
    let u = &scenario.upstreams[upstream];
    u.mode
        .or(scenario.mode)
        .filter(|m| *m != Mode::Stub)
        .unwrap_or(Mode::Live)
}

impl Offer {
    /// Builds the offer from the scenario and its upstreams' catalogs (in
    /// the scenario's upstream order).
    pub fn new(scenario: &Scenario, catalogs: &[Catalog]) -> Result<Offer, OfferError> {
        let declared = Listings::new(scenario);
        let upstream_index: HashMap<&str, usize> = scenario
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| (u.name.as_str(), i))
            .collect();
        let modes_by_upstream: Vec<Mode> = (0..scenario.upstreams.len())
            .map(|i| upstream_mode(scenario, i))
            .collect();

        // Declared tools, in file order.
        let mut tools_json: Vec<Value> = list(&declared.tools, "tools");
        let mut tools = HashMap::new();
        let mut linked: HashSet<(usize, String)> = HashSet::new();
        for (i, tool) in scenario.tools.iter().enumerate() {
            let link = tool.upstream.as_ref().and_then(|l| {
                upstream_index
                    .get(l.upstream.as_str())
                    .map(|&u| (u, l.tool.clone()))
            });
            let mode = tool
                .mode
                .or_else(|| link.as_ref().and_then(|(u, _)| scenario.upstreams[*u].mode))
                .or(scenario.mode)
                .filter(|m| link.is_some() || !m.forwards())
                .unwrap_or(Mode::Stub);
            if let Some((u, name)) = &link {
                linked.insert((*u, name.clone()));
                // A declared tool without its own schema offers the
                // upstream's description and schema.
                if !tool.declares_schema
                    && let Some(theirs) = find_named(&catalogs[*u].tools, name)
                    && let Some(Value::Object(ours)) = tools_json.get_mut(i)
                {
                    for key in ["inputSchema", "outputSchema", "annotations", "title"] {
                        if let Some(v) = theirs.get(key) {
                            ours.insert(key.to_owned(), v.clone());
                        }
                    }
                    if tool.description.is_none()
                        && let Some(d) = theirs.get("description")
                    {
                        ours.insert("description".to_owned(), d.clone());
                    }
                }
            }
            let mask = match (tool.mask, &link) {
                (Some(mask), _) => mask,
                (None, Some((u, _))) => upstream_masks(scenario, *u),
                (None, None) => scenario.privacy.mask_upstream,
            };
            tools.insert(
                tool.name.clone(),
                ToolRoute {
                    declared: true,
                    upstream: link,
                    mode,
                    miss: tool.miss.unwrap_or(scenario.replay.miss),
                    mask,
                },
            );
        }

        // Upstream tools and prompts, named by the rule above.
        let declared_tools: HashSet<String> = tools.keys().cloned().collect();
        let declared_prompts: HashSet<String> =
            scenario.prompts.iter().map(|p| p.name.clone()).collect();
        let tool_names = offered_names(
            scenario,
            catalogs,
            |c| &c.tools,
            &declared_tools,
            &linked,
            "tool",
        )?;
        for (u, name, offered, item) in tool_names {
            let mut item = item.clone();
            if let Value::Object(m) = &mut item {
                m.insert("name".to_owned(), Value::from(offered.clone()));
            }
            tools_json.push(item);
            tools.insert(
                offered,
                ToolRoute {
                    declared: false,
                    upstream: Some((u, name)),
                    mode: modes_by_upstream[u],
                    miss: scenario.replay.miss,
                    mask: upstream_masks(scenario, u),
                },
            );
        }
        let mut prompts_json: Vec<Value> = list(&declared.prompts, "prompts");
        let mut prompts = HashMap::new();
        let no_links = HashSet::new();
        for (u, name, offered, item) in offered_names(
            scenario,
            catalogs,
            |c| &c.prompts,
            &declared_prompts,
            &no_links,
            "prompt",
        )? {
            let mut item = item.clone();
            if let Value::Object(m) = &mut item {
                m.insert("name".to_owned(), Value::from(offered.clone()));
            }
            prompts_json.push(item);
            prompts.insert(
                offered,
                ItemRoute {
                    upstream: u,
                    name,
                    mode: modes_by_upstream[u],
                    mask: upstream_masks(scenario, u),
                },
            );
        }

        // Resources: declared first, then upstreams; the first owner of a
        // URI answers it.
        let mut resources_json: Vec<Value> = list(&declared.resources, "resources");
        let mut seen: HashSet<String> = scenario.resources.iter().map(|r| r.uri.clone()).collect();
        let mut resources = HashMap::new();
        let mut templates_json: Vec<Value> =
            list(&declared.resource_templates, "resourceTemplates");
        let mut resource_templates = Vec::new();
        for (u, catalog) in catalogs.iter().enumerate() {
            for r in &catalog.resources {
                let Some(uri) = r.get("uri").and_then(Value::as_str) else {
                    continue;
                };
                if seen.insert(uri.to_owned()) {
                    resources_json.push(r.clone());
                    resources.insert(
                        uri.to_owned(),
                        ItemRoute {
                            upstream: u,
                            name: uri.to_owned(),
                            mode: modes_by_upstream[u],
                            mask: upstream_masks(scenario, u),
                        },
                    );
                }
            }
            for t in &catalog.resource_templates {
                let Some(template) = t.get("uriTemplate").and_then(Value::as_str) else {
                    continue;
                };
                templates_json.push(t.clone());
                // A template beyond RFC 6570 level 1 is still listed, but a
                // URI only it would match is "not found": Sandbar cannot
                // tell which upstream it belongs to.
                if let Ok(parsed) = UriTemplate::parse(template) {
                    resource_templates.push((
                        parsed,
                        ItemRoute {
                            upstream: u,
                            name: template.to_owned(),
                            mode: modes_by_upstream[u],
                            mask: upstream_masks(scenario, u),
                        },
                    ));
                }
            }
        }

        let matching = match_options(scenario, &tools)?;
        Ok(Offer {
            listings: Listings {
                tools: json!({"tools": tools_json}),
                resources: json!({"resources": resources_json}),
                resource_templates: json!({"resourceTemplates": templates_json}),
                prompts: json!({"prompts": prompts_json}),
            },
            tools,
            prompts,
            resources,
            resource_templates,
            matching,
            modes_by_upstream,
        })
    }

    /// The upstream route of a resource URI not declared by the scenario.
    pub fn resource_route(&self, uri: &str) -> Option<&ItemRoute> {
        self.resources.get(uri).or_else(|| {
            self.resource_templates
                .iter()
                .find(|(t, _)| t.matches(uri).is_some())
                .map(|(_, r)| r)
        })
    }

    /// Whether any item is in `record` mode.
    pub fn any_recorded(&self) -> bool {
        self.tools.values().any(|t| t.mode == Mode::Record)
            || self.modes_by_upstream.contains(&Mode::Record)
    }
}

/// The items of one list result.
fn list(result: &Value, key: &str) -> Vec<Value> {
    result
        .get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn find_named<'a>(items: &'a [Value], name: &str) -> Option<&'a Map<String, Value>> {
    items
        .iter()
        .filter_map(Value::as_object)
        .find(|m| m.get("name").and_then(Value::as_str) == Some(name))
}

/// An upstream item as offered: (upstream, name there, offered name, item).
type Named<'a> = (usize, String, String, &'a Value);

/// Upstream items with their offered names, in upstream order then catalog
/// order. A name two sources would offer (two upstreams, or an upstream and
/// the scenario) becomes `UPSTREAM__NAME`; if that still collides (a rename
/// or a declared tool already uses it), the offer is refused with the two
/// sources named, since an agent could not tell them apart.
fn offered_names<'a>(
    scenario: &Scenario,
    catalogs: &'a [Catalog],
    items: impl Fn(&'a Catalog) -> &'a Vec<Value>,
    declared: &HashSet<String>,
    linked: &HashSet<(usize, String)>,
    what: &str,
) -> Result<Vec<Named<'a>>, OfferError> {
    let mut candidates = Vec::new();
    for (u, catalog) in catalogs.iter().enumerate() {
        let upstream = &scenario.upstreams[u];
        for item in items(catalog) {
            let Some(name) = item.get("name").and_then(Value::as_str) else {
                continue;
            };
            if upstream.hides(name) || linked.contains(&(u, name.to_owned())) {
                continue;
            }
            let offered = match upstream.rename.get(name) {
                Some(renamed) => renamed.clone(),
                None => format!("{}{name}", upstream.prefix.as_deref().unwrap_or("")),
            };
            candidates.push((u, name.to_owned(), offered, item));
        }
    }
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, offered, _) in &candidates {
        *count.entry(offered.as_str()).or_default() += 1;
    }
    let ambiguous: HashSet<String> = count
        .into_iter()
        .filter(|(name, n)| *n > 1 || declared.contains(*name))
        .map(|(name, _)| name.to_owned())
        .collect();
    let named: Vec<Named<'a>> = candidates
        .into_iter()
        .map(|(u, name, offered, item)| {
            let offered = if ambiguous.contains(&offered) {
                format!("{}__{offered}", scenario.upstreams[u].name)
            } else {
                offered
            };
            (u, name, offered, item)
        })
        .collect();
    let mut taken: HashMap<&str, String> = declared
        .iter()
        .map(|d| (d.as_str(), format!("the scenario's {what} `{d}`")))
        .collect();
    for (u, name, offered, _) in &named {
        let upstream = &scenario.upstreams[*u].name;
        let source = format!("{what} `{name}` of upstream `{upstream}`");
        if let Some(other) = taken.insert(offered.as_str(), source.clone()) {
            return Err(OfferError::Invalid(format!(
                "{other} and {source} would both be offered as `{offered}`; \
                 rename or hide one of them (`rename:` or `hide:` under the upstream, \
                 or another name for the scenario's {what})"
            )));
        }
    }
    Ok(named)
}

/// The replay matching options: the scenario's rules for every call, plus
/// each tool's own.
fn match_options(
    scenario: &Scenario,
    tools: &HashMap<String, ToolRoute>,
) -> Result<MatchOptions, OfferError> {
    let default = match_config(&scenario.replay.matching, None)?;
    let mut per_tool = HashMap::new();
    for tool in &scenario.tools {
        if !tool.matching.is_empty() && tools.contains_key(&tool.name) {
            per_tool.insert(
                tool.name.clone(),
                match_config(&scenario.replay.matching, Some(&tool.matching))?,
            );
        }
    }
    Ok(MatchOptions {
        default,
        per_tool,
        strict_order: scenario.replay.strict_order,
        repeat_last: scenario.replay.repeat,
    })
}

fn match_config(base: &MatchRules, extra: Option<&MatchRules>) -> Result<MatchConfig, OfferError> {
    let mut rules = Vec::new();
    for source in std::iter::once(base).chain(extra) {
        let path = |p: &str| {
            p.parse::<FieldPath>()
                .map_err(|e| OfferError::Invalid(format!("match path `{p}`: {e}")))
        };
        for p in &source.ignore {
            rules.push(PathRule {
                path: path(p)?,
                how: PathMatch::Ignore,
            });
        }
        for (p, re) in &source.regex {
            rules.push(PathRule {
                path: path(p)?,
                how: PathMatch::Regex(re.clone()),
            });
        }
        for p in &source.same_type {
            rules.push(PathRule {
                path: path(p)?,
                how: PathMatch::SameType,
            });
        }
    }
    Ok(MatchConfig { rules })
}

#[cfg(test)]
// Tests fail by panicking; unwrapping is how they say so.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scenario(upstreams: &str, tools: &str) -> Scenario {
        let text = format!("version: 1\nname: naming\nupstreams:\n{upstreams}\ntools:\n{tools}\n");
        sandbar_scenario::load_str(&text, "naming.yaml", None).unwrap()
    }

    fn catalog(tools: &[&str]) -> Catalog {
        Catalog {
            tools: tools
                .iter()
                .map(|t| json!({"name": t, "inputSchema": {"type": "object"}}))
                .collect(),
            ..Catalog::default()
        }
    }

    const STUB_ECHO: &str = "  - name: echo\n    respond:\n      - text: stub";

    fn offered(offer: &Offer) -> Vec<String> {
        let mut names: Vec<String> = offer.tools.keys().cloned().collect();
        names.sort();
        names
    }

    #[test]
    fn colliding_names_are_prefixed_by_their_upstream() {
        let s = scenario(
            "  - name: a\n    url: http://127.0.0.1:1/mcp\n  - name: b\n    url: http://127.0.0.1:2/mcp",
            STUB_ECHO,
        );
        let offer =
            Offer::new(&s, &[catalog(&["echo", "add"]), catalog(&["echo", "sub"])]).unwrap();
        assert_eq!(
            offered(&offer),
            ["a__echo", "add", "b__echo", "echo", "sub"]
        );
        assert_eq!(
            offer.tools["b__echo"].upstream,
            Some((1, "echo".to_owned()))
        );
        assert!(offer.tools["echo"].declared);
    }

    #[test]
    fn a_name_that_still_collides_after_prefixing_is_refused_with_both_sources() {
        // b renames get-sum to echo, which the scenario and upstream b both
        // offer too: b's echo and its renamed get-sum would both be b__echo.
        let s = scenario(
            "  - name: a\n    url: http://127.0.0.1:1/mcp\n  - name: b\n    url: http://127.0.0.1:2/mcp\n    rename: {get-sum: echo}",
            STUB_ECHO,
        );
        let err = Offer::new(&s, &[catalog(&["echo"]), catalog(&["echo", "get-sum"])])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("would both be offered as `b__echo`"), "{err}");
        assert!(err.contains("tool `echo` of upstream `b`"), "{err}");
        assert!(err.contains("tool `get-sum` of upstream `b`"), "{err}");
        assert!(err.contains("rename or hide"), "{err}");

        // A declared tool already named like a prefixed one.
        let s = scenario(
            "  - name: a\n    url: http://127.0.0.1:1/mcp",
            "  - name: echo\n    respond:\n      - text: stub\n  - name: a__echo\n    respond:\n      - text: mine",
        );
        let err = Offer::new(&s, &[catalog(&["echo"])])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("the scenario's tool `a__echo`"), "{err}");
        assert!(err.contains("tool `echo` of upstream `a`"), "{err}");

        // Hiding one of them settles it.
        let s = scenario(
            "  - name: a\n    url: http://127.0.0.1:1/mcp\n  - name: b\n    url: http://127.0.0.1:2/mcp\n    rename: {get-sum: echo}\n    hide: [echo]",
            STUB_ECHO,
        );
        let offer = Offer::new(&s, &[catalog(&["echo"]), catalog(&["echo", "get-sum"])]).unwrap();
        assert_eq!(offered(&offer), ["a__echo", "b__echo", "echo"]);
        assert_eq!(
            offer.tools["b__echo"].upstream,
            Some((1, "get-sum".to_owned()))
        );
    }
}
