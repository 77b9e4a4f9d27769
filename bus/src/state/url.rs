//! Database URLs: which backend they name, and how to show them without their secrets.

use super::StateError;
use crate::config::redact_url;

/// The two supported backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    pub(crate) fn from_url(url: &str) -> Result<Self, StateError> {
        let lower = url.trim_start().to_ascii_lowercase();
        if lower.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StateError::UnsupportedUrl {
                url: redact_url(url),
            })
        }
    }
}

/// For SQLite, ask for the file to be created when missing unless the URL already chooses a `mode`.
pub(crate) fn sqlite_create_if_missing(url: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    if url.contains(":memory:") || query.split('&').any(|kv| kv.starts_with("mode=")) {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}mode=rwc")
}

/// Every spelling of a secret the URL carries (raw and percent-decoded), longest first, for scrubbing messages.
fn secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let base = url.split_once('?').map(|(b, _)| b).unwrap_or(url);
    if let Some((_, rest)) = base.split_once("://") {
        let authority = rest.split('/').next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            found.push(password.to_string());
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        for kv in query.split('&') {
            if let Some((k, v)) = kv.split_once('=')
                && k.to_ascii_lowercase().contains("password")
            {
                found.push(v.to_string());
            }
        }
    }
    let decoded: Vec<String> = found.iter().map(|s| percent_decode(s)).collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty());
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found.dedup();
    found
}

/// `message` with every secret of `url` replaced by `***`.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    let mut out = message.to_string();
    for secret in secrets(url) {
        out = out.replace(&secret, "***");
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_in_userinfo_and_query() {
        assert_eq!(
            redact_url("postgres://bus:p%40ss:w@db.example:5432/lt?sslmode=require"),
            "postgres://bus:***@db.example:5432/lt?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db/lt?user=bus&password=hunter2"),
            "postgres://db/lt?user=bus&password=***"
        );
        assert_eq!(redact_url("postgres://bus@db/lt"), "postgres://bus@db/lt");
        assert_eq!(
            redact_url("sqlite:///var/lib/lt/state.db?mode=rwc"),
            "sqlite:///var/lib/lt/state.db?mode=rwc"
        );
    }

    #[test]
    fn scrubs_raw_and_decoded_passwords() {
        let url = "postgres://bus:p%40ss@db/lt?password=other";
        let msg = "failed for p@ss, p%40ss and other";
        assert_eq!(scrub(msg, url), "failed for ***, *** and ***");
    }

    #[test]
    fn sqlite_urls_get_create_mode_unless_chosen() {
        assert_eq!(
            sqlite_create_if_missing("sqlite:///a/b.db"),
            "sqlite:///a/b.db?mode=rwc"
        );
        assert_eq!(
            sqlite_create_if_missing("sqlite://b.db?cache=shared"),
            "sqlite://b.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            sqlite_create_if_missing("sqlite://b.db?mode=ro"),
            "sqlite://b.db?mode=ro"
        );
    }

    #[test]
    fn backend_from_scheme() {
        assert_eq!(Backend::from_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::from_url("postgresql://h/db").unwrap(),
            Backend::Postgres
        );
        let err = Backend::from_url("mysql://u:secret@h/db").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
