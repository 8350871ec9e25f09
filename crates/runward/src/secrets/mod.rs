//! Secrets: a value type that never prints, and redaction of secret values from any text
//! runward writes (evidence, outputs, logs).

mod redact;
mod value;

pub use redact::{REDACTED, Redactor, StreamRedactor};
pub use value::SecretString;
