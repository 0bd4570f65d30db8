//! The list results (`tools/list`, `resources/list`, ...) of a scenario, in
//! MCP's JSON shape. They never change during a run, so they are built once
//! per scenario.

use serde_json::{Map, Value, json};

use sandbar_scenario::Scenario;

#[derive(Debug, Clone)]
pub(crate) struct Listings {
    pub tools: Value,
    pub resources: Value,
    pub resource_templates: Value,
    pub prompts: Value,
}

fn put(m: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        m.insert(key.to_owned(), v.into());
    }
}

impl Listings {
    /// The list results a recording was made with (empty lists for any it
    /// lacks).
    pub fn recorded(cassette: &sandbar_cassette::Cassette) -> Listings {
        let listings = cassette
            .header
            .server
            .as_ref()
            .and_then(|s| s.get("listings"));
        let get = |key: &str, field: &str| {
            listings
                .and_then(|l| l.get(key))
                .filter(|v| v.get(field).is_some_and(Value::is_array))
                .cloned()
                .unwrap_or_else(|| json!({ field: [] }))
        };
        Listings {
            tools: get("tools", "tools"),
            resources: get("resources", "resources"),
            resource_templates: get("resource_templates", "resourceTemplates"),
            prompts: get("prompts", "prompts"),
        }
    }

    pub fn new(scenario: &Scenario) -> Listings {
        let tools = scenario
            .tools
            .iter()
            .map(|t| {
                let mut m = Map::new();
                m.insert("name".into(), t.name.clone().into());
                put(&mut m, "title", t.title.clone());
                put(&mut m, "description", t.description.clone());
                m.insert(
                    "inputSchema".into(),
                    Value::Object((*t.input_schema).clone()),
                );
                put(
                    &mut m,
                    "outputSchema",
                    t.output_schema
                        .as_ref()
                        .map(|s| Value::Object((**s).clone())),
                );
                put(
                    &mut m,
                    "annotations",
                    t.annotations.clone().map(Value::Object),
                );
                Value::Object(m)
            })
            .collect::<Vec<_>>();
        let resources = scenario
            .resources
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("uri".into(), r.uri.clone().into());
                m.insert("name".into(), r.name.clone().into());
                put(&mut m, "title", r.title.clone());
                put(&mut m, "description", r.description.clone());
                put(&mut m, "mimeType", r.mime_type.clone());
                Value::Object(m)
            })
            .collect::<Vec<_>>();
        let resource_templates = scenario
            .resource_templates
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("uriTemplate".into(), r.uri.template.clone().into());
                m.insert("name".into(), r.name.clone().into());
                put(&mut m, "title", r.title.clone());
                put(&mut m, "description", r.description.clone());
                put(&mut m, "mimeType", r.mime_type.clone());
                Value::Object(m)
            })
            .collect::<Vec<_>>();
        let prompts = scenario
            .prompts
            .iter()
            .map(|p| {
                let mut m = Map::new();
                m.insert("name".into(), p.name.clone().into());
                put(&mut m, "title", p.title.clone());
                put(&mut m, "description", p.description.clone());
                if !p.arguments.is_empty() {
                    let args = p
                        .arguments
                        .iter()
                        .map(|a| {
                            let mut am = Map::new();
                            am.insert("name".into(), a.name.clone().into());
                            put(&mut am, "description", a.description.clone());
                            am.insert("required".into(), a.required.into());
                            Value::Object(am)
                        })
                        .collect::<Vec<_>>();
                    m.insert("arguments".into(), Value::Array(args));
                }
                Value::Object(m)
            })
            .collect::<Vec<_>>();
        Listings {
            tools: json!({"tools": tools}),
            resources: json!({"resources": resources}),
            resource_templates: json!({"resourceTemplates": resource_templates}),
            prompts: json!({"prompts": prompts}),
        }
    }
}
