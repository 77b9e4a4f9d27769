//! How every console page is written: values escaped, labels in the operator's language, one layout, one
//! small stylesheet served by the binary, and the headers (Content-Security-Policy among them) on every page.
//!
//! Why escaping is the rule and not the exception: payload text, reasons and ids shown here come from agencies'
//! systems, which the bus does not control. Every value goes through [`esc`]; only markup written in this
//! crate (or the plugin's) is put in as it is.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;

/// `&`, `<`, `>`, `"` and `'` escaped: safe in HTML text and in quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A query-string value percent-encoded (for links built from values).
pub fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The console's language: Vietnamese unless the operator chose English (`?lang=en`, kept in a cookie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    /// `vi` or `en` as the operator reads it.
    pub fn t<'a>(self, vi: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }
}

/// A link in the console's navigation bar.
#[derive(Debug, Clone)]
pub struct NavLink {
    /// Path under the admin listener (`/ui/overview`).
    pub path: &'static str,
    pub vi: &'static str,
    pub en: &'static str,
}

/// The Content-Security-Policy of every console page: nothing but this origin's stylesheet, no script at
/// all, forms only to this origin, never framed.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// The stylesheet (`/ui/assets/app.css`).
pub const CSS: &str = include_str!("app.css");

/// A whole page: the layout around `body` (markup), with the navigation when an operator is logged in.
pub struct Page<'a> {
    pub lang: Lang,
    pub title: &'a str,
    /// Logged-in operator's name and CSRF token (for the log-out form); none on the login page.
    pub operator: Option<(&'a str, &'a str)>,
    pub nav: &'a [NavLink],
    /// The path being shown (its link is marked current; the language switch links back to it).
    pub path: &'a str,
    /// The query it was asked with, `lang` left out (kept by the language switch); empty when none.
    pub query: &'a str,
    /// Seconds after which the browser reloads the page (the overview), if any.
    pub refresh: Option<u32>,
    pub body: String,
}

impl Page<'_> {
    pub fn render(&self) -> String {
        let l = self.lang;
        let mut h = String::with_capacity(self.body.len() + 2048);
        let _ = write!(
            h,
            "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
            l.code()
        );
        if let Some(s) = self.refresh {
            let _ = write!(h, "<meta http-equiv=\"refresh\" content=\"{s}\">");
        }
        let _ = write!(
            h,
            "<title>{} · Liên Thông</title><link rel=\"stylesheet\" href=\"/ui/assets/app.css\"></head><body>\
             <header><span class=\"brand\">Liên Thông</span>",
            esc(self.title)
        );
        if let Some((name, csrf)) = self.operator {
            h.push_str("<nav>");
            for n in self.nav {
                let current = self.path == n.path || self.path.starts_with(&format!("{}/", n.path));
                let _ = write!(
                    h,
                    "<a href=\"{}\"{}>{}</a>",
                    n.path,
                    if current { " class=\"current\"" } else { "" },
                    esc(l.t(n.vi, n.en))
                );
            }
            let _ = write!(
                h,
                "</nav><span class=\"who\" id=\"operator\">{}</span>\
                 <form method=\"post\" action=\"/ui/logout\" class=\"inline\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <button type=\"submit\">{}</button></form>",
                esc(name),
                esc(csrf),
                l.t("Đăng xuất", "Log out")
            );
        }
        let other = match l {
            Lang::Vi => ("en", "English"),
            Lang::En => ("vi", "Tiếng Việt"),
        };
        let _ = write!(
            h,
            "<a class=\"lang\" href=\"{}?{}lang={}\">{}</a></header><main><h1>{}</h1>{}</main></body></html>",
            esc(self.path),
            esc(&if self.query.is_empty() {
                String::new()
            } else {
                format!("{}&", self.query)
            }),
            other.0,
            other.1,
            esc(self.title),
            self.body
        );
        h
    }

    /// The page as a response with the console's headers.
    pub fn response(&self, status: StatusCode) -> Response {
        html_response(status, self.render())
    }
}

/// An HTML answer with the console's security headers.
pub fn html_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    r
}

/// Content-Security-Policy, no sniffing, no framing, no caching of operator pages, no referrer.
pub fn secure_headers(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// A table: header cells and rows of cell markup (already escaped by the caller).
pub fn table(id: &str, heads: &[&str], rows: &[Vec<String>]) -> String {
    let mut h = format!("<table id=\"{}\"><thead><tr>", esc(id));
    for c in heads {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr></thead><tbody>");
    for r in rows {
        h.push_str("<tr>");
        for c in r {
            let _ = write!(h, "<td>{c}</td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
    h
}

/// A form's hidden CSRF field.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_cannot_become_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(url("a b/ç&x=1"), "a%20b%2F%C3%A7%26x%3D1");
    }
}
