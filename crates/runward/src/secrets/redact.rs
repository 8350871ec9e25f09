//! Redaction of known secret values, in their plain, base64 and URL-encoded forms, from whole
//! texts or from streams cut into arbitrary chunks.

use super::SecretString;
use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use std::sync::Arc;

/// What every redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are not redacted (they would match ordinary text).
const MIN_SECRET_LEN: usize = 4;
/// Encoded fragments shorter than this are not searched for.
const MIN_FRAGMENT_LEN: usize = 6;

/// Finds and replaces registered secret values in text.
///
/// Each secret is searched for as itself, in standard and URL-safe base64 at every byte
/// alignment (so it is found inside a larger base64 blob, e.g. a Basic auth header), and
/// percent-encoded. Cheap to clone.
#[derive(Clone, Default)]
pub struct Redactor {
    matcher: Option<Arc<AhoCorasick>>,
    longest: usize,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field(
                "patterns",
                &self.matcher.as_ref().map_or(0, |m| m.patterns_len()),
            )
            .finish()
    }
}

impl Redactor {
    /// A redactor for the given secrets. Secrets shorter than four bytes are ignored.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a SecretString>) -> Self {
        let mut patterns: Vec<String> = Vec::new();
        for secret in secrets {
            let value = secret.expose();
            if value.len() < MIN_SECRET_LEN {
                continue;
            }
            patterns.push(value.to_owned());
            for engine in [
                &base64::engine::general_purpose::STANDARD_NO_PAD,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ] {
                for fragment in base64_fragments(engine, value.as_bytes()) {
                    if fragment.len() >= MIN_FRAGMENT_LEN {
                        patterns.push(fragment);
                    }
                }
            }
            for encoded in [
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
                value.replace(' ', "+"),
            ] {
                if encoded != value {
                    patterns.push(encoded);
                }
            }
        }
        patterns.sort();
        patterns.dedup();
        if patterns.is_empty() {
            return Redactor::default();
        }
        let longest = patterns.iter().map(String::len).max().unwrap_or(0);
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .expect("literal patterns always build");
        Redactor {
            matcher: Some(Arc::new(matcher)),
            longest,
        }
    }

    /// Whether any secret is registered.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// Replaces every secret form in `text` with [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        match &self.matcher {
            None => text.to_owned(),
            Some(m) => m.replace_all(text, &vec![REDACTED; m.patterns_len()]),
        }
    }

    /// Whether `text` contains any secret form.
    pub fn contains_secret(&self, text: &str) -> bool {
        self.matcher.as_ref().is_some_and(|m| m.is_match(text))
    }

    /// A redactor for a stream of chunks.
    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor {
            redactor: self.clone(),
            pending: String::new(),
        }
    }
}

/// The base64 characters that depend only on `secret`'s bytes, for each of the three
/// alignments the secret can have inside a larger encoded blob.
fn base64_fragments(engine: &base64::engine::GeneralPurpose, secret: &[u8]) -> Vec<String> {
    let mut out = Vec::with_capacity(3);
    for offset in 0..3usize {
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(secret);
        let encoded = engine.encode(&bytes);
        // Character i covers bits [6i, 6i + 6); the secret covers [8 * offset, 8 * (offset + n)).
        let first = (8 * offset).div_ceil(6);
        let end = (8 * (offset + secret.len())) / 6;
        if end > first {
            out.push(encoded[first..end].to_owned());
        }
    }
    out
}

/// Redacts a stream cut into chunks at arbitrary points, including inside a secret.
///
/// [`push`](StreamRedactor::push) returns the text that is safe to write now and holds back
/// the tail that could be the start of a secret; [`finish`](StreamRedactor::finish) returns
/// the rest. The concatenated output equals `Redactor::redact` of the concatenated input.
#[derive(Debug, Clone)]
pub struct StreamRedactor {
    redactor: Redactor,
    pending: String,
}

impl StreamRedactor {
    /// Adds a chunk; returns the redacted text that can be written now.
    pub fn push(&mut self, chunk: &str) -> String {
        self.pending.push_str(chunk);
        let Some(matcher) = self.redactor.matcher.clone() else {
            return std::mem::take(&mut self.pending);
        };
        // Everything before `safe` can be emitted: no match that starts there can extend past
        // the buffer, except matches that start within the last `longest - 1` bytes.
        let hold = self.redactor.longest.saturating_sub(1);
        let mut safe = self.pending.len().saturating_sub(hold);
        while !self.pending.is_char_boundary(safe) {
            safe -= 1;
        }
        let mut out = String::new();
        let mut last = 0;
        for m in matcher.find_iter(&self.pending) {
            if m.start() >= safe {
                break;
            }
            out.push_str(&self.pending[last..m.start()]);
            out.push_str(REDACTED);
            last = m.end();
        }
        let cut = safe.max(last);
        out.push_str(&self.pending[last..cut]);
        self.pending.drain(..cut);
        out
    }

    /// Returns the held-back tail, redacted.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        self.redactor.redact(&rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        Redactor::new(&[
            SecretString::new("s3cr3t-webhook-token"),
            SecretString::new("p@ss word/+"),
        ])
    }

    #[test]
    fn plain_values() {
        let r = redactor();
        assert_eq!(r.redact("token=s3cr3t-webhook-token;"), "token=[REDACTED];");
        assert!(!r.contains_secret("nothing to see"));
    }

    #[test]
    fn base64_at_every_alignment() {
        let r = redactor();
        for prefix in ["", "a", "ab", "user:"] {
            let blob = base64::engine::general_purpose::STANDARD
                .encode(format!("{prefix}s3cr3t-webhook-token"));
            let text = format!("Authorization: Basic {blob}");
            let out = r.redact(&text);
            assert!(out.contains(REDACTED), "prefix {prefix:?}: {out}");
            assert!(!out.contains(&blob), "{out}");
        }
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("p@ss word/+");
        assert!(r.redact(&url_safe).contains(REDACTED));
    }

    #[test]
    fn url_encoded() {
        let r = redactor();
        assert_eq!(
            r.redact("https://x/?pw=p%40ss%20word%2F%2B&a=1"),
            "https://x/?pw=[REDACTED]&a=1"
        );
        assert_eq!(r.redact("pw=p@ss+word/+"), "pw=[REDACTED]");
    }

    #[test]
    fn across_chunk_boundaries() {
        let r = redactor();
        let text = "before s3cr3t-webhook-token middle p@ss word/+ after, and s3cr3t-webhook-token";
        let expected = r.redact(text);
        for size in 1..12 {
            let mut stream = r.stream();
            let mut out = String::new();
            let chars: Vec<char> = text.chars().collect();
            for chunk in chars.chunks(size) {
                out.push_str(&stream.push(&chunk.iter().collect::<String>()));
            }
            out.push_str(&stream.finish());
            assert_eq!(out, expected, "chunk size {size}");
            assert!(!out.contains("s3cr3t"));
        }
    }

    #[test]
    fn short_secrets_are_ignored_and_empty_redactor_passes_through() {
        let r = Redactor::new(&[SecretString::new("ab")]);
        assert!(r.is_empty());
        assert_eq!(r.redact("ab cd"), "ab cd");
        let mut s = r.stream();
        assert_eq!(s.push("ab"), "ab");
    }
}
