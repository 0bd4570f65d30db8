//! Housekeeping checks: the committed JSON Schema matches the Rust types,
//! and every example scenario loads.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `schema/scenario.schema.json` must be what `sandbar schema` prints.
/// Run with `SANDBAR_BLESS=1` to rewrite it after changing the format.
#[test]
fn committed_schema_is_current() {
    let path = repo_root().join("schema/scenario.schema.json");
    let expected = serde_json::to_string_pretty(&sandbar_scenario::json_schema())
        .expect("schema serializes")
        + "\n";
    if std::env::var_os("SANDBAR_BLESS").is_some() {
        std::fs::write(&path, &expected).expect("write schema");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{} is stale; regenerate it with `SANDBAR_BLESS=1 cargo test -p sandbar-scenario --test schema_and_examples`",
        path.display()
    );
}

/// Every example validates against the committed schema as well as loading,
/// so the schema editors use never rejects a file Sandbar accepts.
#[test]
fn every_example_loads_and_fits_the_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("schema/scenario.schema.json"))
            .expect("schema file"),
    )
    .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let mut found = 0;
    for entry in std::fs::read_dir(repo_root().join("examples")).expect("examples dir") {
        let dir = entry.expect("entry").path();
        let file = dir.join("scenario.yaml");
        if !file.exists() {
            continue;
        }
        found += 1;
        let scenario =
            sandbar_scenario::load_path(&file).unwrap_or_else(|e| panic!("{}", e.detailed()));
        assert!(
            !scenario.tools.is_empty(),
            "{} has no tools",
            file.display()
        );
        let text = std::fs::read_to_string(&file).expect("read");
        let as_json: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml as json");
        let errors: Vec<String> = validator
            .iter_errors(&as_json)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} does not fit the schema: {errors:#?}",
            file.display()
        );
    }
    assert!(found >= 4, "expected at least four examples, found {found}");
}
