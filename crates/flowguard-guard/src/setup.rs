//! The guard's configuration: the raw sections a config file holds (`auth`, `policy`,
//! `roles`, `role_mappings`, `limits`, and each server's mcpx-style `policy`), and the compiled
//! form the gateway runs. Files named in the config are read through the caller's function,
//! so this crate stays free of I/O.

use crate::apikey;
use crate::jwks::{Alg, KeySet};
use crate::policy::mcpx::{RawServerPolicy, ServerPolicies};
use crate::policy::native::{err, PolicyError, RawRules};
use crate::policy::roles::{RawRole, RawRoleMapping, Roles};
use crate::policy::{mcpgw, mcpx, roles, RuleSet};
use crate::policy::{Args, Request};
use crate::{Decision, Principal, Stage, Verdict};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Who may call (`[auth]`). With no method configured nobody is authenticated, and the agent
/// id a client sends is recorded as self-asserted.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Whether a request without valid credentials is refused (401). Default: true when any
    /// of `api_keys`, `jwt` or `oauth` is configured.
    pub required: Option<bool>,
    /// Seed 000's agent id (`X-Agent-ID`, `Authorization: Bearer <id>` or a raw value),
    /// self-asserted. `allowed` limits it to a list.
    pub agent_id: Option<RawAgentId>,
    /// Named clients, each with the SHA-256 digest of its key (`flowguard auth hash-key`).
    pub api_keys: Option<Vec<RawApiKey>>,
    /// JSON Web Tokens from a key, a key file, a JWKS URL or an issuer's discovery document.
    pub jwt: Option<RawJwt>,
    /// OAuth 2.1 resource server (MCP authorization): tokens from the authorization servers,
    /// whose audience must be `resource`; RFC 9728 metadata and 401/403 challenges.
    pub oauth: Option<RawOAuth>,
    /// The claim that names the subject. Default `sub`.
    pub identity_claim: Option<String>,
    /// The claim holding roles (a string or an array, dotted path allowed). Default `roles`.
    pub roles_claim: Option<String>,
    /// The identity of a stdio front end (`flowguard stdio`, `wrap`), which has no headers.
    /// Default: the `--subject` flag, else anonymous.
    pub stdio_subject: Option<String>,
    /// Roles of the stdio subject.
    pub stdio_roles: Option<Vec<String>>,
    /// Allow listening on a non-loopback address with no authentication. Default false.
    pub allow_unauthenticated: Option<bool>,
}

/// Self-asserted agent ids.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAgentId {
    /// The only agent ids accepted; absent means any.
    pub allowed: Option<Vec<String>>,
}

/// One API-key client.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    /// The client's name: the subject of its requests.
    pub name: String,
    /// `sha256:<64 hex>` of the key. The key itself is never stored.
    pub digest: String,
    /// The client's roles.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// JWT verification.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    /// Required `iss`; with no key source given, its OIDC discovery document names the JWKS.
    pub issuer: Option<String>,
    /// Accepted audiences (`aud` must hold one). Required unless `allow_any_audience`.
    pub audience: Option<Vec<String>>,
    /// Do not check the audience (tokens meant for other services are then accepted too).
    pub allow_any_audience: Option<bool>,
    /// URL of a JWKS.
    pub jwks_url: Option<String>,
    /// An HMAC secret (HS256/384/512) or a PEM public key, inline.
    pub key: Option<String>,
    /// A file holding an HMAC secret or a PEM public key.
    pub key_file: Option<String>,
    /// Accepted algorithms. Default: any that fits the key.
    pub algorithms: Option<Vec<String>>,
    /// Clock leeway for `exp` and `nbf`, e.g. `30s`. Default 30s.
    pub leeway: Option<String>,
    /// How long a fetched JWKS is used before it is fetched again. Default 15m.
    pub jwks_cache: Option<String>,
}

/// OAuth 2.1 resource server.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth {
    /// The gateway's canonical resource URI, e.g. `https://gw.example.com/mcp`: the required
    /// token audience, and the `resource` of the metadata.
    pub resource: String,
    /// Issuers of accepted tokens; the first one's discovery document names the JWKS.
    pub authorization_servers: Vec<String>,
    /// Scopes every request needs (named in the 401 challenge). Default none.
    pub scopes: Option<Vec<String>>,
    /// Scopes advertised in the metadata. Default: `scopes`.
    pub scopes_supported: Option<Vec<String>>,
    /// URL of the JWKS, instead of discovery.
    pub jwks_url: Option<String>,
    /// Accepted algorithms. Default: any that fits the key.
    pub algorithms: Option<Vec<String>>,
    /// Clock leeway for `exp` and `nbf`. Default 30s.
    pub leeway: Option<String>,
    /// How long a fetched JWKS is used. Default 15m.
    pub jwks_cache: Option<String>,
}

/// Rate and size limits (`[limits]`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Token-bucket limits on requests, each global, per client, per tool or per client and tool.
    pub rate: Option<Vec<RawRate>>,
    /// Most `tools/call` requests one session may make. Default unlimited.
    pub calls_per_session: Option<u64>,
    /// Largest request body in bytes; a bigger one gets 413. Default 2097152 (2 MiB).
    pub max_request_bytes: Option<usize>,
    /// Largest reply a server may send, in bytes; a bigger one is replaced by an error for the
    /// client. Default: no cap beyond `gateway.max_line_bytes` for stdio servers.
    pub max_reply_bytes: Option<usize>,
    /// A circuit breaker for each server: after `failures` failed requests in a row it fails
    /// fast for `cooldown`, then lets `probes` requests through. Default: off.
    pub breaker: Option<RawBreaker>,
    /// Per-server limits, by server id.
    pub servers: Option<BTreeMap<String, RawServerLimits>>,
}

/// The circuit breaker (`[limits.breaker]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    /// Failed requests in a row (no answer in time, or the server unreachable) that open it.
    pub failures: u32,
    /// How long it stays open, e.g. `30s`.
    pub cooldown: String,
    /// Requests let through at once while half-open. Default 1.
    pub probes: Option<u32>,
}

/// One server's limits (`[limits.servers.<id>]`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawServerLimits {
    /// Largest reply this server may send, in bytes (overrides `limits.max_reply_bytes`).
    pub max_reply_bytes: Option<usize>,
}

/// One token bucket.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    /// `global`, `client`, `tool` or `client_tool`: what each bucket is kept for.
    pub per: RawRatePer,
    /// Requests per second refilled.
    pub rps: f64,
    /// Bucket size (requests allowed at once). Default: `rps` rounded up, at least 1.
    pub burst: Option<u32>,
    /// Only requests for these tools (globs) count. Default: every request.
    pub tools: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawRatePer {
    Global,
    Client,
    Tool,
    ClientTool,
}

/// The policy section: native rules inline, and rule files.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// `enforce` or `audit` for the inline rules. Default `enforce`.
    pub mode: Option<crate::policy::native::RawMode>,
    /// Native rules, first match decides, no match denies.
    pub rules: Option<Vec<crate::policy::native::RawRule>>,
    /// Policy files: native, mcpgw (`version: v1`), mcpx configs (`servers`/`clients`) or
    /// mcp-gateway roles (`roles`/`attribute_to_roles`), told apart by their content. Every
    /// file must allow a request.
    pub files: Option<Vec<String>>,
}

/// Everything the guard runs on, compiled.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub auth: Auth,
    pub roles: Roles,
    /// Every rule set must allow.
    pub rule_sets: Vec<RuleSet>,
    pub server_policies: ServerPolicies,
    pub limits: Limits,
    /// Risky quirks and other things the operator should know.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub required: bool,
    pub agent_id: Option<Option<Vec<String>>>,
    pub api_keys: Vec<ApiKeyClient>,
    pub key_digests: Vec<[u8; 32]>,
    pub jwt: Option<JwtSetup>,
    pub oauth: Option<OAuthSetup>,
    pub identity_claim: String,
    pub roles_claim: String,
    pub stdio_subject: Option<String>,
    pub stdio_roles: Vec<String>,
    pub allow_unauthenticated: bool,
}

impl Auth {
    /// Whether any credential is checked (not only asserted).
    pub fn verifies(&self) -> bool {
        !self.api_keys.is_empty() || self.jwt.is_some() || self.oauth.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct ApiKeyClient {
    pub name: Arc<str>,
    pub roles: Vec<Arc<str>>,
}

/// Where a token's keys come from, and what its claims must say.
#[derive(Debug, Clone)]
pub struct JwtSetup {
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    /// A JWKS URL, or the issuer whose discovery document names it.
    pub jwks_url: Option<String>,
    pub discover: bool,
    pub static_keys: Option<Arc<KeySet>>,
    pub algorithms: Vec<Alg>,
    pub leeway_secs: u64,
    pub cache_secs: u64,
}

#[derive(Debug, Clone)]
pub struct OAuthSetup {
    pub resource: String,
    pub authorization_servers: Vec<String>,
    pub scopes: Vec<String>,
    pub scopes_supported: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub rates: Vec<Rate>,
    pub calls_per_session: Option<u64>,
    pub max_request_bytes: usize,
    pub max_reply_bytes: Option<usize>,
    pub reply_bytes: BTreeMap<String, usize>,
    /// (failures, cooldown in ms, probes).
    pub breaker: Option<(u32, u64, u32)>,
}

/// The default request body cap (2 MiB).
pub const MAX_REQUEST_BYTES: usize = 2 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rates: Vec::new(),
            calls_per_session: None,
            max_request_bytes: MAX_REQUEST_BYTES,
            max_reply_bytes: None,
            reply_bytes: BTreeMap::new(),
            breaker: None,
        }
    }
}

impl Limits {
    /// The reply cap of a server, if it has one.
    pub fn reply_cap(&self, server: &str) -> Option<usize> {
        self.reply_bytes
            .get(server)
            .copied()
            .or(self.max_reply_bytes)
    }
}

#[derive(Debug, Clone)]
pub struct Rate {
    pub per: RawRatePer,
    pub rps: f64,
    pub burst: u32,
    pub tools: Vec<crate::glob::Glob>,
}

/// The raw sections, as the config holds them.
#[derive(Debug, Clone, Default)]
pub struct Sections<'a> {
    pub auth: Option<&'a RawAuth>,
    pub policy: Option<&'a RawPolicy>,
    pub roles: Option<&'a BTreeMap<String, RawRole>>,
    pub role_mappings: Option<&'a [RawRoleMapping]>,
    pub limits: Option<&'a RawLimits>,
    /// Each server's mcpx-style policy.
    pub server_policies: Vec<(&'a str, &'a RawServerPolicy)>,
}

/// Reads a file named in the config (relative to its folder), for key and policy files.
pub type ReadFile<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// Parses `30s`, `15m`, `1h`, `500ms` into seconds (rounded down, ms below a second → 0).
fn secs(v: &Option<String>, default: u64, at: &str) -> Result<u64, PolicyError> {
    let Some(s) = v else { return Ok(default) };
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| err(at, format!("{s:?} is not a duration like 30s, 15m or 1h")))?;
    match unit {
        "s" | "" => Ok(n),
        "ms" => Ok(n / 1000),
        "m" => Ok(n * 60),
        "h" => Ok(n * 3600),
        _ => Err(err(
            at,
            format!("{s:?} is not a duration like 30s, 15m or 1h"),
        )),
    }
}

fn algorithms(v: &Option<Vec<String>>, at: &str) -> Result<Vec<Alg>, PolicyError> {
    v.iter()
        .flatten()
        .map(|a| {
            Alg::parse(a).ok_or_else(|| {
                err(at, format!("unknown algorithm {a:?}; use HS256/384/512, RS256/384/512, PS256/384/512, ES256, ES384 or EdDSA"))
            })
        })
        .collect()
}

fn check_url(u: &str, at: &str) -> Result<(), PolicyError> {
    if !(u.starts_with("https://") || u.starts_with("http://")) {
        return Err(err(at, format!("{u:?} is not an http(s) URL")));
    }
    Ok(())
}

fn request<'a>(method: &'a str, item: Option<Item<'a>>, arguments: Args<'a>) -> Request<'a> {
    let mut req = Request::method(method);
    req.arguments = arguments;
    if let Some(it) = item {
        req.server = Some(it.server);
        match it.kind {
            "tools" => req.tool = Some(it.name),
            "prompts" => req.prompt = Some(it.name),
            _ => req.resource = Some(it.name),
        }
    }
    req
}

/// What a request names, once routing has resolved it: its kind (`tools`, `prompts`,
/// `resources`), its server, and the server's own name for it (or the resource URI).
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub kind: &'a str,
    pub server: &'a str,
    pub name: &'a str,
}

impl Setup {
    /// The verdict on a request: roles, then every rule set, then the server's mcpx-style
    /// lists. A deny in `audit` mode is logged by the caller and does not stop the request.
    /// The verdict returned is the first that blocks, else the first audited deny, else allow.
    pub fn decide(
        &self,
        who: &Principal,
        method: &str,
        item: Option<Item<'_>>,
        arguments: Args<'_>,
    ) -> Verdict {
        self.decide_with(who, method, item, arguments, None)
    }

    /// Each rule set's candidate rules for (who, method, item): what [`Setup::decide_with`]
    /// needs to decide a request with any arguments; a caller may keep it per caller and item.
    pub fn candidates(
        &self,
        who: &Principal,
        method: &str,
        item: Option<Item<'_>>,
    ) -> Vec<Vec<u32>> {
        let req = request(method, item, Args::Unknown);
        self.rule_sets
            .iter()
            .map(|r| r.candidates(who, &req))
            .collect()
    }

    /// [`Setup::decide`], with the rule sets' candidate rules computed before (the same
    /// verdict, without checking again what does not depend on the arguments).
    pub fn decide_with(
        &self,
        who: &Principal,
        method: &str,
        item: Option<Item<'_>>,
        arguments: Args<'_>,
        candidates: Option<&[Vec<u32>]>,
    ) -> Verdict {
        if let Some(it) = item {
            if self.roles.is_enforcing() && !self.roles.permits(who, it.kind, it.server, it.name) {
                return Verdict::deny(
                    Stage::Roles,
                    "(no-permission)",
                    format!("no role of the caller permits {} {}", it.kind, it.name),
                );
            }
        }
        let req = request(method, item, arguments);
        let mut audited = None;
        let mut allowed = None;
        for (i, set) in self.rule_sets.iter().enumerate() {
            let v = match candidates.and_then(|c| c.get(i)) {
                Some(c) => set.decide_among(c, &req),
                None => set.decide(who, &req),
            };
            if v.decision == Decision::Deny {
                if v.blocks() {
                    return v;
                }
                audited.get_or_insert(v);
            } else {
                allowed.get_or_insert(v);
            }
        }
        // mcpx's lists on a call (a list asks `visible`, which reads only their names).
        if let (Some(it), "tools/call", false) = (item, method, matches!(arguments, Args::Unknown))
        {
            if it.kind == "tools" {
                let args = match arguments {
                    Args::Present(v) => Some(v),
                    _ => None,
                };
                if let Some(v) = self
                    .server_policies
                    .decide_call(who, it.server, it.name, args)
                {
                    return v;
                }
            }
        }
        audited
            .or(allowed)
            .unwrap_or_else(|| Verdict::allow(Stage::Policy, "(allowed)"))
    }

    /// Whether a list shows an item to the caller: the request that uses it would be allowed
    /// for some arguments (a rule that reads arguments neither hides nor shows it alone).
    pub fn visible(&self, who: &Principal, item: Item<'_>) -> bool {
        // mcpgw's `allowed_tools`: a tool outside it is not shown (mcpgw refuses the whole list).
        if item.kind == "tools"
            && self.rule_sets.iter().any(|r| {
                !r.allowed_tools.is_empty() && !crate::glob::any(&r.allowed_tools, item.name)
            })
        {
            return false;
        }
        let method = match item.kind {
            "tools" => "tools/call",
            "prompts" => "prompts/get",
            _ => "resources/read",
        };
        if self.decide(who, method, Some(item), Args::Unknown).blocks() {
            return false;
        }
        item.kind != "tools" || self.server_policies.visible(who, item.server, item.name)
    }

    /// Server ids the limits name that are not configured (`limits.servers.<id>`).
    pub fn unknown_servers<'a>(&'a self, known: &'a [&str]) -> impl Iterator<Item = &'a String> {
        self.limits
            .reply_bytes
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
    }

    /// Whether anything guards requests beyond authentication.
    pub fn has_policy(&self) -> bool {
        self.roles.is_enforcing() || !self.rule_sets.is_empty() || !self.server_policies.is_empty()
    }

    pub fn build(s: &Sections<'_>, read: ReadFile<'_>) -> Result<Setup, PolicyError> {
        let mut out = Setup::default();
        if let Some(a) = s.auth {
            out.auth = auth(a, read)?;
        } else {
            out.auth.identity_claim = "sub".into();
            out.auth.roles_claim = "roles".into();
        }
        let empty = BTreeMap::new();
        out.roles = Roles::compile(
            s.roles.unwrap_or(&empty),
            s.role_mappings.unwrap_or_default(),
        )?;
        for c in &out.auth.api_keys {
            for r in &c.roles {
                if out.roles.is_enforcing() && !out.roles.defines(r) {
                    out.warnings.push(format!(
                        "auth.api_keys {}: role {r:?} is not defined under roles, so it permits nothing",
                        c.name
                    ));
                }
            }
        }
        if let Some(p) = s.policy {
            if let Some(rules) = &p.rules {
                let raw = RawRules {
                    mode: p.mode,
                    rules: rules.clone(),
                };
                out.rule_sets.push(raw.compile("config", "policy.")?);
            }
            for (i, f) in p.files.iter().flatten().enumerate() {
                let at = format!("policy.files[{i}]");
                let text = read(f).map_err(|e| err(&at, e))?;
                out.load_file(&text, f, &at)?;
            }
        }
        for (server, p) in &s.server_policies {
            let at = format!("servers.{server}.policy");
            out.server_policies
                .servers
                .entry(server.to_string())
                .or_default()
                .push(p.compile(&at)?);
        }
        if let Some(l) = s.limits {
            for (i, r) in l.rate.iter().flatten().enumerate() {
                let at = format!("limits.rate[{i}]");
                if !(r.rps > 0.0 && r.rps.is_finite()) {
                    return Err(err(format!("{at}.rps"), "must be a number above 0"));
                }
                out.limits.rates.push(Rate {
                    per: r.per,
                    rps: r.rps,
                    burst: r.burst.unwrap_or((r.rps.ceil() as u32).max(1)).max(1),
                    tools: crate::policy::native::globs(&r.tools),
                });
            }
            out.limits.calls_per_session = l.calls_per_session;
            if let Some(n) = l.max_request_bytes {
                if n < 1024 {
                    return Err(err("limits.max_request_bytes", "must be at least 1024"));
                }
                out.limits.max_request_bytes = n;
            }
            if l.max_reply_bytes == Some(0) {
                return Err(err("limits.max_reply_bytes", "must be above 0"));
            }
            out.limits.max_reply_bytes = l.max_reply_bytes;
            for (id, sl) in l.servers.iter().flatten() {
                if let Some(n) = sl.max_reply_bytes {
                    out.limits.reply_bytes.insert(id.clone(), n.max(1));
                }
            }
            if let Some(b) = &l.breaker {
                if b.failures == 0 {
                    return Err(err("limits.breaker.failures", "must be at least 1"));
                }
                let cooldown = secs(&Some(b.cooldown.clone()), 30, "limits.breaker.cooldown")?;
                out.limits.breaker = Some((
                    b.failures,
                    cooldown.max(1) * 1000,
                    b.probes.unwrap_or(1).max(1),
                ));
            }
        }
        Ok(out)
    }

    /// Adds one policy file of any supported kind.
    pub fn load_file(&mut self, text: &str, name: &str, at: &str) -> Result<(), PolicyError> {
        let wrap = |e: PolicyError| err(at, format!("{name}: {e}"));
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
            if roles::looks_like(&json) {
                let more = roles::load_mcp_gateway(&json).map_err(wrap)?;
                self.roles.merge(more);
                return Ok(());
            }
        }
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
            .map_err(|e| err(at, format!("{name} is not YAML or JSON: {e}")))?;
        if mcpgw::looks_like(&doc) {
            let (set, warnings) = mcpgw::load(text, name).map_err(wrap)?;
            self.warnings
                .extend(warnings.into_iter().map(|w| format!("{name}: {w}")));
            self.rule_sets.push(set);
        } else if mcpx::looks_like(&doc) {
            let (p, warnings) = mcpx::load(&doc).map_err(wrap)?;
            self.warnings
                .extend(warnings.into_iter().map(|w| format!("{name}: {w}")));
            self.server_policies.add(p);
        } else {
            let raw: RawRules = serde_yaml_ng::from_value(doc).map_err(|e| {
                err(at, format!("{name}: not an mcpgw policy (no `version: v1`), an mcpx config or mcp-gateway roles; as a native policy: {e}"))
            })?;
            self.rule_sets.push(raw.compile(name, "").map_err(wrap)?);
        }
        Ok(())
    }
}

fn auth(a: &RawAuth, read: ReadFile<'_>) -> Result<Auth, PolicyError> {
    let mut out = Auth {
        identity_claim: a.identity_claim.clone().unwrap_or_else(|| "sub".into()),
        roles_claim: a.roles_claim.clone().unwrap_or_else(|| "roles".into()),
        stdio_subject: a.stdio_subject.clone(),
        stdio_roles: a.stdio_roles.clone().unwrap_or_default(),
        allow_unauthenticated: a.allow_unauthenticated.unwrap_or(false),
        agent_id: a.agent_id.as_ref().map(|x| x.allowed.clone()),
        ..Auth::default()
    };
    let mut names = std::collections::HashSet::new();
    for (i, k) in a.api_keys.iter().flatten().enumerate() {
        let at = format!("auth.api_keys[{i}]");
        if !names.insert(k.name.clone()) {
            return Err(err(
                format!("{at}.name"),
                format!("client {:?} is listed twice", k.name),
            ));
        }
        let d = apikey::parse_digest(&k.digest).map_err(|e| err(format!("{at}.digest"), e))?;
        out.key_digests.push(d);
        out.api_keys.push(ApiKeyClient {
            name: Arc::from(k.name.as_str()),
            roles: k.roles.iter().map(|r| Arc::from(r.as_str())).collect(),
        });
    }
    if let Some(j) = &a.jwt {
        let at = "auth.jwt";
        let static_keys = match (&j.key, &j.key_file) {
            (Some(_), Some(_)) => return Err(err(at, "give key or key_file, not both")),
            (Some(k), None) => Some(key_set(k, &format!("{at}.key"))?),
            (None, Some(f)) => {
                let text = read(f).map_err(|e| err(format!("{at}.key_file"), e))?;
                Some(key_set(&text, &format!("{at}.key_file"))?)
            }
            (None, None) => None,
        };
        if static_keys.is_some() && j.jwks_url.is_some() {
            return Err(err(at, "give one key source: key, key_file or jwks_url"));
        }
        if let Some(u) = &j.jwks_url {
            check_url(u, &format!("{at}.jwks_url"))?;
        }
        let discover = static_keys.is_none() && j.jwks_url.is_none();
        if discover {
            match &j.issuer {
                Some(iss) => check_url(iss, &format!("{at}.issuer"))?,
                None => return Err(err(at, "needs a key source: key, key_file, jwks_url, or an issuer whose discovery document names its keys")),
            }
        }
        let audiences = j.audience.clone().unwrap_or_default();
        if audiences.is_empty() && !j.allow_any_audience.unwrap_or(false) {
            return Err(err(
                format!("{at}.audience"),
                "is required: the audiences a token must be meant for (or set allow_any_audience = true to accept tokens meant for any service)",
            ));
        }
        out.jwt = Some(JwtSetup {
            issuer: j.issuer.clone(),
            audiences,
            jwks_url: j.jwks_url.clone(),
            discover,
            static_keys: static_keys.map(Arc::new),
            algorithms: algorithms(&j.algorithms, &format!("{at}.algorithms"))?,
            leeway_secs: secs(&j.leeway, 30, &format!("{at}.leeway"))?,
            cache_secs: secs(&j.jwks_cache, 900, &format!("{at}.jwks_cache"))?.max(60),
        });
    }
    if let Some(o) = &a.oauth {
        let at = "auth.oauth";
        if out.jwt.is_some() {
            return Err(err(
                at,
                "use auth.oauth or auth.jwt, not both (oauth verifies JWT access tokens itself)",
            ));
        }
        check_url(&o.resource, &format!("{at}.resource"))?;
        if o.authorization_servers.is_empty() {
            return Err(err(
                format!("{at}.authorization_servers"),
                "needs at least one issuer URL",
            ));
        }
        for (i, s) in o.authorization_servers.iter().enumerate() {
            check_url(s, &format!("{at}.authorization_servers[{i}]"))?;
        }
        if let Some(u) = &o.jwks_url {
            check_url(u, &format!("{at}.jwks_url"))?;
        }
        let resource = canonical_resource(&o.resource);
        out.jwt = Some(JwtSetup {
            issuer: Some(o.authorization_servers[0].clone()),
            audiences: vec![resource.clone()],
            jwks_url: o.jwks_url.clone(),
            discover: o.jwks_url.is_none(),
            static_keys: None,
            algorithms: algorithms(&o.algorithms, &format!("{at}.algorithms"))?,
            leeway_secs: secs(&o.leeway, 30, &format!("{at}.leeway"))?,
            cache_secs: secs(&o.jwks_cache, 900, &format!("{at}.jwks_cache"))?.max(60),
        });
        let scopes = o.scopes.clone().unwrap_or_default();
        out.oauth = Some(OAuthSetup {
            resource,
            authorization_servers: o.authorization_servers.clone(),
            scopes_supported: o.scopes_supported.clone().unwrap_or_else(|| scopes.clone()),
            scopes,
        });
    }
    if let Some(Some(list)) = &out.agent_id {
        if list.is_empty() {
            return Err(err(
                "auth.agent_id.allowed",
                "is empty, so no agent could connect; remove it to accept any agent id",
            ));
        }
    }
    out.required = a.required.unwrap_or(out.verifies());
    Ok(out)
}

/// A resource URI in canonical form: lower-case scheme and host, no trailing slash.
pub fn canonical_resource(u: &str) -> String {
    let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = path.trim_end_matches('/');
    format!(
        "{}://{}{path}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    )
}

fn key_set(text: &str, at: &str) -> Result<KeySet, PolicyError> {
    let t = text.trim();
    // Anything holding a PEM block is a public key, never a shared secret: a key file with a
    // comment before its block must not turn into an HMAC secret anyone with the key knows.
    if t.contains("-----BEGIN") {
        KeySet::from_pem(t, None).map_err(|e| err(at, e))
    } else {
        KeySet::from_secret(t.as_bytes()).map_err(|e| err(at, e))
    }
}
