//! Webhook alerts on denials (ROADMAP H6): chosen by rule or severity, de-duplicated within a
//! window, Slack-compatible JSON, retried with backoff by `flowguard-export`'s thread; sending
//! never blocks a request.

use flowguard_export::{Alert, Alerter, Severity};
use flowguard_guard::{Stage, Verdict};
use std::sync::{Arc, RwLock};

pub struct Alerts {
    alerter: RwLock<Option<Alerter>>,
}

impl Alerts {
    pub fn start(s: &flowguard_config::AlertSettings) -> Arc<Alerts> {
        let mut c = flowguard_export::alert::Config::new(&s.webhook);
        c.min_severity = match s.min_severity {
            0 => Severity::Info,
            1 => Severity::Warning,
            _ => Severity::Critical,
        };
        c.rules = s.rules.clone();
        c.window = s.window;
        c.max_queue = s.queue;
        c.headers = s.headers.clone();
        let alerter = Alerter::start(c, Arc::new(flowguard_export::PlainHttp));
        Arc::new(Alerts {
            alerter: RwLock::new(Some(alerter)),
        })
    }

    /// An alert for a verdict that blocked (or would have, in audit mode): rate limits are
    /// `info`, authentication failures and policy denials `warning`.
    pub fn verdict(
        &self,
        v: &Verdict,
        server: Option<&str>,
        tool: Option<&str>,
        subject: Option<&str>,
    ) {
        let severity = match v.stage {
            Stage::RateLimit => Severity::Info,
            _ => Severity::Warning,
        };
        let title = match (server, tool) {
            (Some(s), Some(t)) => format!("{} denied {s}/{t}: {}", v.stage.as_str(), v.reason),
            _ => format!("{} denied a request: {}", v.stage.as_str(), v.reason),
        };
        let who = subject
            .map(crate::identity::loggable)
            .unwrap_or_else(|| "-".into());
        let mut a = Alert::new(v.rule.to_string(), severity, title)
            .field("stage", v.stage.as_str())
            .field("rule", v.rule.to_string())
            .field("subject", who.clone())
            .field(
                "enforced",
                if v.blocks() { "yes" } else { "no (audit mode)" },
            );
        if let Some(s) = server {
            a = a.field("server", s);
        }
        if let Some(t) = tool {
            a = a.field("tool", t);
        }
        if let Some(id) = crate::request_id::current() {
            a = a.field("request_id", id.to_string());
        }
        a.dedup_key = format!("{}\u{1}{}\u{1}{}", v.rule, server.unwrap_or(""), who);
        if let Some(al) = &*self.alerter.read().unwrap_or_else(|e| e.into_inner()) {
            al.send(a);
        }
    }

    pub fn stats(&self) -> Option<flowguard_export::alert::Stats> {
        self.alerter
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(Alerter::stats)
    }

    /// Sends what is queued (bounded), at shutdown.
    pub fn shutdown(&self) {
        let a = self
            .alerter
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(a) = a {
            let s = a.shutdown();
            if s.failed > 0 || s.dropped > 0 {
                tracing::warn!(
                    "alerts: {} sent, {} failed, {} dropped{}",
                    s.sent,
                    s.failed,
                    s.dropped,
                    s.last_error
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                );
            }
        }
    }
}
