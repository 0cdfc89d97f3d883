//! JSON Web Token verification (RFC 7519) for an OAuth resource server: compact JWS only, the
//! key chosen by `kid` and pinned to its algorithm family, the signature checked before any
//! claim is read, then the time, issuer and audience claims.
//!
//! Error messages are safe to show a client: they never contain the token or key bytes.

use crate::b64;
use crate::jwks::{Alg, KeySet, VerifyKey};
use serde_json::{Map, Value};

/// Tokens longer than this are refused before any decoding.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// When set, `iss` must equal it exactly.
    pub issuer: Option<String>,
    /// When non-empty, `aud` (a string or an array of strings) must contain one of them. When
    /// empty the audience is not checked; the caller decides whether that is allowed.
    pub audiences: Vec<String>,
    /// When non-empty, the header `alg` must be one of them.
    pub algorithms: Vec<Alg>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Whether a token without `exp` is refused.
    pub require_exp: bool,
}

/// A token whose signature and claims passed.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The payload.
    pub claims: Map<String, Value>,
    /// The header's `kid`, if any.
    pub kid: Option<String>,
    /// The algorithm the token was signed with.
    pub alg: Alg,
    /// `exp` in whole seconds (rounded down), if present.
    pub expires_at: Option<u64>,
}

/// Why a token was refused. The messages say what was wrong, never the token or key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a well-formed compact JWS, or a claim of the wrong type; says which part.
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    /// The header names `none` or an algorithm this server does not implement (the name is
    /// kept only when short and plain, else replaced by a placeholder).
    #[error("the token's algorithm {0:?} is not supported")]
    UnsupportedAlgorithm(String),
    /// The algorithm is outside the server's allow-list or does not fit the key the kid names.
    #[error("{0}")]
    AlgorithmNotAllowed(&'static str),
    /// No key carries the kid, or (without a kid) not exactly one key allows the algorithm.
    #[error("the token was signed with a key this server does not know")]
    UnknownKey,
    /// The signature does not verify with the chosen key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `now >= exp + leeway`.
    #[error("the token has expired")]
    Expired,
    /// `nbf > now + leeway`.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` differs from the expected issuer.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// `aud` names none of the expected audiences.
    #[error("the token's audience is not this server")]
    WrongAudience,
    /// A claim the expectations require (`exp`, `iss`, `aud`) is absent.
    #[error("the token has no {0} claim")]
    MissingClaim(&'static str),
    /// The header has `crit`: no extension is understood here, so the token is refused.
    #[error("the token has critical header extensions (crit) this server does not support")]
    UnsupportedCritical,
}

impl JwtError {
    /// A short stable machine code for logs and metrics, e.g. `"expired"`.
    pub fn code(&self) -> &'static str {
        match self {
            JwtError::Malformed(_) => "malformed",
            JwtError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            JwtError::AlgorithmNotAllowed(_) => "algorithm_not_allowed",
            JwtError::UnknownKey => "unknown_key",
            JwtError::BadSignature => "bad_signature",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::WrongIssuer => "wrong_issuer",
            JwtError::WrongAudience => "wrong_audience",
            JwtError::MissingClaim(_) => "missing_claim",
            JwtError::UnsupportedCritical => "unsupported_critical",
        }
    }
}

/// The three base64url parts of a compact JWS, length-checked.
fn split(token: &str) -> Result<[&str; 3], JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed("the token is longer than 16 KiB"));
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(sig), None) => Ok([header, payload, sig]),
        _ if token.split('.').count() == 5 => Err(JwtError::Malformed(
            "encrypted tokens (JWE) are not supported",
        )),
        _ => Err(JwtError::Malformed("a token has three dot-separated parts")),
    }
}

fn decode_header(header_b64: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = b64::decode_url(header_b64)
        .ok_or(JwtError::Malformed("the header is not valid base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| JwtError::Malformed("the header is not a JSON object"))
}

fn header_kid_of(header: &Map<String, Value>) -> Result<Option<String>, JwtError> {
    match header.get("kid") {
        None => Ok(None),
        Some(Value::String(kid)) => Ok(Some(kid.clone())),
        Some(_) => Err(JwtError::Malformed("the header kid is not a string")),
    }
}

/// The header's `kid`, read without verifying anything (to decide whether to refetch a JWKS on
/// an unknown kid). `Err` on a malformed token.
pub fn header_kid(token: &str) -> Result<Option<String>, JwtError> {
    let [header, _, _] = split(token)?;
    header_kid_of(&decode_header(header)?)
}

/// Verifies a compact JWS token against `keys` and `expect` at `now_secs` (Unix time).
pub fn verify(
    token: &str,
    keys: &KeySet,
    expect: &Expect,
    now_secs: u64,
) -> Result<Verified, JwtError> {
    let [header_b64, payload_b64, sig_b64] = split(token)?;
    let header = decode_header(header_b64)?;
    let payload = b64::decode_url(payload_b64)
        .ok_or(JwtError::Malformed("the payload is not valid base64url"))?;
    let sig = b64::decode_url(sig_b64)
        .ok_or(JwtError::Malformed("the signature is not valid base64url"))?;

    let alg = match header.get("alg") {
        Some(Value::String(name)) => Alg::parse(name).ok_or_else(|| unsupported(name))?,
        _ => return Err(JwtError::Malformed("the header has no string alg")),
    };
    if header.contains_key("crit") {
        return Err(JwtError::UnsupportedCritical);
    }
    if header
        .get("b64")
        .is_some_and(|b64| b64 != &Value::Bool(true))
    {
        return Err(JwtError::Malformed(
            "unencoded payloads (b64) are not supported",
        ));
    }
    let kid = header_kid_of(&header)?;
    if !expect.algorithms.is_empty() && !expect.algorithms.contains(&alg) {
        return Err(JwtError::AlgorithmNotAllowed(
            "the token's algorithm is not allowed here",
        ));
    }

    let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
    let candidates = choose_keys(keys, kid.as_deref(), alg)?;
    if !candidates
        .iter()
        .any(|key| key.verify(alg, signed.as_bytes(), &sig))
    {
        return Err(JwtError::BadSignature);
    }

    let claims: Map<String, Value> = serde_json::from_slice(&payload)
        .map_err(|_| JwtError::Malformed("the payload is not a JSON object"))?;
    let leeway = expect.leeway_secs as f64;
    let now = now_secs as f64;
    let exp = number_claim(&claims, "exp")?;
    match exp {
        Some(exp) if now >= exp + leeway => return Err(JwtError::Expired),
        None if expect.require_exp => return Err(JwtError::MissingClaim("exp")),
        _ => {}
    }
    if number_claim(&claims, "nbf")?.is_some_and(|nbf| nbf > now + leeway) {
        return Err(JwtError::NotYetValid);
    }
    if let Some(issuer) = &expect.issuer {
        match claims.get("iss") {
            None => return Err(JwtError::MissingClaim("iss")),
            Some(Value::String(iss)) if iss == issuer => {}
            Some(Value::String(_)) => return Err(JwtError::WrongIssuer),
            Some(_) => return Err(JwtError::Malformed("the iss claim is not a string")),
        }
    }
    if !expect.audiences.is_empty() {
        check_audience(claims.get("aud"), &expect.audiences)?;
    }
    Ok(Verified {
        claims,
        kid,
        alg,
        // Rounded down; `as` saturates (a negative or NaN exp has already been refused).
        expires_at: exp.map(|exp| exp.floor() as u64),
    })
}

/// An `UnsupportedAlgorithm` naming `name` only when it is short and plain.
fn unsupported(name: &str) -> JwtError {
    let plain = name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'+');
    JwtError::UnsupportedAlgorithm(if plain {
        name.to_string()
    } else {
        "(unprintable)".into()
    })
}

/// The keys that may have signed a token with this kid and alg.
///
/// A kid picks the keys carrying it; if no key carries it, the kid-less keys stand in (a shared
/// secret or PEM configured without a kid). Without a kid, or falling back, exactly one key
/// must allow the algorithm.
fn choose_keys<'k>(
    keys: &'k KeySet,
    kid: Option<&str>,
    alg: Alg,
) -> Result<Vec<&'k VerifyKey>, JwtError> {
    let all = keys.keys();
    if let Some(kid) = kid {
        let named: Vec<&VerifyKey> = all
            .iter()
            .filter(|k| k.kid.as_deref() == Some(kid))
            .collect();
        if !named.is_empty() {
            let allowed: Vec<&VerifyKey> = named.into_iter().filter(|k| k.allows(alg)).collect();
            if allowed.is_empty() {
                return Err(JwtError::AlgorithmNotAllowed(
                    "the token's algorithm does not match its key",
                ));
            }
            return Ok(allowed);
        }
    }
    let allowed: Vec<&VerifyKey> = all
        .iter()
        .filter(|k| (kid.is_none() || k.kid.is_none()) && k.allows(alg))
        .collect();
    if allowed.len() == 1 {
        Ok(allowed)
    } else {
        Err(JwtError::UnknownKey)
    }
}

/// A numeric date claim (integer or fractional seconds); `Malformed` when present but not a
/// non-negative number.
fn number_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, JwtError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    match value.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
        _ => Err(JwtError::Malformed(match name {
            "exp" => "the exp claim is not a number of seconds",
            _ => "the nbf claim is not a number of seconds",
        })),
    }
}

fn check_audience(aud: Option<&Value>, audiences: &[String]) -> Result<(), JwtError> {
    let accepted = |candidate: &str| audiences.iter().any(|a| a == candidate);
    let matched = match aud {
        None => return Err(JwtError::MissingClaim("aud")),
        Some(Value::String(aud)) => accepted(aud),
        Some(Value::Array(items)) => {
            let mut matched = false;
            for item in items {
                let item = item.as_str().ok_or(JwtError::Malformed(
                    "the aud claim holds a value that is not a string",
                ))?;
                matched |= accepted(item);
            }
            matched
        }
        Some(_) => {
            return Err(JwtError::Malformed(
                "the aud claim is not a string or an array",
            ))
        }
    };
    if matched {
        Ok(())
    } else {
        Err(JwtError::WrongAudience)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64::encode_url;
    use crate::jwks::testkeys::*;
    use ring::hmac;
    use ring::rand::SystemRandom;
    use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims() -> Value {
        json!({"iss": "https://issuer.example", "aud": "flowguard", "sub": "alice", "exp": NOW + 600})
    }

    fn expect() -> Expect {
        Expect {
            issuer: Some("https://issuer.example".into()),
            audiences: vec!["flowguard".into()],
            require_exp: true,
            ..Expect::default()
        }
    }

    /// A compact JWS of `header` and `claims` with the signature `sign` makes over the input.
    fn token(header: Value, claims: Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let input = format!(
            "{}.{}",
            encode_url(header.to_string().as_bytes()),
            encode_url(claims.to_string().as_bytes())
        );
        let sig = sign(input.as_bytes());
        format!("{input}.{}", encode_url(&sig))
    }

    fn hs(alg: Alg, secret: &[u8]) -> impl Fn(&[u8]) -> Vec<u8> {
        let algorithm = match alg {
            Alg::HS256 => hmac::HMAC_SHA256,
            Alg::HS384 => hmac::HMAC_SHA384,
            _ => hmac::HMAC_SHA512,
        };
        let key = hmac::Key::new(algorithm, secret);
        move |input| hmac::sign(&key, input).as_ref().to_vec()
    }

    fn rs<'a>(pair: &'a RsaKeyPair, alg: Alg) -> impl Fn(&[u8]) -> Vec<u8> + 'a {
        let encoding: &'static dyn signature::RsaEncoding = match alg {
            Alg::RS256 => &signature::RSA_PKCS1_SHA256,
            Alg::RS384 => &signature::RSA_PKCS1_SHA384,
            Alg::RS512 => &signature::RSA_PKCS1_SHA512,
            Alg::PS256 => &signature::RSA_PSS_SHA256,
            Alg::PS384 => &signature::RSA_PSS_SHA384,
            _ => &signature::RSA_PSS_SHA512,
        };
        move |input| {
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(encoding, &SystemRandom::new(), input, &mut sig)
                .expect("RSA sign");
            sig
        }
    }

    fn es(pair: &EcdsaKeyPair) -> impl Fn(&[u8]) -> Vec<u8> + '_ {
        |input| {
            pair.sign(&SystemRandom::new(), input)
                .expect("EC sign")
                .as_ref()
                .to_vec()
        }
    }

    fn hs256(claims: Value) -> String {
        token(json!({"alg": "HS256"}), claims, hs(Alg::HS256, SECRET))
    }

    fn secret_set() -> KeySet {
        KeySet::from_secret(SECRET).unwrap()
    }

    #[test]
    fn hmac_tokens_verify() {
        for alg in [Alg::HS256, Alg::HS384, Alg::HS512] {
            let t = token(
                json!({"alg": alg.as_str(), "typ": "JWT"}),
                claims(),
                hs(alg, SECRET),
            );
            let verified = verify(&t, &secret_set(), &expect(), NOW).unwrap();
            assert_eq!(verified.alg, alg);
            assert_eq!(verified.kid, None);
            assert_eq!(verified.expires_at, Some(NOW + 600));
            assert_eq!(verified.claims["sub"], "alice");
        }
        let other = KeySet::from_secret(&[b'x'; 32]).unwrap();
        assert_eq!(
            verify(&hs256(claims()), &other, &expect(), NOW).unwrap_err(),
            JwtError::BadSignature
        );
    }

    #[test]
    fn rsa_tokens_verify_with_jwk_spki_and_pkcs1() {
        let pair = rsa();
        let sets = [
            jwks(&[rsa_jwk()]),
            KeySet::from_pem(RSA_SPKI_PEM, Some("rsa-test".into())).unwrap(),
            KeySet::from_pem(RSA_PKCS1_PEM, None).unwrap(),
        ];
        for alg in [
            Alg::RS256,
            Alg::RS384,
            Alg::RS512,
            Alg::PS256,
            Alg::PS384,
            Alg::PS512,
        ] {
            let t = token(
                json!({"alg": alg.as_str(), "kid": "rsa-test"}),
                claims(),
                rs(&pair, alg),
            );
            for set in &sets {
                let verified = verify(&t, set, &expect(), NOW).unwrap();
                assert_eq!(
                    (verified.alg, verified.kid.as_deref()),
                    (alg, Some("rsa-test"))
                );
            }
        }
    }

    #[test]
    fn ec_and_ed25519_tokens_verify_with_jwk_and_spki() {
        let p256 = ec(&signature::ECDSA_P256_SHA256_FIXED_SIGNING);
        let p384 = ec(&signature::ECDSA_P384_SHA384_FIXED_SIGNING);
        let ed = ed();
        let set = jwks(&[
            ec_jwk(&p256, "p256"),
            ec_jwk(&p384, "p384"),
            ed_jwk(&ed, "ed"),
        ]);
        let cases = [
            (
                token(json!({"alg": "ES256", "kid": "p256"}), claims(), es(&p256)),
                SPKI_P256,
                p256.public_key().as_ref(),
            ),
            (
                token(json!({"alg": "ES384", "kid": "p384"}), claims(), es(&p384)),
                SPKI_P384,
                p384.public_key().as_ref(),
            ),
            (
                token(json!({"alg": "EdDSA", "kid": "ed"}), claims(), |m| {
                    ed.sign(m).as_ref().to_vec()
                }),
                SPKI_ED25519,
                ed.public_key().as_ref(),
            ),
        ];
        for (t, prefix, public) in cases {
            assert!(verify(&t, &set, &expect(), NOW).is_ok());
            let pem_set = KeySet::from_pem(&spki_pem(prefix, public), None).unwrap();
            assert!(
                verify(&t, &pem_set, &expect(), NOW).is_ok(),
                "kid falls back to the kid-less key"
            );
        }
        // ES256 signed by the P-256 key, relabelled ES384 with the P-384 kid: wrong family.
        let relabelled = token(json!({"alg": "ES384", "kid": "p384"}), claims(), es(&p256));
        assert_eq!(
            verify(&relabelled, &set, &expect(), NOW).unwrap_err(),
            JwtError::BadSignature
        );
        let misnamed = token(json!({"alg": "ES256", "kid": "p384"}), claims(), es(&p256));
        assert_eq!(
            verify(&misnamed, &set, &expect(), NOW).unwrap_err().code(),
            "algorithm_not_allowed"
        );
    }

    #[test]
    fn tampering_breaks_the_signature_which_is_checked_first() {
        let t = hs256(claims());
        let parts: Vec<&str> = t.split('.').collect();
        let mut evil = claims();
        evil["sub"] = json!("mallory");
        let swapped = format!(
            "{}.{}.{}",
            parts[0],
            encode_url(evil.to_string().as_bytes()),
            parts[2]
        );
        assert_eq!(
            verify(&swapped, &secret_set(), &expect(), NOW).unwrap_err(),
            JwtError::BadSignature
        );
        let mut sig = b64::decode_url(parts[2]).unwrap();
        sig[0] ^= 1;
        let flipped = format!("{}.{}.{}", parts[0], parts[1], encode_url(&sig));
        assert_eq!(
            verify(&flipped, &secret_set(), &expect(), NOW).unwrap_err(),
            JwtError::BadSignature
        );
        let truncated = format!("{}.{}.{}", parts[0], parts[1], encode_url(&sig[..16]));
        assert_eq!(
            verify(&truncated, &secret_set(), &expect(), NOW).unwrap_err(),
            JwtError::BadSignature
        );
        // An expired token with a bad signature reports the signature, not the claims.
        let expired = format!(
            "{}.{}.{}",
            parts[0],
            encode_url(json!({"exp": 1}).to_string().as_bytes()),
            parts[2]
        );
        assert_eq!(
            verify(&expired, &secret_set(), &expect(), NOW).unwrap_err(),
            JwtError::BadSignature
        );
        let not_json = format!("{}.{}.{}", parts[0], encode_url(b"[1]"), parts[2]);
        assert_eq!(
            verify(&not_json, &secret_set(), &expect(), NOW).unwrap_err(),
            JwtError::BadSignature
        );
    }

    #[test]
    fn algorithm_confusion_is_refused() {
        // The classic attack: HS256 "signed" with the RSA public key as the HMAC secret.
        for public in [RSA_SPKI_PEM.as_bytes(), RSA_PKCS1_PEM.as_bytes()] {
            let forged = token(
                json!({"alg": "HS256", "kid": "rsa-test"}),
                claims(),
                hs(Alg::HS256, public),
            );
            let err = verify(&forged, &jwks(&[rsa_jwk()]), &expect(), NOW).unwrap_err();
            assert_eq!(
                err,
                JwtError::AlgorithmNotAllowed("the token's algorithm does not match its key")
            );
            let no_kid = token(json!({"alg": "HS256"}), claims(), hs(Alg::HS256, public));
            let pem_set = KeySet::from_pem(RSA_SPKI_PEM, None).unwrap();
            assert_eq!(
                verify(&no_kid, &pem_set, &expect(), NOW).unwrap_err(),
                JwtError::UnknownKey
            );
        }
        // A key pinned to RS256 refuses PS256, and the server's allow-list applies first.
        let mut pinned = rsa_jwk();
        pinned["alg"] = json!("RS256");
        let pair = rsa();
        let ps = token(
            json!({"alg": "PS256", "kid": "rsa-test"}),
            claims(),
            rs(&pair, Alg::PS256),
        );
        assert_eq!(
            verify(&ps, &jwks(&[pinned]), &expect(), NOW)
                .unwrap_err()
                .code(),
            "algorithm_not_allowed"
        );
        let only_rs = Expect {
            algorithms: vec![Alg::RS256],
            ..expect()
        };
        let err = verify(&ps, &jwks(&[rsa_jwk()]), &only_rs, NOW).unwrap_err();
        assert_eq!(
            err,
            JwtError::AlgorithmNotAllowed("the token's algorithm is not allowed here")
        );
    }

    #[test]
    fn none_and_unknown_algorithms_are_refused() {
        let payload = encode_url(claims().to_string().as_bytes());
        for (alg, shown) in [
            ("none", "none"),
            ("NONE", "NONE"),
            ("HS1", "HS1"),
            ("x\"y", "(unprintable)"),
        ] {
            let t = format!(
                "{}.{payload}.",
                encode_url(json!({"alg": alg}).to_string().as_bytes())
            );
            let err = verify(&t, &secret_set(), &expect(), NOW).unwrap_err();
            assert_eq!(err, JwtError::UnsupportedAlgorithm(shown.into()));
        }
        let long = "A".repeat(100);
        let t = format!(
            "{}.{payload}.",
            encode_url(json!({"alg": long}).to_string().as_bytes())
        );
        assert!(!verify(&t, &secret_set(), &expect(), NOW)
            .unwrap_err()
            .to_string()
            .contains(&long));
    }

    #[test]
    fn keys_are_chosen_by_kid() {
        let pair = rsa();
        let p256 = ec(&signature::ECDSA_P256_SHA256_FIXED_SIGNING);
        let set = jwks(&[rsa_jwk(), ec_jwk(&p256, "p256")]);
        let t = token(
            json!({"alg": "RS256", "kid": "other"}),
            claims(),
            rs(&pair, Alg::RS256),
        );
        assert_eq!(
            verify(&t, &set, &expect(), NOW).unwrap_err(),
            JwtError::UnknownKey
        );
        // Without a kid, exactly one key must allow the algorithm.
        let t = token(json!({"alg": "RS256"}), claims(), rs(&pair, Alg::RS256));
        assert_eq!(verify(&t, &set, &expect(), NOW).unwrap().kid, None);
        let mut two = set.clone();
        two.extend(KeySet::from_pem(RSA_SPKI_PEM, None).unwrap());
        assert_eq!(
            verify(&t, &two, &expect(), NOW).unwrap_err(),
            JwtError::UnknownKey
        );
        assert_eq!(
            verify(&t, &KeySet::default(), &expect(), NOW).unwrap_err(),
            JwtError::UnknownKey
        );
        // A shared secret configured without a kid verifies tokens that carry one.
        let t = token(
            json!({"alg": "HS256", "kid": "v1"}),
            claims(),
            hs(Alg::HS256, SECRET),
        );
        assert_eq!(
            verify(&t, &secret_set(), &expect(), NOW)
                .unwrap()
                .kid
                .as_deref(),
            Some("v1")
        );
    }

    #[test]
    fn a_jwks_with_garbage_keys_still_verifies_with_the_good_one() {
        let p256 = ec(&signature::ECDSA_P256_SHA256_FIXED_SIGNING);
        let doc = json!({"keys": [
            {"kty": "bogus", "kid": "p256"},
            {"kty": "RSA", "kid": "p256", "e": "AQAB"},
            {"kty": "EC", "crv": "P-256", "use": "enc", "kid": "enc", "x": "AA", "y": "AA"},
            ec_jwk(&p256, "p256"),
        ]});
        let (set, skipped) = KeySet::from_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!((set.len(), skipped.len()), (1, 3), "{skipped:?}");
        let t = token(json!({"alg": "ES256", "kid": "p256"}), claims(), es(&p256));
        assert_eq!(verify(&t, &set, &expect(), NOW).unwrap().alg, Alg::ES256);
    }

    #[test]
    fn expiry_and_not_before_with_and_without_leeway() {
        let set = secret_set();
        let at = |exp: Value, nbf: Option<u64>, leeway: u64| {
            let mut c = claims();
            c["exp"] = exp;
            if let Some(nbf) = nbf {
                c["nbf"] = json!(nbf);
            }
            verify(
                &hs256(c),
                &set,
                &Expect {
                    leeway_secs: leeway,
                    ..expect()
                },
                NOW,
            )
        };
        assert_eq!(at(json!(NOW), None, 0).unwrap_err(), JwtError::Expired);
        assert!(at(json!(NOW + 1), None, 0).is_ok());
        assert!(at(json!(NOW - 5), None, 10).is_ok());
        assert_eq!(
            at(json!(NOW - 10), None, 10).unwrap_err(),
            JwtError::Expired
        );
        assert_eq!(
            at(json!(NOW + 60), Some(NOW + 5), 0).unwrap_err(),
            JwtError::NotYetValid
        );
        assert!(at(json!(NOW + 60), Some(NOW + 5), 5).is_ok());
        assert!(at(json!(NOW + 60), Some(NOW), 0).is_ok());
        let fractional = at(json!(NOW as f64 + 0.5), None, 0).unwrap();
        assert_eq!(fractional.expires_at, Some(NOW));
        assert_eq!(
            at(json!(NOW as f64 - 0.5), None, 0).unwrap_err(),
            JwtError::Expired
        );
        for bad in [
            json!((NOW + 60).to_string()),
            json!(-1),
            json!(null),
            json!([NOW]),
        ] {
            assert_eq!(at(bad, None, 0).unwrap_err().code(), "malformed");
        }
        let mut c = claims();
        c["nbf"] = json!("soon");
        assert_eq!(
            verify(&hs256(c), &set, &expect(), NOW).unwrap_err().code(),
            "malformed"
        );
        let mut no_exp = claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            verify(&hs256(no_exp.clone()), &set, &expect(), NOW).unwrap_err(),
            JwtError::MissingClaim("exp")
        );
        let lenient = Expect {
            require_exp: false,
            ..expect()
        };
        assert_eq!(
            verify(&hs256(no_exp), &set, &lenient, NOW)
                .unwrap()
                .expires_at,
            None
        );
    }

    #[test]
    fn issuer_and_audience() {
        let set = secret_set();
        let with = |name: &str, value: Option<Value>, expect: &Expect| {
            let mut c = claims();
            match value {
                Some(v) => c[name] = v,
                None => drop(c.as_object_mut().unwrap().remove(name)),
            }
            verify(&hs256(c), &set, expect, NOW)
        };
        let e = expect();
        assert_eq!(
            with("iss", Some(json!("https://evil.example")), &e).unwrap_err(),
            JwtError::WrongIssuer
        );
        assert_eq!(
            with("iss", None, &e).unwrap_err(),
            JwtError::MissingClaim("iss")
        );
        assert_eq!(
            with("iss", Some(json!(7)), &e).unwrap_err().code(),
            "malformed"
        );
        assert!(with(
            "iss",
            None,
            &Expect {
                issuer: None,
                ..expect()
            }
        )
        .is_ok());
        assert!(with("aud", Some(json!(["other", "flowguard"])), &e).is_ok());
        assert_eq!(
            with("aud", Some(json!(["other"])), &e).unwrap_err(),
            JwtError::WrongAudience
        );
        assert_eq!(
            with("aud", Some(json!([])), &e).unwrap_err(),
            JwtError::WrongAudience
        );
        assert_eq!(
            with("aud", Some(json!("other")), &e).unwrap_err(),
            JwtError::WrongAudience
        );
        assert_eq!(
            with("aud", None, &e).unwrap_err(),
            JwtError::MissingClaim("aud")
        );
        assert_eq!(
            with("aud", Some(json!(["flowguard", 1])), &e)
                .unwrap_err()
                .code(),
            "malformed"
        );
        assert_eq!(
            with("aud", Some(json!({"a": 1})), &e).unwrap_err().code(),
            "malformed"
        );
        let two = Expect {
            audiences: vec!["a".into(), "flowguard".into()],
            ..expect()
        };
        assert!(with("aud", Some(json!("flowguard")), &two).is_ok());
        assert!(with(
            "aud",
            None,
            &Expect {
                audiences: vec![],
                ..expect()
            }
        )
        .is_ok());
    }

    #[test]
    fn crit_b64_and_structure_are_checked() {
        let set = secret_set();
        let crit = token(
            json!({"alg": "HS256", "crit": ["exp"], "exp": 1}),
            claims(),
            hs(Alg::HS256, SECRET),
        );
        assert_eq!(
            verify(&crit, &set, &expect(), NOW).unwrap_err(),
            JwtError::UnsupportedCritical
        );
        let b64 = token(
            json!({"alg": "HS256", "b64": false}),
            claims(),
            hs(Alg::HS256, SECRET),
        );
        assert_eq!(
            verify(&b64, &set, &expect(), NOW).unwrap_err().code(),
            "malformed"
        );
        let b64_true = token(
            json!({"alg": "HS256", "b64": true}),
            claims(),
            hs(Alg::HS256, SECRET),
        );
        assert!(verify(&b64_true, &set, &expect(), NOW).is_ok());
        let good = hs256(claims());
        let p: Vec<&str> = good.split('.').collect();
        let malformed = [
            format!("{}.{}", p[0], p[1]),
            format!("{good}.x"),
            format!("{good}.x.y"),
            format!("{}=.{}.{}", p[0], p[1], p[2]),
            format!("{}.{}+.{}", p[0], p[1], p[2]),
            format!("{}.{}.{}!", p[0], p[1], p[2]),
            format!("{}.{}.{}", encode_url(b"[\"HS256\"]"), p[1], p[2]),
            format!("{}.{}.{}", encode_url(b"{\"typ\":\"JWT\"}"), p[1], p[2]),
            format!("{}.{}.{}", encode_url(b"{\"alg\":256}"), p[1], p[2]),
            token(
                json!({"alg": "HS256", "kid": 5}),
                claims(),
                hs(Alg::HS256, SECRET),
            ),
            token(
                json!({"alg": "HS256"}),
                json!(["not", "an", "object"]),
                hs(Alg::HS256, SECRET),
            ),
            String::new(),
        ];
        for t in &malformed {
            assert_eq!(
                verify(t, &set, &expect(), NOW).unwrap_err().code(),
                "malformed",
                "{t}"
            );
        }
        let jwe = format!("{good}.x.y");
        assert_eq!(
            verify(&jwe, &set, &expect(), NOW).unwrap_err(),
            JwtError::Malformed("encrypted tokens (JWE) are not supported")
        );
        let mut big = claims();
        big["pad"] = json!("x".repeat(20 * 1024));
        let err = verify(&hs256(big), &set, &expect(), NOW).unwrap_err();
        assert_eq!(err, JwtError::Malformed("the token is longer than 16 KiB"));
    }

    #[test]
    fn header_kid_reads_without_verifying() {
        let t = token(json!({"alg": "RS256", "kid": "k1"}), claims(), |_| {
            vec![1, 2, 3]
        });
        assert_eq!(header_kid(&t).unwrap().as_deref(), Some("k1"));
        assert_eq!(header_kid(&hs256(claims())).unwrap(), None);
        assert_eq!(header_kid("a.b").unwrap_err().code(), "malformed");
        assert_eq!(header_kid("!.b.c").unwrap_err().code(), "malformed");
        let numeric = token(json!({"alg": "RS256", "kid": 1}), claims(), |_| vec![]);
        assert_eq!(header_kid(&numeric).unwrap_err().code(), "malformed");
    }

    #[test]
    fn messages_and_codes_are_stable_and_hold_no_token() {
        let all = [
            JwtError::Malformed("x"),
            JwtError::UnsupportedAlgorithm("none".into()),
            JwtError::AlgorithmNotAllowed("x"),
            JwtError::UnknownKey,
            JwtError::BadSignature,
            JwtError::Expired,
            JwtError::NotYetValid,
            JwtError::WrongIssuer,
            JwtError::WrongAudience,
            JwtError::MissingClaim("aud"),
            JwtError::UnsupportedCritical,
        ];
        let codes: std::collections::HashSet<&str> = all.iter().map(JwtError::code).collect();
        assert_eq!(codes.len(), all.len());
        assert_eq!(JwtError::Expired.to_string(), "the token has expired");
        assert_eq!(
            JwtError::WrongAudience.to_string(),
            "the token's audience is not this server"
        );
        let t = hs256(claims());
        let p: Vec<&str> = t.split('.').collect();
        let bad = format!("{}.{}.{}", p[0], p[1], encode_url(b"nope"));
        let message = verify(&bad, &secret_set(), &expect(), NOW)
            .unwrap_err()
            .to_string();
        assert!(p.iter().all(|part| !message.contains(part)), "{message}");
    }

    proptest::proptest! {
        #[test]
        fn verify_never_panics_on_strings(s in "\\PC{0,200}") {
            let _ = verify(&s, &secret_set(), &expect(), NOW);
            let _ = header_kid(&s);
        }

        #[test]
        fn verify_never_panics_on_three_parts(
            header in "\\PC{0,60}",
            payload in "\\PC{0,60}",
            sig in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            dots in "[A-Za-z0-9_.-]{0,40}",
        ) {
            let set = jwks(&[rsa_jwk()]);
            let t = format!("{}.{}.{}", encode_url(header.as_bytes()), encode_url(payload.as_bytes()), encode_url(&sig));
            let _ = verify(&t, &set, &expect(), NOW);
            let _ = verify(&format!("{t}{dots}"), &secret_set(), &expect(), NOW);
            for alg in ["HS256", "RS256", "PS512", "ES256", "EdDSA", "none"] {
                let h = json!({"alg": alg, "kid": "rsa-test", "x": header});
                let t = format!("{}.{}.{}", encode_url(h.to_string().as_bytes()), encode_url(payload.as_bytes()), encode_url(&sig));
                proptest::prop_assert!(verify(&t, &set, &expect(), NOW).is_err());
            }
        }
    }
}
