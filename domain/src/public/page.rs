//! The lookup page (`GET /public/`): one self-contained HTML page in Vietnamese, rendered on the server
//! (no script, nothing fetched from elsewhere), so it works on any phone and under a strict
//! `Content-Security-Policy`.

use super::PublicDossier;
use axum::response::Html;
use lienthong_bus::ui::esc;

pub(super) const NOT_FOUND: &str =
    "Không tìm thấy hồ sơ có mã này. Vui lòng kiểm tra lại mã hồ sơ ghi trên giấy tiếp nhận.";
pub(super) const UNAVAILABLE: &str =
    "Hệ thống tạm thời không tra cứu được. Vui lòng thử lại sau ít phút.";

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:0;\
background:#f4f6f8;color:#1c2833}main{max-width:46rem;margin:0 auto;padding:1.5rem 1rem}\
h1{font-size:1.4rem;color:#8b1a1a}form{display:flex;gap:.5rem;flex-wrap:wrap;margin:1rem 0}\
label{width:100%;font-weight:600}input{flex:1;min-width:14rem;padding:.6rem;font-size:1rem;\
border:1px solid #aab;border-radius:4px}button{padding:.6rem 1.2rem;font-size:1rem;background:#8b1a1a;\
color:#fff;border:0;border-radius:4px;cursor:pointer}section{background:#fff;border-radius:6px;\
padding:1rem 1.2rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}dl{display:grid;grid-template-columns:max-content 1fr;\
gap:.4rem 1rem}dt{font-weight:600}dd{margin:0}table{width:100%;border-collapse:collapse;margin-top:.5rem}\
th,td{text-align:left;padding:.4rem;border-bottom:1px solid #dde}.state{font-weight:700}\
.on_time,.finished_on_time{color:#1e7b34}.due_soon{color:#a05a00}.overdue,.finished_late{color:#b00020}\
.error{color:#b00020;font-weight:600}.note{font-size:.85rem;color:#566}";

/// `yyyyMMddHHmmss` as Vietnamese readers write it: `17:00 ngày 10/12/2026`.
fn date_vi(d: &str) -> String {
    if d.len() != 14 || !d.is_ascii() {
        return esc(d);
    }
    format!(
        "{}:{} ngày {}/{}/{}",
        &d[8..10],
        &d[10..12],
        &d[6..8],
        &d[4..6],
        &d[0..4]
    )
}

fn dossier(d: &PublicDossier) -> String {
    let mut steps = String::new();
    for s in &d.steps {
        steps.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            date_vi(&s.date),
            esc(&s.agency),
            esc(s.status_name)
        ));
    }
    format!(
        "<section><h2>Hồ sơ {code}</h2><dl>\
         <dt>Thủ tục</dt><dd>{procedure}</dd>\
         <dt>Trạng thái</dt><dd>{status}</dd>\
         <dt>Ngày hẹn trả kết quả</dt><dd>{due}</dd>\
         <dt>Tình hình giải quyết</dt><dd class=\"state {state}\">{state_name}</dd></dl>\
         <h3>Quá trình xử lý</h3><table><thead><tr><th>Thời gian</th><th>Cơ quan</th><th>Trạng thái</th></tr>\
         </thead><tbody>{steps}</tbody></table></section>",
        code = esc(&d.code),
        procedure = esc(d.procedure.as_deref().unwrap_or("—")),
        status = esc(d.status_name.unwrap_or("—")),
        due = d
            .appointment_date
            .as_deref()
            .map(date_vi)
            .unwrap_or("—".into()),
        state = d.state.as_str(),
        state_name = esc(d.state_name),
    )
}

/// The page: the form (holding `code`), and below it the dossier found or a message.
pub(super) fn render(code: &str, result: Option<Result<&PublicDossier, &str>>) -> Html<String> {
    let below = match result {
        None => String::new(),
        Some(Ok(d)) => dossier(d),
        Some(Err(msg)) => format!("<p class=\"error\" role=\"alert\">{}</p>", esc(msg)),
    };
    Html(format!(
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Tra cứu tình trạng hồ sơ</title><style>{STYLE}</style></head><body><main>\
         <h1>Tra cứu tình trạng hồ sơ thủ tục hành chính</h1>\
         <form method=\"get\" action=\"/public/\"><label for=\"code\">Mã hồ sơ (ghi trên giấy tiếp nhận)</label>\
         <input id=\"code\" name=\"code\" value=\"{code}\" maxlength=\"50\" required \
         placeholder=\"000.00.12.H40-261127-00001\" autocomplete=\"off\">\
         <button type=\"submit\">Tra cứu</button></form>{below}\
         <p class=\"note\">Trang này chỉ cho biết hồ sơ đang ở đâu và có đúng hạn hay không; \
         không hiển thị thông tin cá nhân của người nộp.</p></main></body></html>",
        code = esc(code),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_shown_is_escaped() {
        let page = render("<script>alert(1)</script>\"", Some(Err("x & y"))).0;
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;"));
        assert!(page.contains("x &amp; y"));
        assert_eq!(date_vi("20261210170000"), "17:00 ngày 10/12/2026");
    }
}
