//! The guard pipeline end to end through the real binary: API keys and HS256 tokens, OAuth
//! challenges and metadata, sessions bound to their principal, native rules, roles, mcpgw and
//! mcpx files, hidden tools answered like unknown ones, and rate limits.

use flowguard_guard::{apikey, b64};
use flowguard_testkit::client::{error_code, error_message, tool_text};
use flowguard_testkit::config::fake_server;
use flowguard_testkit::http::{post_json, request};
use flowguard_testkit::{GatewayProcess, McpClient};
use serde_json::{json, Value};

const KEY_A: &str = "key-for-alice-0123456789";
const KEY_B: &str = "key-for-bob-0123456789";
const SECRET: &str = "an-hmac-secret-of-at-least-32-bytes!!";

fn keys() -> String {
    format!(
        "[[auth.api_keys]]\nname = \"alice\"\ndigest = \"{}\"\nroles = [\"admin\"]\n\n[[auth.api_keys]]\nname = \"bob\"\ndigest = \"{}\"\nroles = [\"reader\"]\n\n",
        apikey::digest_of(KEY_A),
        apikey::digest_of(KEY_B)
    )
}

fn config(guard: &str) -> String {
    format!("{guard}\n{}", fake_server("fake", &[], ""))
}

fn hs256(claims: Value) -> String {
    let header = b64::encode_url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64::encode_url(claims.to_string().as_bytes());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let sig = ring::hmac::sign(&key, format!("{header}.{payload}").as_bytes());
    format!("{header}.{payload}.{}", b64::encode_url(sig.as_ref()))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn init() -> String {
    flowguard_testkit::client::initialize_body(&json!({}))
}

#[tokio::test]
async fn api_keys_authenticate_and_sessions_belong_to_their_client() {
    let gw = GatewayProcess::start(&config(&keys()), "toml", &[]);
    let url = gw.url("/mcp/fake");
    let none = post_json(&url, &[], &init()).await;
    assert_eq!(none.status, 401, "{}", none.text());
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert!(
        none.text().contains("requires credentials"),
        "{}",
        none.text()
    );
    let wrong = post_json(&url, &[("x-api-key", "nope")], &init()).await;
    assert_eq!(wrong.status, 401);
    assert!(!wrong.text().contains("nope"), "the key is never echoed");

    let alice = McpClient::connect_as(&url, &[("x-api-key", KEY_A)]).await;
    assert_eq!(
        tool_text(&alice.call_tool("echo", json!({"message": "hi"})).await),
        "hi"
    );
    // The same key as a bearer token works too.
    let bearer = format!("Bearer {KEY_B}");
    let bob = McpClient::connect_as(&url, &[("authorization", &bearer)]).await;
    assert!(bob.tool_names().await.contains(&"echo".to_string()));
    // Bob presenting Alice's session id: as if it did not exist.
    let stolen = alice
        .raw_post(
            &[("x-api-key", ""), ("authorization", &bearer)],
            json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}).to_string(),
        )
        .await;
    assert_eq!(stolen.status, 404, "{}", stolen.text());
    let missing = post_json(
        &url,
        &[
            ("x-api-key", KEY_B),
            ("mcp-session-id", "0123456789abcdef0123456789abcdef"),
        ],
        &json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}).to_string(),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.text(),
        stolen.text(),
        "another's session reads like a missing one"
    );
    assert!(!gw.stderr_text().contains(KEY_A), "a key reached the log");
}

#[tokio::test]
async fn jwt_tokens_are_verified_and_their_claims_give_roles() {
    let guard = format!(
        "[auth.jwt]\nissuer = \"https://issuer.test\"\naudience = [\"flowguard\"]\nkey = \"{SECRET}\"\nleeway = \"0s\"\n\n\
         [roles.reader]\npermissions = [{{ type = \"tools\", server = \"fake\", name = \"echo\" }}]\n\
         [roles.admin]\npermissions = [{{ type = \"*\" }}]\n\
         [[role_mappings]]\nclaim = \"groups\"\nvalue = \"ops\"\nroles = [\"admin\"]\n"
    );
    let gw = GatewayProcess::start(&config(&guard), "toml", &[]);
    let url = gw.url("/mcp/fake");
    let good = |extra: Value| {
        let mut c = json!({"iss": "https://issuer.test", "aud": "flowguard", "sub": "carol", "exp": now() + 300, "roles": ["reader"]});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        format!("Bearer {}", hs256(c))
    };
    let carol = McpClient::connect_as(&url, &[("authorization", &good(json!({})))]).await;
    assert_eq!(
        carol.tool_names().await,
        ["echo"],
        "the reader role sees echo only"
    );
    let hidden = carol.call_tool("add", json!({"a": 1, "b": 2})).await;
    let unknown = carol.call_tool("no_such_tool", json!({})).await;
    assert_eq!(error_code(&hidden), Some(-32602), "{hidden}");
    assert_eq!(
        error_message(&hidden).replace("add", "X"),
        error_message(&unknown).replace("no_such_tool", "X"),
        "a hidden tool is answered exactly like an unknown one"
    );
    let ops = McpClient::connect_as(
        &url,
        &[(
            "authorization",
            &good(json!({"groups": ["dev", "ops"], "roles": []})),
        )],
    )
    .await;
    assert!(
        ops.tool_names().await.len() > 5,
        "the ops group maps to admin"
    );

    for (why, token) in [
        ("expired", good(json!({"exp": now() - 5}))),
        ("another audience", good(json!({"aud": "someone-else"}))),
        ("another issuer", good(json!({"iss": "https://evil.test"}))),
        ("bad signature", format!("{}x", good(json!({})))),
        (
            "alg none",
            format!(
                "Bearer {}.{}.",
                b64::encode_url(br#"{"alg":"none"}"#),
                b64::encode_url(b"{}")
            ),
        ),
    ] {
        let r = post_json(&url, &[("authorization", &token)], &init()).await;
        assert_eq!(r.status, 401, "{why}: {}", r.text());
    }
    // A token in the query string is never read.
    let q = post_json(
        &format!("{url}?access_token={}", &good(json!({}))[7..]),
        &[],
        &init(),
    )
    .await;
    assert_eq!(q.status, 401);
}

#[tokio::test]
async fn oauth_metadata_and_challenges_follow_the_mcp_authorization_spec() {
    let guard = "[auth.oauth]\nresource = \"http://127.0.0.1:1/MCP/\"\nauthorization_servers = [\"http://127.0.0.1:9/\"]\nscopes = [\"mcp:tools\"]\njwks_url = \"http://127.0.0.1:9/jwks\"\n";
    let gw = GatewayProcess::start(&config(guard), "toml", &[]);
    let r = post_json(&gw.url("/mcp/fake"), &[], &init()).await;
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap().to_string();
    assert_eq!(
        challenge,
        "Bearer resource_metadata=\"http://127.0.0.1:1/.well-known/oauth-protected-resource/mcp/fake\", scope=\"mcp:tools\""
    );
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp/fake",
    ] {
        let m = request("GET", &gw.url(path), &[], "").await;
        assert_eq!(m.status, 200, "{path}");
        let doc = m.json();
        assert_eq!(
            doc["resource"], "http://127.0.0.1:1/MCP",
            "canonical: lower-case host, no trailing slash"
        );
        assert_eq!(doc["authorization_servers"], json!(["http://127.0.0.1:9/"]));
        assert_eq!(doc["scopes_supported"], json!(["mcp:tools"]));
    }
    let bad = post_json(
        &gw.url("/mcp/fake"),
        &[("authorization", "Bearer a.b.c")],
        &init(),
    )
    .await;
    assert_eq!(bad.status, 401);
    assert!(bad
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer error=\"invalid_token\""));
}

#[tokio::test]
async fn native_rules_decide_first_match_with_implicit_deny_and_audit() {
    let guard = format!(
        "{}[policy]\nrules = [\n\
         {{ name = \"no-add-for-bob\", action = \"deny\", match = {{ tools = [\"add\"], subjects = [\"bob\"] }} }},\n\
         {{ name = \"no-secrets\", action = \"deny\", match = {{ tools = [\"echo\"], arguments = {{ message = [\"*secret*\"] }} }} }},\n\
         {{ name = \"watch-env\", action = \"deny\", mode = \"audit\", match = {{ tools = [\"env\"] }} }},\n\
         {{ name = \"rest\", action = \"allow\", match = {{ methods = [\"initialize\", \"tools/*\", \"ping\"] }} }},\n]\n",
        keys()
    );
    let gw = GatewayProcess::start(&config(&guard), "toml", &[]);
    let url = gw.url("/mcp/fake");
    let bob = McpClient::connect_as(&url, &[("x-api-key", KEY_B)]).await;
    let alice = McpClient::connect_as(&url, &[("x-api-key", KEY_A)]).await;
    assert!(!bob.tool_names().await.contains(&"add".into()));
    assert!(alice.tool_names().await.contains(&"add".into()));
    assert!(
        bob.tool_names().await.contains(&"echo".into()),
        "an argument rule hides nothing"
    );
    let denied = bob.call_tool("echo", json!({"message": "my secret"})).await;
    assert_eq!(error_code(&denied), Some(-32040), "{denied}");
    assert!(error_message(&denied).contains("no-secrets"), "{denied}");
    assert_eq!(
        tool_text(&bob.call_tool("echo", json!({"message": "fine"})).await),
        "fine"
    );
    // Duplicate keys in arguments are refused outright.
    let dup = bob
        .raw_post(&[], r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"message":"ok","message":"secret"}}}"#)
        .await;
    assert!(dup.text().contains("duplicate key"), "{}", dup.text());
    // Audit mode: logged, not blocked.
    let env = bob.call_tool("env", json!({"name": "HOME"})).await;
    assert!(env.get("result").is_some(), "{env}");
    // Nothing allows resources/list: the implicit deny.
    let res = bob.response("resources/list", json!({})).await;
    assert_eq!(error_code(&res), Some(-32040), "{res}");
    assert!(error_message(&res).contains("no rule allows"), "{res}");
}

#[tokio::test]
async fn seed_policy_files_load_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mcpgw.yaml"),
        "version: v1\nmode: enforce\nrules:\n  - name: block-add\n    match:\n      methods: [\"tools/call\"]\n      tools: [\"add\"]\n    action: deny\n  - name: default-allow\n    match:\n      methods: [\"*\"]\n    action: allow\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("mcpx.yaml"),
        "servers:\n  - name: fake\n    policy:\n      deny_tools: [crash]\n      tool_rules:\n        echo: { args: { message: { prefix: \"ok\" } } }\n",
    )
    .unwrap();
    let cfg = config("");
    let policy_a = dir.path().join("mcpgw.yaml").display().to_string();
    let policy_b = dir.path().join("mcpx.yaml").display().to_string();
    let gw = GatewayProcess::start(
        &cfg,
        "toml",
        &["--policy", &policy_a, "--policy", &policy_b],
    );
    let c = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let names = c.tool_names().await;
    // Both files hide what they deny outright (mcpgw's block-add, mcpx's deny_tools).
    assert!(
        !names.contains(&"crash".into()) && !names.contains(&"add".into()),
        "{names:?}"
    );
    let add = c.call_tool("add", json!({"a": 1, "b": 2})).await;
    assert_eq!(error_message(&add), "Unknown tool: add", "{add}");
    let echo = c.call_tool("echo", json!({"message": "nope"})).await;
    assert!(error_message(&echo).contains("tool_rules"), "{echo}");
    assert_eq!(
        tool_text(&c.call_tool("echo", json!({"message": "ok!"})).await),
        "ok!"
    );
    assert!(gw.stderr_text().contains("self-asserted") || gw.stderr_text().contains("only assert"));
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let guard = format!(
        "{}[limits]\ncalls_per_session = 2\n[[limits.rate]]\nper = \"client_tool\"\nrps = 0.01\nburst = 2\ntools = [\"echo\"]\n",
        keys()
    );
    let gw = GatewayProcess::start(&config(&guard), "toml", &[]);
    let url = gw.url("/mcp/fake");
    let bob = McpClient::connect_as(&url, &[("x-api-key", KEY_B)]).await;
    for _ in 0..2 {
        assert_eq!(
            tool_text(&bob.call_tool("echo", json!({"message": "x"})).await),
            "x"
        );
    }
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "x"}}});
    let r = bob.raw_post(&[], body.to_string()).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r
        .header("retry-after")
        .is_some_and(|v| v.parse::<u64>().unwrap() >= 1));
    assert!(r.text().contains("-32029"), "{}", r.text());
    // Another client has its own bucket; the session limit counts every call.
    let alice = McpClient::connect_as(&url, &[("x-api-key", KEY_A)]).await;
    assert_eq!(
        tool_text(&alice.call_tool("echo", json!({"message": "y"})).await),
        "y"
    );
    let add = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 1}}});
    let r = bob.raw_post(&[], add.to_string()).await;
    assert_eq!(r.status, 429, "the third call of the session: {}", r.text());
    assert!(r.text().contains("calls_per_session"), "{}", r.text());
}

#[test]
fn a_public_address_without_authentication_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config("")).unwrap();
    let out = flowguard_testkit::GatewayOptions::new().run(
        &["-c", cfg.to_str().unwrap(), "--listen", "0.0.0.0:0"],
        None,
    );
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("allow_unauthenticated"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn size_caps_and_the_breaker_answer_as_documented() {
    let guard = "[limits]\nmax_request_bytes = 4096\nmax_reply_bytes = 2000\n\
                 [limits.breaker]\nfailures = 2\ncooldown = \"1s\"\n";
    let cfg = format!(
        "{guard}\n{}",
        fake_server("fake", &[], "request_timeout = \"300ms\"")
    );
    let gw = GatewayProcess::start(&cfg, "toml", &[]);
    let c = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    // A body over the cap: 413, before anything is parsed.
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "x".repeat(5000)}}});
    let r = c.raw_post(&[], big.to_string()).await;
    assert_eq!(r.status, 413, "{}", r.text());
    // A reply over the server's cap is replaced by an error naming both sizes.
    let ok = c.call_tool("big", json!({"bytes": 100})).await;
    assert_eq!(tool_text(&ok).len(), 100);
    let over = c.call_tool("big", json!({"bytes": 5000})).await;
    assert_eq!(error_code(&over), Some(-32000), "{over}");
    assert!(
        error_message(&over).contains("over its limit of 2000"),
        "{over}"
    );
    // Two timeouts in a row open the breaker: the next call fails at once.
    for _ in 0..2 {
        let h = c.call_tool("hang", json!({})).await;
        assert_eq!(error_code(&h), Some(-32001), "{h}");
    }
    let refused = c.call_tool("echo", json!({"message": "x"})).await;
    assert!(
        error_message(&refused).contains("circuit breaker is open"),
        "{refused}"
    );
    let health = gw.health().await;
    assert_eq!(
        health["servers"]["fake"]["breaker"]["state"], "open",
        "{health}"
    );
    // After the cooldown a probe goes through, and its success closes the breaker.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        tool_text(&c.call_tool("echo", json!({"message": "back"})).await),
        "back"
    );
    let health = gw.health().await;
    assert_eq!(
        health["servers"]["fake"]["breaker"]["state"], "closed",
        "{health}"
    );
}

#[tokio::test]
async fn a_remote_server_gets_the_verified_subject_and_never_the_client_token() {
    let flaky = flowguard_testkit::flaky::FlakyServer::start().await;
    let cfg = format!(
        "{}[servers.remote]\nurl = \"{}\"\nsubject_header = \"X-FlowGuard-Subject\"\nheaders = {{ Authorization = \"Bearer from-config\" }}\n",
        keys(),
        flaky.url()
    );
    let gw = GatewayProcess::start(&cfg, "toml", &[]);
    let c = McpClient::connect_as(
        &gw.url("/mcp/remote"),
        &[("authorization", &format!("Bearer {KEY_A}"))],
    )
    .await;
    assert_eq!(
        tool_text(&c.call_tool("echo", json!({"message": "x"})).await),
        "x"
    );
    let seen = flaky.seen();
    let call = seen
        .iter()
        .find(|s| s.method == "tools/call")
        .expect("the call reached the server");
    assert_eq!(call.subject.as_deref(), Some("alice"));
    assert_eq!(call.authorization.as_deref(), Some("Bearer from-config"));
    assert!(!gw.stderr_text().contains(KEY_A));
}
