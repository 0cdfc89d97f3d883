//! Request ids (ROADMAP H5): a client's sane `X-Request-ID` is kept, anything else gets a new
//! one; it is echoed in the reply, and logs and audit records of the request carry it.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: Request;
}

/// The request being served: its id, and the labels its `X-FlowGuard-Label-<name>` headers
/// gave (for the audit).
struct Request {
    id: Arc<str>,
    labels: Option<Labels>,
}

/// (name, value) pairs: names lower-case, at most [`MAX_LABELS`].
pub type Labels = Arc<[(Box<str>, Box<str>)]>;

pub const LABEL_PREFIX: &str = "x-flowguard-label-";
const MAX_LABELS: usize = 16;
const MAX_LABEL_VALUE: usize = 128;

/// The `X-FlowGuard-Label-<name>` headers (mcpgw's idea): names of letters, digits, `-`, `_`,
/// `.` up to 64 characters, values cut at 128 characters; at most 16. `None` without any.
pub fn labels_from_headers(headers: &HeaderMap) -> Option<Labels> {
    let mut out: Vec<(Box<str>, Box<str>)> = Vec::new();
    for (name, value) in headers {
        let Some(label) = name.as_str().strip_prefix(LABEL_PREFIX) else {
            continue;
        };
        let sane = (1..=64).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        let Ok(v) = value.to_str() else { continue };
        if !sane || out.len() >= MAX_LABELS || out.iter().any(|(n, _)| &**n == label) {
            continue;
        }
        let v: String = v.chars().take(MAX_LABEL_VALUE).collect();
        out.push((label.into(), v.into()));
    }
    (!out.is_empty()).then(|| out.into())
}

/// The client's id when it is 1 to 128 characters of letters, digits and `.`, `_`, `-`, `:`;
/// otherwise a new one (a per-process random prefix and a counter: unique, no syscall).
pub fn from_headers(headers: &HeaderMap) -> Arc<str> {
    if let Some(v) = headers.get(&HEADER).and_then(|v| v.to_str().ok()) {
        let sane = (1..=128).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b));
        if sane {
            return Arc::from(v);
        }
    }
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(std::process::id())
    });
    Arc::from(format!(
        "fg-{:08x}{:08x}",
        prefix & 0xffff_ffff,
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Runs `f` as the request `id`, with its header labels.
pub async fn scope<F: std::future::Future>(
    id: Arc<str>,
    labels: Option<Labels>,
    f: F,
) -> F::Output {
    CURRENT.scope(Request { id, labels }, f).await
}

/// The id of the request being served on this task, if any.
pub fn current() -> Option<Arc<str>> {
    CURRENT.try_with(|r| r.id.clone()).ok()
}

/// The header labels of the request being served on this task, if any.
pub fn labels() -> Option<Labels> {
    CURRENT.try_with(|r| r.labels.clone()).ok().flatten()
}

/// Puts the id on a reply.
pub fn echo(headers: &mut HeaderMap, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        headers.insert(&HEADER, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_and_others_replaced() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(&HEADER, HeaderValue::from_str(v).unwrap());
            from_headers(&h)
        };
        assert_eq!(&*with("abc-123_x.y:z"), "abc-123_x.y:z");
        assert!(with("has space").starts_with("fg-"));
        assert!(with(&"a".repeat(129)).starts_with("fg-"));
        let (a, b) = (
            from_headers(&HeaderMap::new()),
            from_headers(&HeaderMap::new()),
        );
        assert_ne!(a, b);
        assert_eq!(a.len(), 19);
    }
}
