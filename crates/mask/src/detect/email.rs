//! Email addresses, found from their `@`: a local part of the practical
//! RFC 5321 shape (letters, digits and `._%+-`, no leading, trailing or
//! doubled dot) and a domain of at least two labels whose last one (the
//! top-level domain) is two or more letters. Package specifiers
//! (`lodash@4.17.21`), retina image names (`icon@2x.png`), scp-style
//! remotes (`git@host:org/repo`) and URL user information (`//user@host`)
//! are left alone.

use super::scan::{at, before, is_alnum};

/// The longest local part accepted (RFC 5321).
const MAX_LOCAL: usize = 64;
/// The longest domain accepted (RFC 1035).
const MAX_DOMAIN: usize = 253;

/// File extensions that look like top-level domains in names such as
/// `logo@2x.png` or `bundle@1.0.js`.
const FILE_EXTENSIONS: &[&[u8]] = &[
    b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"ico", b"bmp", b"tif", b"tiff", b"css",
    b"js", b"mjs", b"cjs", b"ts", b"tsx", b"jsx", b"json", b"yaml", b"yml", b"toml", b"txt",
    b"lock", b"html", b"htm", b"xml", b"map", b"wasm", b"pdf", b"zip", b"gz", b"tgz", b"md", b"rs",
    b"py", b"rb", b"go", b"java", b"kt", b"swift", b"php", b"sh", b"exe", b"dll", b"so", b"dylib",
    b"jar", b"war", b"mp3", b"mp4", b"mov", b"avi", b"wav", b"ogg", b"woff", b"woff2", b"ttf",
    b"otf", b"eot", b"csv", b"tsv", b"log", b"bak", b"tmp", b"ini", b"cfg", b"conf", b"env",
    b"pem", b"crt", b"key", b"der", b"lib", b"a", b"o",
];

fn is_local(b: u8) -> bool {
    is_alnum(b) || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_label(b: u8) -> bool {
    is_alnum(b) || b == b'-'
}

/// The email address around the `@` at `at_sign`, as a byte range.
pub(crate) fn around(hay: &[u8], at_sign: usize) -> Option<(usize, usize)> {
    let start = local_start(hay, at_sign)?;
    let end = domain_end(hay, at_sign + 1)?;
    // Something that continues the address with another `@` is not one.
    if at(hay, end) == Some(b'@') || at(hay, end) == Some(b'_') {
        return None;
    }
    // `git@github.com:org/repo.git`: an scp-style remote, not a mailbox.
    if at(hay, end) == Some(b':') && at(hay, end + 1).is_some_and(|b| is_alnum(b) || b == b'/') {
        return None;
    }
    Some((start, end))
}

fn local_start(hay: &[u8], at_sign: usize) -> Option<usize> {
    let lower = at_sign.saturating_sub(MAX_LOCAL + 1);
    let mut s = at_sign;
    while s > lower && is_local(hay[s - 1]) {
        s -= 1;
    }
    if s == lower && before(hay, s).is_some_and(is_local) {
        return None;
    }
    if at_sign - s > MAX_LOCAL {
        // One past the limit was taken only to see that the run goes on.
        return None;
    }
    while s < at_sign && !is_alnum(hay[s]) {
        s += 1;
    }
    if s == at_sign || hay[at_sign - 1] == b'.' {
        return None;
    }
    if hay[s..at_sign].windows(2).any(|w| w == b"..") {
        return None;
    }
    // `scheme://user@host`: the part before `@` is URL user information.
    if before(hay, s) == Some(b'/') {
        return None;
    }
    Some(s)
}

fn domain_end(hay: &[u8], from: usize) -> Option<usize> {
    let limit = (from + MAX_DOMAIN).min(hay.len());
    let mut i = from;
    let mut labels = 0usize;
    let mut end = from;
    let mut last_label = (from, from);
    loop {
        let label_start = i;
        while i < limit && is_label(hay[i]) {
            i += 1;
        }
        let label = &hay[label_start..i];
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-');
        if !ok {
            break;
        }
        labels += 1;
        end = i;
        last_label = (label_start, i);
        if at(hay, i) == Some(b'.') && i + 1 < limit && is_alnum(hay[i + 1]) {
            i += 1;
            continue;
        }
        break;
    }
    if labels < 2 || (end < hay.len() && is_label(hay[end])) {
        return None;
    }
    let tld = &hay[last_label.0..last_label.1];
    let tld_ok = (tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic))
        || (tld.len() > 4 && tld[..4].eq_ignore_ascii_case(b"xn--"));
    if !tld_ok {
        return None;
    }
    let lower: Vec<u8> = tld.to_ascii_lowercase();
    if FILE_EXTENSIONS.contains(&lower.as_slice()) {
        return None;
    }
    Some(end)
}

/// Whether `value` as a whole is an email address.
pub(crate) fn is_email(value: &str) -> bool {
    let hay = value.as_bytes();
    let Some(at_sign) = memchr_at(hay) else {
        return false;
    };
    around(hay, at_sign) == Some((0, hay.len()))
}

fn memchr_at(hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == b'@')
}
