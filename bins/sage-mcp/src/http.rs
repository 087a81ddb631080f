//! Streamable HTTP at `/mcp`, behind bearer tokens. Only the sha256 of each token is stored (one
//! hex digest per line of `http.tokens_file`); `sage-mcp token create` prints a new token once.

use std::{path::Path, sync::Arc};

use anyhow::{Context, Result};
use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

/// The accepted tokens' digests.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    digests: Arc<Vec<[u8; 32]>>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// Reads the digests file (a missing file accepts nobody).
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let mut digests = Vec::new();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let bytes =
                hex_32(line.trim()).with_context(|| format!("{} line {}: not a sha256", path.display(), n + 1))?;
            digests.push(bytes);
        }
        Ok(Self { digests: Arc::new(digests) })
    }

    /// Whether `token` is one of them (each digest compared in constant time).
    pub fn accepts(&self, token: &str) -> bool {
        let d = digest(token);
        self.digests.iter().fold(false, |found, known| found | constant_eq(known, &d))
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether no token is accepted.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

fn constant_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex_32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

/// A new token from the OS RNG; its digest is appended to `path` and the token returned (shown
/// once, never stored).
pub fn create_token(path: &Path) -> Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
    let token = format!("smcp_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let line: String = digest(&token).iter().map(|b| format!("{b:02x}")).collect();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(f, "{line}")?;
    f.sync_all()?;
    Ok(token)
}

/// Refuses requests without an accepted `Authorization: Bearer` token (401, a JSON body naming
/// what was wrong).
pub async fn require_token(State(tokens): State<Tokens>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if tokens.accepts(token) => next.run(request).await,
        Some(_) => unauthorized("unknown bearer token"),
        None => unauthorized("missing `Authorization: Bearer <token>` (create one with `sage-mcp token create`)"),
    }
}

fn unauthorized(why: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": "unauthorized", "message": why } });
    (StatusCode::UNAUTHORIZED, [(axum::http::header::WWW_AUTHENTICATE, "Bearer")], axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_tokens_are_accepted_and_only_their_digest_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let a = create_token(&path).unwrap();
        let b = create_token(&path).unwrap();
        let stored = std::fs::read_to_string(&path).unwrap();
        assert!(!stored.contains(&a) && !stored.contains(&b[5..]));
        let tokens = Tokens::load(&path).unwrap();
        assert_eq!(tokens.len(), 2);
        assert!(tokens.accepts(&a) && tokens.accepts(&b));
        assert!(!tokens.accepts("smcp_00") && !tokens.accepts(""));
        assert!(Tokens::load(&dir.path().join("missing")).unwrap().is_empty());
        std::fs::write(&path, "not-a-digest\n").unwrap();
        assert!(Tokens::load(&path).is_err());
    }
}
