//! Masking keys: one master key per data directory (or given by file or
//! environment), and a key per tenant derived from it; and installing a
//! tenant's privacy policy into the process's redactor.

use std::io::Write as _;
use std::path::Path;

use sandbar_mask::MaskKey;
use sandbar_redact::{Privacy, PrivacyPolicy, SharedRedactor};

/// The tenant every run belongs to until tenants are configured.
pub const DEFAULT_TENANT: &str = "default";

/// The master masking key: `file`, else SANDBAR_MASK_KEY, else
/// DATA/keys/mask.key (created with 32 random bytes, readable by its owner
/// only, the first time).
pub fn master_key(file: Option<&Path>, data: &Path) -> Result<[u8; 32], String> {
    if let Some(key) = existing_master_key(file, data)? {
        return Ok(key);
    }
    let path = data.join("keys").join("mask.key");
    let bytes = random_key()?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(path.parent().unwrap_or(data))
        .map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    match write_private(&path, &format!("{hex}\n")) {
        Ok(()) => {
            eprintln!("sandbar: created a masking key in {}", path.display());
            Ok(bytes)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            parse_key(&text).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) => Err(format!("cannot write {}: {e}", path.display())),
    }
}

/// The master masking key if there is one: `file`, else SANDBAR_MASK_KEY,
/// else DATA/keys/mask.key if it exists. Creates nothing.
fn existing_master_key(file: Option<&Path>, data: &Path) -> Result<Option<[u8; 32]>, String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read the key file {}: {e}", file.display()))?;
        return parse_key(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", file.display()));
    }
    if let Ok(text) = std::env::var("SANDBAR_MASK_KEY") {
        return parse_key(&text)
            .map(Some)
            .map_err(|e| format!("SANDBAR_MASK_KEY: {e}"));
    }
    let path = data.join("keys").join("mask.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_key(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn random_key() -> Result<[u8; 32], String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot draw a random key: {e}"))?;
    Ok(bytes)
}

/// The key of `tenant`, derived from the master key.
pub fn tenant_key(file: Option<&Path>, data: &Path, tenant: &str) -> Result<MaskKey, String> {
    Ok(MaskKey::derive(&master_key(file, data)?, tenant))
}

/// Makes every sink of `redactor` apply `policy` under the default
/// tenant's key.
pub fn install_privacy(
    redactor: &SharedRedactor,
    data: &Path,
    policy: PrivacyPolicy,
) -> anyhow::Result<()> {
    let key = tenant_key(None, data, DEFAULT_TENANT).map_err(anyhow::Error::msg)?;
    redactor.set_privacy(Some(Privacy::new(key, policy)));
    Ok(())
}

/// [`install_privacy`] for a command that only reads the data directory:
/// it uses the directory's key when there is one and creates none. Without
/// one, nothing in the directory was masked under it, so a key held in
/// memory for this process alone masks what the command prints.
pub fn install_privacy_read_only(
    redactor: &SharedRedactor,
    data: &Path,
    policy: PrivacyPolicy,
) -> anyhow::Result<()> {
    let master = match existing_master_key(None, data).map_err(anyhow::Error::msg)? {
        Some(key) => key,
        None => random_key().map_err(anyhow::Error::msg)?,
    };
    let key = MaskKey::derive(&master, DEFAULT_TENANT);
    redactor.set_privacy(Some(Privacy::new(key, policy)));
    Ok(())
}

/// Writes a new file readable by its owner only (its directory created).
pub fn write_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_private(path, text)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

fn parse_key(text: &str) -> Result<[u8; 32], String> {
    let hex = text.trim();
    let wrong = || "a masking key is 64 hexadecimal digits (32 bytes)".to_owned();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(wrong());
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| wrong())?;
    }
    Ok(bytes)
}
