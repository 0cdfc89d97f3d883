//! `GET /health` (JSON: overall status, version, each server's state and uptime), `GET /healthz`
//! (alive), `GET /readyz` (ready to serve: every shared server up, the audit writer running) and
//! `POST /close` (shutdown as the MCP Gateway Specification describes: 200 once, then 410).

use crate::downstream::http::admit;
use crate::gateway::Gateway;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flowguard_upstream::StateKind;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn report(gw: &Gateway) -> Value {
    let mut servers = serde_json::Map::new();
    let (mut shared, mut ready) = (0, 0);
    for s in gw.servers() {
        if s.config().isolation.session().is_some() {
            // No shared instance to report: each session has its own, started on demand.
            let entry = json!({ "status": "per-session", "instances": gw.instance_count(s.id()) });
            servers.insert(s.id().to_string(), entry);
            continue;
        }
        let st = s.state();
        let status = st.kind.as_str();
        shared += 1;
        ready += usize::from(st.kind == StateKind::Ready);
        let mut entry = json!({
            "status": status,
            "uptime": if st.kind == StateKind::Ready { st.since.elapsed().as_secs() } else { 0 },
            "restarts": st.restarts,
            "pending": s.pending_count(),
        });
        if st.failures > 0 {
            entry["failures"] = st.failures.into();
            // Failing at start again and again: calls fail at once, retries keep growing.
            entry["crashLoop"] = (st.failures > 1).into();
        }
        if let Some(detail) = st.detail {
            entry["error"] = detail.into();
        }
        if let Some((state, failures)) = gw.guard.breaker_state(s.id()) {
            entry["breaker"] = json!({ "state": state, "failures": failures });
        }
        servers.insert(s.id().to_string(), entry);
    }
    let virtuals: serde_json::Map<String, Value> = gw
        .virtual_servers()
        .iter()
        .map(|v| {
            let servers: Vec<&str> = v.servers.iter().map(|s| &**s).collect();
            (v.name.to_string(), json!({ "servers": servers }))
        })
        .collect();
    let status = if gw.lifecycle.is_closing() {
        "closing"
    } else if ready == shared {
        "healthy"
    } else if ready > 0 {
        "degraded"
    } else {
        "unhealthy"
    };
    let mut audit = Value::Null;
    if let Some(a) = gw.audit.get() {
        audit = json!({
            "running": a.running(),
            "written": a.written.load(std::sync::atomic::Ordering::Relaxed),
            "writeErrors": a.write_errors.load(std::sync::atomic::Ordering::Relaxed),
            "storeErrors": a.store_errors.load(std::sync::atomic::Ordering::Relaxed),
        });
    }
    let storage = gw
        .store
        .get()
        .map_or(Value::Null, |s| json!({ "at": s.describe() }));
    json!({
        "status": status,
        "gatewayVersion": env!("CARGO_PKG_VERSION"),
        "uptime": gw.started.elapsed().as_secs(),
        "sessions": gw.sessions.len(),
        "servers": servers,
        "virtualServers": virtuals,
        "audit": audit,
        "storage": storage,
    })
}

/// How long the deep check waits for a server's `ping`.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The deep check: each running shared server is sent a `ping` (at once, in parallel); its
/// answer time, or why there was none, goes in its entry, and a server that does not answer
/// counts as not running in the overall status.
async fn deep_check(gw: &Gateway, r: &mut Value) {
    let targets: Vec<_> = gw
        .servers()
        .iter()
        .filter(|s| s.config().isolation.session().is_none() && s.state().kind == StateKind::Ready)
        .collect();
    let pings = futures_util::future::join_all(targets.iter().map(|s| async move {
        let t = std::time::Instant::now();
        let res = tokio::time::timeout(PING_TIMEOUT, s.request("ping", None)).await;
        let answer = match res {
            Ok(Ok(_)) => Ok(t.elapsed().as_secs_f64() * 1000.0),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {PING_TIMEOUT:?}")),
        };
        (s.id().to_string(), answer)
    }))
    .await;
    let mut failed = 0;
    for (id, answer) in pings {
        let entry = &mut r["servers"][&id];
        match answer {
            Ok(ms) => entry["ping"] = json!({ "ms": (ms * 100.0).round() / 100.0 }),
            Err(e) => {
                failed += 1;
                entry["ping"] = json!({ "error": e });
            }
        }
    }
    if failed > 0 && (r["status"] == "healthy" || r["status"] == "degraded") {
        let count = |f: &dyn Fn(&Value) -> bool| {
            r["servers"]
                .as_object()
                .map_or(0, |m| m.values().filter(|e| f(e)).count())
        };
        let shared = count(&|e| e["status"] != "per-session");
        let working = count(&|e| e["status"] == "running") - failed;
        r["status"] = match working {
            0 => "unhealthy",
            n if n < shared => "degraded",
            _ => "healthy",
        }
        .into();
    }
}

/// 200 with the report, 503 when nothing works (no server is running or answers `ping`): the
/// status is in the body either way, so a monitor can read why.
pub async fn health(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if let Err(r) = admit(&gw, &headers) {
        return r.into_response();
    }
    let mut r = report(&gw);
    deep_check(&gw, &mut r).await;
    let code = if r["status"] == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(r)).into_response()
}

/// Alive: the process answers. For a liveness probe (restart me if this fails).
pub async fn healthz(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    match admit(&gw, &headers) {
        Ok(()) => Json(json!({ "status": "alive" })).into_response(),
        Err(r) => r.into_response(),
    }
}

/// Ready: not shutting down, every shared server running, and the audit writer (when on)
/// running. For a readiness probe (send me traffic); 503 names what is not ready.
pub async fn readyz(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if let Err(r) = admit(&gw, &headers) {
        return r.into_response();
    }
    let mut waiting = Vec::new();
    if gw.lifecycle.is_closing() {
        waiting.push(json!({ "gateway": "closing" }));
    }
    for s in gw.servers() {
        if s.config().isolation.session().is_some() {
            continue;
        }
        let st = s.state();
        if st.kind != StateKind::Ready {
            waiting.push(json!({ "server": s.id(), "status": st.kind.as_str() }));
        }
    }
    if gw.audit.get().is_some_and(|a| !a.running()) {
        waiting.push(json!({ "audit": "the writer has stopped" }));
    }
    if let Some(store) = gw.store.get() {
        if let Err(e) = storage_reachable(store.clone()).await {
            waiting.push(json!({ "storage": e }));
        }
    }
    if waiting.is_empty() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        let body = json!({ "status": "not-ready", "waiting": waiting });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

pub async fn close(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if let Err(r) = admit(&gw, &headers) {
        return r.into_response();
    }
    if gw.lifecycle.begin_shutdown() {
        tracing::info!("shutdown requested via POST /close");
        let body = json!({
            "status": "closed",
            "message": "Gateway shutdown initiated",
            "serversTerminated": gw.servers().len(),
        });
        (StatusCode::OK, Json(body)).into_response()
    } else {
        (
            StatusCode::GONE,
            Json(json!({ "error": "Gateway has already been closed" })),
        )
            .into_response()
    }
}

/// A round trip to storage, off the runtime's workers, 2 s at most.
async fn storage_reachable(store: Arc<flowguard_store::Store>) -> Result<(), String> {
    let ping = tokio::task::spawn_blocking(move || store.ping().map_err(|e| e.to_string()));
    match tokio::time::timeout(PING_TIMEOUT, ping).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err("the check failed".into()),
        Err(_) => Err("no answer within 2 s".into()),
    }
}

/// `/metrics`: Prometheus's text format (404 when `[metrics] enabled = false`, or when they are
/// served on their own address).
pub async fn metrics(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if let Err(r) = admit(&gw, &headers) {
        return r.into_response();
    }
    if !gw.metrics.enabled || gw.metrics_elsewhere {
        return StatusCode::NOT_FOUND.into_response();
    }
    metrics_reply(&gw)
}

pub fn metrics_reply(gw: &Gateway) -> Response {
    let body = gw.metrics.render(gw);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
