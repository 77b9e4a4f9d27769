//! The axis's HTTP API as this source calls it (list, fetch, mark; see the module docs of `vxp`): every call
//! carries the system's credentials (`systemId`, `secretKey`) to `base_url` only, through the shared client
//! policy (`crate::http_client`: no redirect is followed, so the key never reaches another host), and every
//! answer is judged here, so the pull logic sees a document list, a package, or why not.

use super::VxpPull;
use crate::http_client;
use bytes::Bytes;
use serde_json::{Value, json};

/// One pending document as listed by the axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub(crate) doc_id: String,
    pub(crate) from: Option<String>,
    /// The `servicetype` it was listed under; fetch and mark carry the same.
    pub(crate) service: String,
}

/// Why a package could not be fetched.
pub(super) enum FetchError {
    /// Try again next poll.
    Retry(String),
    /// Larger than the bus accepts: will never get in.
    TooLarge(usize),
}

impl VxpPull {
    fn request(&self, method: reqwest::Method, op: &str, service: &str) -> reqwest::RequestBuilder {
        self.headers(
            self.http.request(method, format!("{}/{op}", self.base)),
            service,
        )
    }

    fn headers(&self, rb: reqwest::RequestBuilder, service: &str) -> reqwest::RequestBuilder {
        rb.header("systemId", &self.system_id)
            .header("secretKey", &self.secret)
            .header("from", &self.agency)
            .header("servicetype", service)
            .header("messagetype", service.to_lowercase())
    }

    pub(super) async fn list(&self, service: &str) -> Result<Vec<Listed>, String> {
        let resp = self
            .request(reqwest::Method::GET, "getReceivedEdocList", service)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = resp.status();
        let raw = resp.bytes().await.map_err(|e| describe(&e))?;
        listed(&axis_json(status, &raw)?, service)
    }

    pub(super) async fn fetch(&self, doc: &str, service: &str) -> Result<Bytes, FetchError> {
        let mut url = reqwest::Url::parse(&format!("{}/getEdoc", self.base))
            .map_err(|e| FetchError::Retry(e.to_string()))?;
        url.query_pairs_mut().append_pair("docId", doc);
        let mut resp = self
            .headers(self.http.get(url), service)
            .send()
            .await
            .map_err(|e| FetchError::Retry(describe(&e)))?;
        let status = resp.status();
        let is_json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"));
        if !status.is_success() || is_json {
            let raw = resp.bytes().await.unwrap_or_default();
            return Err(FetchError::Retry(not_a_package(status, &raw)));
        }
        if let Some(len) = resp.content_length()
            && len as usize > self.max_bytes
        {
            return Err(FetchError::TooLarge(len as usize));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Retry(describe(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > self.max_bytes {
                return Err(FetchError::TooLarge(body.len()));
            }
        }
        if body.is_empty() {
            return Err(FetchError::Retry("empty package".into()));
        }
        Ok(Bytes::from(body))
    }

    pub(super) async fn mark(
        &self,
        doc: &str,
        service: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<(), String> {
        let mut body = json!({ "docId": doc, "status": status });
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        let resp = self
            .request(reqwest::Method::POST, "updateStatus", service)
            .json(&body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let st = resp.status();
        let raw = resp.bytes().await.map_err(|e| describe(&e))?;
        axis_json(st, &raw).map(|_| ())
    }
}

/// The documents an axis list answer names, under `service`; an item without a `docId` is skipped (logged).
pub(crate) fn listed(v: &Value, service: &str) -> Result<Vec<Listed>, String> {
    let data = match v.get("data") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => return Ok(Vec::new()),
        Some(other) => {
            return Err(format!(
                "`data` is not a list: {}",
                http_client::quoted(&other.to_string())
            ));
        }
    };
    let mut out = Vec::with_capacity(data.len());
    for item in data {
        let doc_id = match item.get("docId") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                tracing::warn!(item = %item, "listed item without a docId; skipped");
                continue;
            }
        };
        let from = item
            .get("from")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_owned());
        out.push(Listed {
            doc_id,
            from,
            service: service.to_owned(),
        });
    }
    Ok(out)
}

/// Why a fetch answer (an error status, or JSON) is not a package.
pub(crate) fn not_a_package(status: reqwest::StatusCode, raw: &[u8]) -> String {
    match axis_json(status, raw) {
        Err(e) => e,
        Ok(_) => format!("HTTP {status} with a JSON answer instead of a package"),
    }
}

/// An axis JSON answer with `status: OK`, or why not.
pub(crate) fn axis_json(status: reqwest::StatusCode, raw: &[u8]) -> Result<Value, String> {
    if status.is_redirection() {
        return Err(format!(
            "HTTP {status}{}",
            http_client::redirect_note(status)
        ));
    }
    let excerpt = lienthong_bus::adapter::excerpt(raw, 300);
    let v: Value =
        serde_json::from_slice(raw).map_err(|_| format!("HTTP {status}, not JSON: {excerpt}"))?;
    let ok = v
        .get("status")
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("ok"));
    if status.is_success() && ok {
        return Ok(v);
    }
    let code = v
        .get("ErrorCode")
        .map(|c| c.to_string())
        .unwrap_or_default();
    let desc = v
        .get("ErrorDesc")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Err(format!(
        "HTTP {status}, axis error {}: {}",
        http_client::cut(&code, http_client::MAX_QUOTED_CODE),
        http_client::quoted(desc)
    ))
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    http_client::error_chain(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An oracle of `fuzz/fuzz_targets/vxp_response.rs`; before this fix the axis's `ErrorDesc`, `ErrorCode` and a non-list `data`
    /// were quoted whole into messages that are logged and sent back with `fail`.
    #[test]
    fn messages_quoting_the_axis_are_bounded() {
        let long = "x".repeat(100_000);
        let status = reqwest::StatusCode::INTERNAL_SERVER_ERROR;
        for body in [
            json!({"status": "FAIL", "ErrorCode": "E1", "ErrorDesc": long}),
            json!({"status": "FAIL", "ErrorCode": [long], "ErrorDesc": "d"}),
        ] {
            let raw = serde_json::to_vec(&body).unwrap();
            let e = axis_json(status, &raw).unwrap_err();
            assert!(e.chars().count() <= 400, "{} characters", e.chars().count());
            assert!(
                e.starts_with("HTTP 500 Internal Server Error, axis error "),
                "{e:.80}"
            );
            let e = not_a_package(status, &raw);
            assert!(e.chars().count() <= 400, "{} characters", e.chars().count());
        }
        let raw = serde_json::to_vec(&json!({"status": "OK", "data": {"docId": long}})).unwrap();
        let v = axis_json(reqwest::StatusCode::OK, &raw).unwrap();
        let e = listed(&v, "eDoc").unwrap_err();
        assert!(e.chars().count() <= 400, "{} characters", e.chars().count());
        assert!(e.starts_with("`data` is not a list: "), "{e:.80}");
        // Short ones are quoted whole.
        let raw = br#"{"status":"FAIL","ErrorCode":"E42","ErrorDesc":"Sai systemId"}"#;
        assert_eq!(
            axis_json(reqwest::StatusCode::OK, raw).unwrap_err(),
            "HTTP 200 OK, axis error \"E42\": Sai systemId"
        );
    }
}
