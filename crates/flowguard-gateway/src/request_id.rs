//! Request ids (ROADMAP H5): a client's sane `X-Request-ID` is kept, anything else gets a new
//! one; it is echoed in the reply, and logs and audit records of the request carry it.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: Arc<str>;
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

/// Runs `f` as the request `id`.
pub async fn scope<F: std::future::Future>(id: Arc<str>, f: F) -> F::Output {
    CURRENT.scope(id, f).await
}

/// The id of the request being served on this task, if any.
pub fn current() -> Option<Arc<str>> {
    CURRENT.try_with(|id| id.clone()).ok()
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
