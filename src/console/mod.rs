//! The built-in web console, served by the HTTP listener (`crate::http`)
//! at `/`: one page (`assets/index.html`, `console.js`, `console.css`,
//! embedded in the binary; no build step, no CDN) that draws the broker's
//! overview, topics, messages and consumer groups from the JSON API under
//! `/api/` (`api.rs`, documented in `docs/console.md`).
//!
//! Safe by default: every `GET` is read-only; actions that change
//! anything (`POST /api/...`, `writes.rs`) answer 403 unless
//! `console.write.enabled=true`, and then need the per-process CSRF token
//! the page carries (`X-CSRF-Token`), a `Host` that is an IP address,
//! `localhost` or an advertised listener host (against DNS rebinding), and
//! an `Origin`, when sent, naming that host. The page's script writes every
//! value with `textContent`, and a Content-Security-Policy without
//! `'unsafe-inline'` keeps any markup in a record from running.

pub mod api;
pub mod writes;

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::broker::Broker;
use crate::http::{percent_decode, Request, Response};

const INDEX_HTML: &str = include_str!("assets/index.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");
/// Where the page's CSRF token goes in `index.html`.
const TOKEN_PLACEHOLDER: &str = "{{csrf_token}}";
/// Most path segments a console URL has.
const MAX_PATH_SEGMENTS: usize = 8;

const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The console's state: the broker, the addresses to show, the CSRF token.
pub struct Console {
    broker: Arc<Broker>,
    listeners: Vec<SocketAddr>,
    http_addr: Option<SocketAddr>,
    csrf_token: String,
}

impl Console {
    /// `listeners` are the Kafka listeners' bound addresses, in order.
    pub fn new(broker: Arc<Broker>, listeners: Vec<SocketAddr>, http_addr: Option<SocketAddr>) -> Console {
        let mut token = String::with_capacity(64);
        for b in crate::util::random_bytes().iter().chain(crate::util::random_bytes().iter()) {
            token.push_str(&format!("{b:02x}"));
        }
        Console { broker, listeners, http_addr, csrf_token: token }
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    pub fn listeners(&self) -> &[SocketAddr] {
        &self.listeners
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// `console.write.enabled`.
    pub fn write_enabled(&self) -> bool {
        self.broker.config().console_write_enabled
    }

    /// This process's CSRF token (what the page sends as `X-CSRF-Token`).
    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    /// Answers a request for anything but `/health` and `/metrics`.
    pub async fn handle(&self, req: &Request) -> Response {
        let segments: Vec<String> = req.path.split('/').skip(1).map(|s| percent_decode(s, false)).collect();
        if segments.len() > MAX_PATH_SEGMENTS {
            return Response::text(404, "not found\n");
        }
        let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
        let get = matches!(req.method.as_str(), "GET" | "HEAD");
        match (get, parts.as_slice()) {
            (true, [""]) => page(INDEX_HTML.replace(TOKEN_PLACEHOLDER, &self.csrf_token).into_bytes(), "text/html; charset=utf-8"),
            (true, ["assets", "console.js"]) => page(CONSOLE_JS.as_bytes().to_vec(), "text/javascript; charset=utf-8"),
            (true, ["assets", "console.css"]) => page(CONSOLE_CSS.as_bytes().to_vec(), "text/css; charset=utf-8"),
            (true, ["api", ..]) => json_response(api::get(self, &segments[1..], req).await),
            (false, ["api", ..]) if req.method == "POST" => json_response(match self.check_write(req) {
                Ok(()) => writes::post(self, &segments[1..], req).await,
                Err(e) => Err(e),
            }),
            (true, _) => Response::text(404, "not found\n"),
            (false, _) => Response::text(405, "method not allowed\n"),
        }
    }

    /// Whether a write may go ahead (see the module docs).
    fn check_write(&self, req: &Request) -> Result<(), api::ApiError> {
        let forbidden = |m: &str| Err(api::ApiError::new(403, "FORBIDDEN", m));
        if !self.write_enabled() {
            return forbidden("the console is read-only: set console.write.enabled=true to allow changes");
        }
        let Some(host) = req.header("host") else { return forbidden("no Host header") };
        if !self.is_allowed_host(host) {
            return forbidden("the Host header names neither an IP address, localhost nor an advertised listener host");
        }
        if let Some(origin) = req.header("origin") {
            if origin != format!("http://{host}") {
                return forbidden("the Origin does not match the Host");
            }
        }
        let token = req.header("x-csrf-token").unwrap_or("");
        use subtle::ConstantTimeEq as _;
        if !bool::from(token.as_bytes().ct_eq(self.csrf_token.as_bytes())) {
            return forbidden("missing or wrong CSRF token (X-CSRF-Token): reload the page");
        }
        Ok(())
    }

    /// `host[:port]` is an IP literal, `localhost` or an advertised host.
    fn is_allowed_host(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        name.parse::<std::net::IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || self.broker.settings().listeners.iter().any(|l| l.advertised_host.eq_ignore_ascii_case(name))
    }
}

/// A page or asset, with the console's security headers.
fn page(body: Vec<u8>, content_type: &'static str) -> Response {
    Response::new(200, content_type, body)
        .with_header("Content-Security-Policy", PAGE_POLICY)
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("X-Frame-Options", "DENY")
        .with_header("Referrer-Policy", "no-referrer")
        .with_header("Cache-Control", "no-store")
}

fn json_response(r: Result<Value, api::ApiError>) -> Response {
    let (status, body) = match r {
        Ok(v) => (200, v),
        Err(e) => (e.status, json!({ "error": e.error, "message": e.message })),
    };
    Response::new(status, "application/json", serde_json::to_vec(&body).unwrap_or_default())
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Cache-Control", "no-store")
}
