//! The pages' common frame: a menu, whether Redis answers, the live events
//! list fed by `GET /events`, and the page's own content.

use std::fmt::Write;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// `text` with `& < > " '` escaped, for HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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

/// A whole page: `title` (plain text) and `body` (HTML, escaped by the caller).
pub fn page(title: &str, redis_up: bool, body: &str) -> Html<String> {
    let mut out = String::with_capacity(body.len() + 1500);
    let (class, redis) = if redis_up {
        ("up", "Redis: up")
    } else {
        (
            "down",
            "Redis: down (sessions and the queue are unavailable; computations run uncached)",
        )
    };
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} · seed-app</title>
<style>
body {{ font-family: sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }}
nav a {{ margin-right: 1rem; }}
#redis.up {{ color: #176117; }} #redis.down {{ color: #a11; font-weight: bold; }}
#events {{ font-family: monospace; }}
</style>
</head>
<body>
<nav><a href="/">Home</a><a href="/compute/7">Compute</a><a href="/tasks">Tasks</a><a href="/logout">Log out</a></nav>
<p id="redis" class="{class}">{redis}</p>
<main>
<h1>{title}</h1>
{body}
</main>
<section>
<h2>Live events</h2>
<ul id="events"></ul>
</section>
<script>
// One stream per page shown. Closed when the page is left: a browser keeps
// left pages alive for its back button, and their streams would hold its
// few connections to this server until new requests wait for one.
let events;
function listen() {{
  events = new EventSource("/events");
  events.onmessage = (event) => {{
    const item = document.createElement("li");
    item.textContent = event.data;
    document.getElementById("events").prepend(item);
  }};
}}
listen();
addEventListener("pagehide", () => events.close());
addEventListener("pageshow", (event) => {{ if (event.persisted) listen(); }});
</script>
</body>
</html>
"#,
        title = escape(title),
    );
    Html(out)
}

/// A page that says Redis is needed for what was asked, with 503.
pub fn unavailable(what: &str, redis_up: bool) -> Response {
    let body = format!(
        r#"<p id="unavailable">{} unavailable: Redis does not answer. Try again in a moment.</p>"#,
        escape(what)
    );
    (StatusCode::SERVICE_UNAVAILABLE, page(what, redis_up, &body)).into_response()
}
