//! `sandbar secret set|list|rm|check|rotate`: the vault.
//!
//! Values are read from standard input or a file, never from an argument
//! (arguments show in process lists and shell history), registered with the
//! redactor the moment they are read, sealed under the vault key
//! (XChaCha20-Poly1305, see `crates/vault`) and stored sealed. No command
//! prints a value. Every change is written to the tenant's audit trail.
//!
//! The vault key: `--vault-key-file`, else SANDBAR_VAULT_KEY (64 hex
//! digits), else DATA/keys/vault.key, created 0600 by the first `set`. A
//! copy of the store without the key reveals nothing.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::json;

use sandbar_redact::SharedRedactor;
use sandbar_store::{NewAudit, Store, StoredSecret};
use sandbar_vault::{VaultKey, open, reseal, seal};

use crate::exit::ExitCode;
use crate::keys;

/// The longest secret value accepted, in bytes.
const MAX_SECRET_BYTES: usize = 64 * 1024;

#[derive(Debug, Args)]
pub struct SecretArgs {
    #[command(subcommand)]
    command: SecretCommand,
    /// The tenant whose vault to use.
    #[arg(long, global = true, default_value = keys::DEFAULT_TENANT)]
    tenant: String,
    /// The vault key file (64 hex digits). Default: SANDBAR_VAULT_KEY, else
    /// DATA/keys/vault.key.
    #[arg(long, global = true, value_name = "FILE")]
    vault_key_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// Store a secret: its value from standard input (one trailing newline
    /// dropped) or from --file.
    Set {
        name: String,
        /// Read the value from this file instead of standard input.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// The secrets' names, the key that sealed each, and when they changed.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret.
    Rm { name: String },
    /// Open every secret with the vault key, to show that it reads them all
    /// and that none was altered.
    Check,
    /// Re-seal every secret under a new key (64 hex digits in FILE), in one
    /// transaction; then use that key.
    Rotate {
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

pub async fn run(
    args: SecretArgs,
    data: &Path,
    redactor: SharedRedactor,
) -> anyhow::Result<ExitCode> {
    // Listing and removing need no key; the rest cannot go without it.
    let needs_key = !matches!(
        args.command,
        SecretCommand::List { .. } | SecretCommand::Rm { .. }
    );
    let creates = matches!(args.command, SecretCommand::Set { .. });
    let key = if needs_key {
        match vault_key(args.vault_key_file.as_deref(), data, creates) {
            Ok(key) => Some(key),
            Err(message) => {
                eprintln!("sandbar: {message}");
                return Ok(ExitCode::Failure);
            }
        }
    } else {
        None
    };
    if let SecretCommand::Set { name, .. } | SecretCommand::Rm { name } = &args.command
        && !super::valid_name(name)
    {
        eprintln!(
            "sandbar: secret names use letters, digits, `_`, `-` and `.` (at most 128): `{name}` does not"
        );
        return Ok(ExitCode::Usage);
    }
    // The value first, before the store is opened: registered with the
    // redactor before anything could print it.
    let value = match &args.command {
        SecretCommand::Set { name, file } => match read_value(file.as_deref()) {
            Ok(value) => {
                if value.len() >= 4 {
                    redactor
                        .add_secrets([(name.as_str(), value.as_str())])
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                Some(value)
            }
            Err(message) => {
                eprintln!("sandbar: {message}");
                return Ok(ExitCode::Usage);
            }
        },
        _ => None,
    };
    let store = crate::wiring::open_store(data, &redactor).await?;
    let result = command(&args, &store, key.as_ref(), value, &redactor).await;
    store.close().await?;
    result
}

async fn command(
    args: &SecretArgs,
    store: &Store,
    key: Option<&VaultKey>,
    value: Option<String>,
    redactor: &SharedRedactor,
) -> anyhow::Result<ExitCode> {
    let tenant = args.tenant.as_str();
    let keyed = || key.ok_or_else(|| anyhow::anyhow!("this command needs the vault key"));
    let audit = |action: &str, detail: serde_json::Value| NewAudit {
        tenant: tenant.to_owned(),
        actor: super::actor(),
        action: action.to_owned(),
        detail,
    };
    match &args.command {
        SecretCommand::Set { name, .. } => {
            let key = keyed()?;
            let value = value.unwrap_or_default();
            let sealed = seal(key, tenant, name, value.as_bytes())?;
            let now = chrono::Utc::now();
            let created_at = store
                .secrets(tenant)
                .await?
                .into_iter()
                .find(|s| s.name == *name)
                .map_or(now, |s| s.created_at);
            store
                .put_secrets(vec![StoredSecret {
                    tenant: tenant.to_owned(),
                    name: name.clone(),
                    key_id: sealed.key_id,
                    nonce: sealed.nonce,
                    ciphertext: sealed.ciphertext,
                    created_at,
                    updated_at: now,
                }])
                .await?;
            store
                .audit(&audit("secret.set", json!({"name": name, "key": key.id()})))
                .await?;
            eprintln!(
                "sandbar: secret `{name}` stored, sealed under vault key {}",
                key.id()
            );
            Ok(ExitCode::Success)
        }
        SecretCommand::List { json } => {
            let secrets = store.secrets(tenant).await?;
            if *json {
                let list: Vec<serde_json::Value> = secrets
                    .iter()
                    .map(|s| {
                        json!({
                            "name": s.name,
                            "key": s.key_id,
                            "created_at": s.created_at.to_rfc3339(),
                            "updated_at": s.updated_at.to_rfc3339(),
                        })
                    })
                    .collect();
                out!("{}", serde_json::to_string_pretty(&list)?);
            } else if secrets.is_empty() {
                out!("no secrets for tenant {tenant}");
            } else {
                for s in &secrets {
                    out!(
                        "{}  key {}  updated {}",
                        s.name,
                        s.key_id,
                        s.updated_at.format("%Y-%m-%dT%H:%M:%SZ")
                    );
                }
            }
            Ok(ExitCode::Success)
        }
        SecretCommand::Rm { name } => {
            if !store.remove_secret(tenant, name).await? {
                eprintln!("sandbar: no secret named `{name}` for tenant {tenant}");
                return Ok(ExitCode::Failure);
            }
            store
                .audit(&audit("secret.rm", json!({"name": name})))
                .await?;
            Ok(ExitCode::Success)
        }
        SecretCommand::Check => {
            let key = keyed()?;
            let secrets = store.secrets(tenant).await?;
            for s in &secrets {
                let sealed = sealed_of(s);
                match open(key, tenant, &s.name, &sealed) {
                    Ok(value) => {
                        // Opened: from now on this process redacts it too.
                        if let Ok(text) = std::str::from_utf8(&value)
                            && text.len() >= 4
                        {
                            let _ = redactor.add_secrets([(s.name.as_str(), text)]);
                        }
                    }
                    Err(e) => {
                        eprintln!("sandbar: {e}");
                        return Ok(ExitCode::Failure);
                    }
                }
            }
            out!(
                "{} secret(s) open with vault key {}",
                secrets.len(),
                key.id()
            );
            Ok(ExitCode::Success)
        }
        SecretCommand::Rotate { new_key_file } => {
            let key = keyed()?;
            let text = std::fs::read_to_string(new_key_file)
                .with_context(|| format!("cannot read {}", new_key_file.display()))?;
            let new = match VaultKey::from_hex(&text) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("sandbar: {}: {e}", new_key_file.display());
                    return Ok(ExitCode::Usage);
                }
            };
            let secrets = store.secrets(tenant).await?;
            let mut resealed = Vec::with_capacity(secrets.len());
            for s in secrets {
                let sealed = sealed_of(&s);
                // Already under the new key (a rotation that was repeated).
                let sealed = if s.key_id == new.id() {
                    sealed
                } else {
                    match reseal(key, &new, tenant, &s.name, &sealed) {
                        Ok(sealed) => sealed,
                        Err(e) => {
                            eprintln!("sandbar: nothing was rotated: {e}");
                            return Ok(ExitCode::Failure);
                        }
                    }
                };
                resealed.push(StoredSecret {
                    key_id: sealed.key_id,
                    nonce: sealed.nonce,
                    ciphertext: sealed.ciphertext,
                    updated_at: chrono::Utc::now(),
                    ..s
                });
            }
            let count = resealed.len();
            store.put_secrets(resealed).await?;
            store
                .audit(&audit(
                    "secret.rotate",
                    json!({"from": key.id(), "to": new.id(), "count": count}),
                ))
                .await?;
            // A key kept in the data directory is replaced there (by a
            // rename, so a reader sees the old key or the new one); a key
            // given from outside is the caller's to replace.
            let from_data_dir =
                args.vault_key_file.is_none() && std::env::var_os("SANDBAR_VAULT_KEY").is_none();
            if from_data_dir {
                let path = data_dir_key(store);
                let staged = path.with_extension("key.new");
                let _ = std::fs::remove_file(&staged);
                keys::write_private_file(&staged, &format!("{}\n", new.to_hex()))
                    .and_then(|()| std::fs::rename(&staged, &path))
                    .with_context(|| format!("secrets are re-sealed, but {} could not be replaced: put the new key there", path.display()))?;
                out!(
                    "{count} secret(s) re-sealed under vault key {}; {} now holds it",
                    new.id(),
                    path.display()
                );
            } else {
                out!(
                    "{count} secret(s) re-sealed under vault key {}; use that key from now on",
                    new.id()
                );
            }
            Ok(ExitCode::Success)
        }
    }
}

/// Every secret of `tenant`'s vault, opened and registered with the
/// redactor (before anything can print them), for scenarios to name; `None`
/// when there is no vault here (no store, or no key).
pub async fn open_vault(
    data: &Path,
    tenant: &str,
    redactor: &SharedRedactor,
) -> anyhow::Result<Option<std::collections::BTreeMap<String, String>>> {
    if !data.join(sandbar_store::DB_FILE).exists() {
        return Ok(None);
    }
    let Ok(key) = vault_key(None, data, false) else {
        return Ok(None);
    };
    let store = crate::wiring::open_store(data, redactor).await?;
    let stored = store.secrets(tenant).await;
    store.close().await?;
    let mut opened = std::collections::BTreeMap::new();
    for s in stored? {
        let sealed = sealed_of(&s);
        let value = sandbar_vault::open_text(&key, tenant, &s.name, &sealed)
            .map_err(|e| anyhow::anyhow!("the vault: {e}"))?;
        if value.len() >= 4 {
            redactor
                .add_secrets([(s.name.as_str(), value.as_str())])
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        opened.insert(s.name, value);
    }
    Ok(Some(opened))
}

/// A stored secret as the vault's sealed value.
fn sealed_of(stored: &StoredSecret) -> sandbar_vault::Sealed {
    sandbar_vault::Sealed {
        key_id: stored.key_id.clone(),
        nonce: stored.nonce.clone(),
        ciphertext: stored.ciphertext.clone(),
    }
}

/// DATA/keys/vault.key, next to the store's file.
fn data_dir_key(store: &Store) -> PathBuf {
    store
        .path()
        .parent()
        .unwrap_or(Path::new("."))
        .join("keys")
        .join("vault.key")
}

/// The value to store: from `file`, or standard input; one trailing
/// newline dropped.
fn read_value(file: Option<&Path>) -> Result<String, String> {
    let mut bytes = Vec::new();
    match file {
        Some(path) => {
            bytes =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Err(
                    "give the value on standard input (e.g. `printf %s \"$TOKEN\" | sandbar secret set NAME`) or with --file"
                        .to_owned(),
                );
            }
            std::io::stdin()
                .take(MAX_SECRET_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
        }
    }
    if bytes.len() > MAX_SECRET_BYTES {
        return Err(format!("a secret is at most {MAX_SECRET_BYTES} bytes"));
    }
    let mut value =
        String::from_utf8(bytes).map_err(|_| "a secret must be UTF-8 text".to_owned())?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        return Err("the value is empty".to_owned());
    }
    Ok(value)
}

/// The vault key: `file`, SANDBAR_VAULT_KEY, or DATA/keys/vault.key
/// (created when `create`).
fn vault_key(file: Option<&Path>, data: &Path, create: bool) -> Result<VaultKey, String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read the vault key {}: {e}", file.display()))?;
        return VaultKey::from_hex(&text).map_err(|e| format!("{}: {e}", file.display()));
    }
    if let Ok(text) = std::env::var("SANDBAR_VAULT_KEY") {
        return VaultKey::from_hex(&text).map_err(|e| format!("SANDBAR_VAULT_KEY: {e}"));
    }
    let path = data.join("keys").join("vault.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => VaultKey::from_hex(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let key = VaultKey::generate().map_err(|e| e.to_string())?;
            keys::write_private_file(&path, &format!("{}\n", key.to_hex()))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            eprintln!("sandbar: created a vault key in {}", path.display());
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "no vault key: none in {}, no SANDBAR_VAULT_KEY, no --vault-key-file",
            path.display()
        )),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}
