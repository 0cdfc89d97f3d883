//! `GET /health` (JSON: overall status, version, each server's state and uptime) and
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
    let mut healthy = true;
    for s in gw.servers() {
        if s.config().isolation.session().is_some() {
            // No shared instance to report: each session has its own, started on demand.
            let entry = json!({ "status": "per-session", "instances": gw.instance_count(s.id()) });
            servers.insert(s.id().to_string(), entry);
            continue;
        }
        let st = s.state();
        let status = st.kind.as_str();
        healthy &= st.kind == StateKind::Ready;
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
    json!({
        "status": if gw.lifecycle.is_closing() { "closing" } else if healthy { "healthy" } else { "unhealthy" },
        "gatewayVersion": env!("CARGO_PKG_VERSION"),
        "uptime": gw.started.elapsed().as_secs(),
        "sessions": gw.sessions.len(),
        "servers": servers,
        "virtualServers": virtuals,
    })
}

/// Always 200: the status is in the body, so a monitor can read why it is unhealthy.
pub async fn health(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    match admit(&gw, &headers) {
        Ok(()) => Json(report(&gw)).into_response(),
        Err(r) => r.into_response(),
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
