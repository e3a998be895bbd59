//! RFC 6750 answers to denied requests (CONTRACT §2).

use crate::config::Config;
use crate::decision::Decision;
use crate::reason::{DenialClass, Reason};
use crate::text::header_safe;

#[derive(Debug, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Builds the response for a denial. Messages are ours, built from claim values
/// at most, never from the token itself.
pub fn denial(cfg: &Config, reason: Reason, message: &str, d: Option<&Decision>) -> LocalResponse {
    let class = reason.class();
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("cache-control".to_string(), "no-store".to_string()),
    ];
    let description = header_safe(message);
    let challenge = match class {
        DenialClass::NoToken => Some(format!("Bearer realm=\"{}\"", cfg.realm)),
        DenialClass::InvalidRequest | DenialClass::InvalidToken => Some(format!(
            "Bearer error=\"{}\", error_description=\"{description}\"",
            class.error_code()
        )),
        DenialClass::InsufficientScope => {
            let scope = d
                .and_then(|d| d.required_scopes.as_deref())
                .map(|s| format!(", scope=\"{s}\""))
                .unwrap_or_default();
            Some(format!(
                "Bearer error=\"insufficient_scope\"{scope}, error_description=\"{description}\""
            ))
        }
        DenialClass::Unavailable => {
            headers.push(("retry-after".to_string(), "5".to_string()));
            None
        }
        DenialClass::None | DenialClass::Internal => None,
    };
    if let Some(c) = challenge {
        headers.push(("www-authenticate".to_string(), c));
    }
    let body = serde_json::json!({
        "error": class.error_code(),
        "error_description": message,
        "reason": reason.as_str(),
    })
    .to_string();
    LocalResponse {
        status: class.status(),
        headers,
        body,
    }
}

/// A 500 for states the filter cannot decide in (no configuration, no path).
pub fn internal(reason: Reason, message: &str) -> LocalResponse {
    LocalResponse {
        status: 500,
        headers: vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("cache-control".to_string(), "no-store".to_string()),
        ],
        body: serde_json::json!({
            "error": "server_error",
            "error_description": message,
            "reason": reason.as_str(),
        })
        .to_string(),
    }
}
