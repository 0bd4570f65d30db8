//! One module per subcommand.

pub mod approval;
pub mod demo;
pub mod mask;
pub mod replay;
pub mod runs;
pub mod scan;
pub mod secret;
pub mod serve;
pub mod token;
pub mod unmask;
pub mod validate;

use crate::exit::ExitCode;

/// `sandbar schema`: the JSON Schema of the scenario format.
pub fn schema() -> anyhow::Result<ExitCode> {
    let text = serde_json::to_string_pretty(&sandbar_scenario::json_schema())?;
    out!("{text}");
    Ok(ExitCode::Success)
}

/// Whether `name` may name a secret or a tenant: letters, digits, `_`,
/// `-` and `.`, at most 128 bytes.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Who a command acts as, for audit entries: `cli:` and the login name.
pub fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned())
    )
}
