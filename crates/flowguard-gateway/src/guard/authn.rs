//! Authentication at the edge: API keys, JWTs (keys fetched here, verified by
//! `flowguard-guard`), and self-asserted agent ids. A verified token is kept by its digest
//! until it expires, so a client's next request costs a hash and a lookup.

use super::Guard;
use crate::identity;
use axum::http::HeaderMap;
use flowguard_guard::jwks::KeySet;
use flowguard_guard::jwt::{self, Expect, JwtError};
use flowguard_guard::principal::claim_strings;
use flowguard_guard::setup::JwtSetup;
use flowguard_guard::{apikey, AuthMethod, Principal};
use ring::digest::{digest, SHA256};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// Why a request was not authenticated. Messages are safe to show: they never hold the
/// credential.
#[derive(Debug, Clone)]
pub enum AuthError {
    /// No credential, and one is required.
    Missing,
    /// A credential was presented and is not valid.
    Invalid(String),
    /// Authenticated, but the token lacks scopes every request needs.
    Scope(Vec<String>),
}

impl AuthError {
    pub fn message(&self) -> String {
        match self {
            AuthError::Missing => "Unauthorized: this gateway requires credentials (an API key in X-API-Key, or Authorization: Bearer <token>)".into(),
            AuthError::Invalid(why) => format!("Unauthorized: {why}"),
            AuthError::Scope(s) => format!("Forbidden: the token lacks the scope(s) {}", s.join(" ")),
        }
    }
}

/// A JWT issuer's keys, fetched on demand.
pub(super) struct Keys {
    setup: JwtSetup,
    set: RwLock<(Arc<KeySet>, Option<Instant>)>,
    last_try: Mutex<Option<Instant>>,
    refresh: tokio::sync::Mutex<()>,
}

/// An unknown `kid` refetches the key set at most this often.
const REFETCH_DEBOUNCE: Duration = Duration::from_secs(10);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

impl Keys {
    pub fn new(setup: JwtSetup) -> Self {
        let initial = setup.static_keys.clone().unwrap_or_default();
        Keys {
            setup,
            set: RwLock::new((initial, None)),
            last_try: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn fetched(&self) -> bool {
        self.setup.static_keys.is_none()
    }

    fn current(&self) -> (Arc<KeySet>, bool) {
        let g = self.set.read().unwrap_or_else(|e| e.into_inner());
        let stale = self.fetched()
            && g.1
                .is_none_or(|t| t.elapsed() > Duration::from_secs(self.setup.cache_secs));
        (g.0.clone(), stale)
    }

    /// Fetches the key set again: one fetch at a time, at most one attempt every 10 s.
    async fn refresh(&self) {
        if !self.fetched() {
            return;
        }
        let _one = self.refresh.lock().await;
        {
            let mut last = self.last_try.lock().unwrap_or_else(|e| e.into_inner());
            // Every attempt is spaced, scheduled or not: an issuer that is down is not asked
            // again for each token that arrives meanwhile.
            if last.is_some_and(|t| t.elapsed() < REFETCH_DEBOUNCE) {
                return;
            }
            *last = Some(Instant::now());
        }
        match self.fetch().await {
            Ok(set) => {
                *self.set.write().unwrap_or_else(|e| e.into_inner()) = (Arc::new(set), Some(Instant::now()));
            }
            Err(e) => tracing::warn!("auth: the token signing keys could not be fetched: {e}; the keys fetched before stay in use"),
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let url = match &self.setup.jwks_url {
            Some(u) => u.clone(),
            None => self.discover().await?,
        };
        let body = flowguard_upstream::fetch(&url, 1 << 20, FETCH_TIMEOUT).await?;
        let (set, skipped) = KeySet::from_jwks(&body).map_err(|e| format!("{url}: {e}"))?;
        for s in skipped {
            tracing::warn!("auth: a key of {url} is not used: {s}");
        }
        tracing::info!(
            keys = set.len(),
            "auth: token signing keys fetched from {url}"
        );
        Ok(set)
    }

    /// The issuer's `jwks_uri`, from its OpenID or OAuth discovery document.
    async fn discover(&self) -> Result<String, String> {
        let issuer = self
            .setup
            .issuer
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/');
        let mut errors = Vec::new();
        for path in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ] {
            let url = format!("{issuer}{path}");
            match flowguard_upstream::fetch(&url, 1 << 20, FETCH_TIMEOUT).await {
                Ok(body) => {
                    let doc: serde_json::Value = serde_json::from_slice(&body)
                        .map_err(|e| format!("{url}: not JSON: {e}"))?;
                    return doc
                        .get("jwks_uri")
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                        .ok_or_else(|| format!("{url} names no jwks_uri"));
                }
                Err(e) => errors.push(e),
            }
        }
        Err(errors.join("; "))
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

static API_KEY: axum::http::HeaderName = axum::http::HeaderName::from_static("x-api-key");

/// A header's text, trimmed; `None` when absent or empty.
fn header(headers: &HeaderMap, name: impl axum::http::header::AsHeaderName) -> Option<&str> {
    crate::downstream::http::header(headers, name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = header(headers, &axum::http::header::AUTHORIZATION)?;
    let scheme = v.get(..7)?;
    let token = v[7..].trim();
    (scheme.eq_ignore_ascii_case("bearer ") && !token.is_empty()).then_some(token)
}

/// The principal of each API-key client, made once.
pub(super) fn key_principals(setup: &flowguard_guard::setup::Setup) -> Vec<Arc<Principal>> {
    setup
        .auth
        .api_keys
        .iter()
        .map(|c| {
            let mut p = Principal {
                method: AuthMethod::ApiKey,
                subject: Some(c.name.clone()),
                client: Some(c.name.clone()),
                ..Principal::anonymous()
            };
            p.set_roles(c.roles.clone());
            Arc::new(p)
        })
        .collect()
}

impl Guard {
    /// Who sent a request. With nothing configured, the agent id a client sends is recorded as
    /// self-asserted (seed 000), as before authentication existed.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Principal>, AuthError> {
        let a = &self.setup.auth;
        if let Some(key) = header(headers, &API_KEY) {
            if !a.api_keys.is_empty() {
                return self
                    .api_key(key)
                    .ok_or_else(|| AuthError::Invalid("the API key is not valid".into()));
            }
        }
        if let Some(token) = bearer(headers) {
            if self.keys.is_some() && token.bytes().filter(|&b| b == b'.').count() == 2 {
                return self.token(token).await;
            }
            if !a.api_keys.is_empty() {
                if let Some(p) = self.api_key(token) {
                    return Ok(p);
                }
            }
            // A bearer value that is no valid credential is refused, unless agent ids are
            // configured beside optional authentication (seed 000 sends the agent id there).
            if a.verifies() && (a.required || a.agent_id.is_none()) {
                return Err(AuthError::Invalid(
                    "the bearer token is not a valid token or API key".into(),
                ));
            }
        }
        if a.agent_id.is_some() || !a.verifies() {
            match identity::agent_from_headers(headers) {
                Some(id) => {
                    if let Some(Some(allowed)) = &a.agent_id {
                        if !allowed.iter().any(|a| apikey::same(a, &id)) {
                            return Err(AuthError::Invalid(
                                "this agent id is not in auth.agent_id.allowed".into(),
                            ));
                        }
                    }
                    // An asserted id satisfies `required` only where nothing is verified.
                    if !(a.required && a.verifies()) {
                        return Ok(Arc::new(Principal::agent(&id)));
                    }
                }
                // A list of allowed agent ids admits no one without an id.
                None if matches!(a.agent_id, Some(Some(_))) => return Err(AuthError::Missing),
                None => {}
            }
        }
        if a.required {
            return Err(AuthError::Missing);
        }
        Ok(anonymous())
    }

    fn api_key(&self, key: &str) -> Option<Arc<Principal>> {
        let i = apikey::find(key, &self.setup.auth.key_digests)?;
        self.key_principals.get(i).cloned()
    }

    async fn token(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        let keys = self.keys.as_ref().expect("checked by the caller");
        let now = now_secs();
        let fresh = |p: &Principal| {
            p.expires_at
                .is_none_or(|e| e + keys.setup.leeway_secs > now)
        };
        if let Some(p) = recent::find(self.id, token).filter(|p| fresh(p)) {
            return Ok(p);
        }
        let d = digest(&SHA256, token.as_bytes());
        let mut k = [0u8; 32];
        k.copy_from_slice(d.as_ref());
        let cached = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&k)
            .filter(|p| fresh(p))
            .cloned();
        if let Some(p) = cached {
            recent::keep(self.id, token, &p);
            return Ok(p);
        }
        let kid = jwt::header_kid(token).map_err(|e| invalid(&e))?;
        let (mut set, stale) = keys.current();
        let unknown = kid.as_deref().is_some_and(|k| !set.has_kid(k)) || set.is_empty();
        if stale || unknown {
            keys.refresh().await;
            set = keys.current().0;
        }
        let s = &keys.setup;
        let expect = Expect {
            issuer: s.issuer.clone(),
            audiences: s.audiences.clone(),
            algorithms: s.algorithms.clone(),
            leeway_secs: s.leeway_secs,
            require_exp: true,
        };
        let verified = jwt::verify(token, &set, &expect, now).map_err(|e| invalid(&e))?;
        let a = &self.setup.auth;
        let claims = verified.claims;
        let subject = claims
            .get(&a.identity_claim)
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                AuthError::Invalid(format!(
                    "the token has no {:?} claim (auth.identity_claim)",
                    a.identity_claim
                ))
            })?
            .to_string();
        let mut p = Principal {
            method: AuthMethod::Jwt,
            subject: Some(Arc::from(subject.as_str())),
            client: claims
                .get("client_id")
                .or_else(|| claims.get("azp"))
                .and_then(|v| v.as_str())
                .map(Arc::from),
            expires_at: verified.expires_at,
            ..Principal::anonymous()
        };
        p.scopes = match claims.get("scope").or_else(|| claims.get("scp")) {
            Some(serde_json::Value::String(s)) => s.split_whitespace().map(Arc::from).collect(),
            Some(v) => claim_strings(v)
                .into_iter()
                .map(|s| Arc::from(s.as_str()))
                .collect(),
            None => Vec::new(),
        };
        p.claims = Some(Arc::new(claims));
        let mut roles: Vec<Arc<str>> = p
            .claim(&a.roles_claim)
            .map(claim_strings)
            .unwrap_or_default()
            .into_iter()
            .map(|s| Arc::from(s.as_str()))
            .collect();
        roles.extend(self.setup.roles.roles_for_claims(&p));
        p.set_roles(roles);
        if let Some(o) = &self.setup.auth.oauth {
            let missing: Vec<String> = o
                .scopes
                .iter()
                .filter(|s| !p.scopes.iter().any(|h| **h == ***s))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(AuthError::Scope(missing));
            }
        }
        let mut cache = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= 10_000 {
            cache.retain(|_, p| p.expires_at.is_some_and(|e| e > now));
            if cache.len() >= 10_000 {
                cache.clear();
            }
        }
        let p = Arc::new(p);
        cache.insert(k, p.clone());
        drop(cache);
        recent::keep(self.id, token, &p);
        Ok(p)
    }
}

/// The last few tokens each serving thread verified, by their text: a client's next request
/// on the same thread is compared (in constant time) instead of hashed and looked up under a
/// lock the threads share. Entries belong to one guard: a reloaded configuration starts afresh.
/// The text stays in memory no longer than the thread serves, at most four tokens per thread.
mod recent {
    use flowguard_guard::{apikey, Principal};
    use std::cell::RefCell;
    use std::sync::Arc;

    const SLOTS: usize = 4;

    struct Entry {
        guard: u64,
        token: Box<str>,
        who: Arc<Principal>,
    }

    thread_local! {
        static RECENT: RefCell<(Vec<Entry>, usize)> = const { RefCell::new((Vec::new(), 0)) };
    }

    pub(super) fn find(guard: u64, token: &str) -> Option<Arc<Principal>> {
        RECENT.with_borrow(|(entries, _)| {
            entries
                .iter()
                .find(|e| e.guard == guard && apikey::same(&e.token, token))
                .map(|e| e.who.clone())
        })
    }

    pub(super) fn keep(guard: u64, token: &str, who: &Arc<Principal>) {
        RECENT.with_borrow_mut(|(entries, next)| {
            let e = Entry {
                guard,
                token: token.into(),
                who: who.clone(),
            };
            if let Some(old) = entries
                .iter_mut()
                .find(|e| e.guard == guard && apikey::same(&e.token, token))
            {
                *old = e;
            } else if entries.len() < SLOTS {
                entries.push(e);
            } else {
                entries[*next % SLOTS] = e;
                *next = next.wrapping_add(1);
            }
        })
    }
}

/// The one anonymous principal (no allocation per request).
fn anonymous() -> Arc<Principal> {
    static ANON: std::sync::OnceLock<Arc<Principal>> = std::sync::OnceLock::new();
    ANON.get_or_init(|| Arc::new(Principal::anonymous()))
        .clone()
}

fn invalid(e: &JwtError) -> AuthError {
    tracing::info!(reason = e.code(), "auth: a token was refused");
    AuthError::Invalid(e.to_string())
}
