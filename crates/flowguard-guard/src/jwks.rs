//! Keys that verify JSON Web Tokens: loaded from a JWKS document (RFC 7517), a PEM public key or
//! a shared HMAC secret, each pinned to its algorithm family so that a token cannot choose how
//! its own signature is checked (algorithm confusion).
//!
//! Nothing here prints key bytes: the reasons and errors name members, sizes and algorithms.

use crate::b64;
use ring::{hmac, signature};
use serde_json::{Map, Value};

/// A JWS signature algorithm (RFC 7518 §3, RFC 8037 for EdDSA with Ed25519).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

const ALL_ALGS: [Alg; 12] = [
    Alg::HS256,
    Alg::HS384,
    Alg::HS512,
    Alg::RS256,
    Alg::RS384,
    Alg::RS512,
    Alg::PS256,
    Alg::PS384,
    Alg::PS512,
    Alg::ES256,
    Alg::ES384,
    Alg::EdDSA,
];

impl Alg {
    /// The algorithm a JOSE `alg` value names, exactly as spelled (case-sensitive). `None` for
    /// `none` and for anything unknown.
    pub fn parse(s: &str) -> Option<Alg> {
        ALL_ALGS.into_iter().find(|alg| alg.as_str() == s)
    }

    /// The JOSE name, e.g. `"RS256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    fn family(self) -> Family {
        match self {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => Family::Hmac,
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                Family::Rsa
            }
            Alg::ES256 => Family::P256,
            Alg::ES384 => Family::P384,
            Alg::EdDSA => Family::Ed25519,
        }
    }
}

/// The kind of key material; an algorithm belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Family {
    fn describe(self) -> &'static str {
        match self {
            Family::Hmac => "HMAC secret",
            Family::Rsa => "RSA key",
            Family::P256 => "EC P-256 key",
            Family::P384 => "EC P-384 key",
            Family::Ed25519 => "Ed25519 key",
        }
    }
}

#[derive(Clone)]
enum Material {
    /// Boxed: three keyed contexts are much larger than the other variants.
    Hmac(Box<HmacKeys>),
    /// Big-endian modulus and exponent without leading zeros (as ring wants them).
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed point, 0x04 || x || y.
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
}

#[derive(Clone)]
struct HmacKeys {
    sha256: hmac::Key,
    sha384: hmac::Key,
    sha512: hmac::Key,
}

impl Material {
    fn family(&self) -> Family {
        match self {
            Material::Hmac(_) => Family::Hmac,
            Material::Rsa { .. } => Family::Rsa,
            Material::P256(_) => Family::P256,
            Material::P384(_) => Family::P384,
            Material::Ed25519(_) => Family::Ed25519,
        }
    }
}

/// One verification key. Its material is private and never printed (`Debug` shows the kid, the
/// pinned algorithm and the kind of key only).
#[derive(Clone)]
pub struct VerifyKey {
    /// The key id (`kid`) tokens name it by, if any.
    pub kid: Option<String>,
    /// The one algorithm this key is pinned to (the JWK `alg`), if any.
    pub alg: Option<Alg>,
    material: Material,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.material.family().describe())
            .finish()
    }
}

impl VerifyKey {
    /// Whether this key may verify a token signed with `alg`: the algorithm must belong to the
    /// key's family (HMAC: HS*; RSA: RS*/PS*; P-256: ES256; P-384: ES384; Ed25519: EdDSA) and,
    /// when the key names an `alg`, be exactly that one.
    pub fn allows(&self, alg: Alg) -> bool {
        alg.family() == self.material.family() && self.alg.is_none_or(|pinned| pinned == alg)
    }

    /// Checks `signature` over `message` with `alg`; false when the key does not allow `alg`.
    pub(crate) fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
        if !self.allows(alg) {
            return false;
        }
        use signature::{UnparsedPublicKey, VerificationAlgorithm};
        let public = |algorithm: &'static dyn VerificationAlgorithm, key: &[u8]| {
            UnparsedPublicKey::new(algorithm, key)
                .verify(message, sig)
                .is_ok()
        };
        match (&self.material, alg) {
            (Material::Hmac(k), Alg::HS256) => hmac::verify(&k.sha256, message, sig).is_ok(),
            (Material::Hmac(k), Alg::HS384) => hmac::verify(&k.sha384, message, sig).is_ok(),
            (Material::Hmac(k), Alg::HS512) => hmac::verify(&k.sha512, message, sig).is_ok(),
            (Material::Rsa { n, e }, _) => {
                let params = match alg {
                    Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                let components = signature::RsaPublicKeyComponents {
                    n: &n[..],
                    e: &e[..],
                };
                components.verify(params, message, sig).is_ok()
            }
            (Material::P256(point), Alg::ES256) => {
                public(&signature::ECDSA_P256_SHA256_FIXED, point)
            }
            (Material::P384(point), Alg::ES384) => {
                public(&signature::ECDSA_P384_SHA384_FIXED, point)
            }
            (Material::Ed25519(x), Alg::EdDSA) => public(&signature::ED25519, x),
            _ => false,
        }
    }
}

/// The keys a token may be verified with.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyKey>,
}

impl KeySet {
    /// A JWKS document (`{"keys":[...]}`). Unusable keys are skipped, each with a reason, and one
    /// bad key never rejects the others: unknown `kty`/`crv`, symmetric (`oct`) keys, `use` other
    /// than `"sig"`, `key_ops` without `"verify"`, missing or undecodable members, an RSA modulus
    /// under 2048 bits, an `alg` that is unknown or of another key family.
    ///
    /// `Err` only when the document is not a JSON object with a `keys` array.
    pub fn from_jwks(json: &[u8]) -> Result<(KeySet, Vec<String>), String> {
        let doc: Value = serde_json::from_slice(json)
            .map_err(|e| format!("the JWKS document is not valid JSON ({e})"))?;
        let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
            return Err("the JWKS document is not a JSON object with a \"keys\" array".into());
        };
        let mut set = KeySet::default();
        let mut skipped = Vec::new();
        for (index, jwk) in keys.iter().enumerate() {
            match parse_jwk(jwk) {
                Ok(key) => set.keys.push(key),
                Err(reason) => {
                    let kid = match jwk.get("kid").and_then(Value::as_str) {
                        Some(kid) => format!(" (kid {})", printable(kid)),
                        None => String::new(),
                    };
                    skipped.push(format!("key {index}{kid} skipped: {reason}"));
                }
            }
        }
        Ok((set, skipped))
    }

    /// A PEM public key: `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo holding an RSA,
    /// EC P-256, EC P-384 or Ed25519 key) or `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1). Text
    /// before the block is ignored; one block per call.
    pub fn from_pem(pem: &str, kid: Option<String>) -> Result<KeySet, String> {
        let (label, der) = pem_block(pem)?;
        let material = match label {
            "PUBLIC KEY" => spki(&der)?,
            "RSA PUBLIC KEY" => pkcs1(&der)?,
            "CERTIFICATE" => {
                return Err("the PEM holds a certificate; extract its public key \
                            (openssl x509 -pubkey -noout)"
                    .into())
            }
            label if label.contains("PRIVATE KEY") => {
                return Err("the PEM holds a private key; give the public key \
                            (openssl pkey -pubout)"
                    .into())
            }
            label => return Err(format!("unsupported PEM block type {}", printable(label))),
        };
        Ok(KeySet {
            keys: vec![VerifyKey {
                kid,
                alg: None,
                material,
            }],
        })
    }

    /// A shared HMAC secret, for HS256, HS384 and HS512 only. Refuses an empty secret and one
    /// shorter than 32 bytes (256 bits).
    pub fn from_secret(secret: &[u8]) -> Result<KeySet, String> {
        if secret.is_empty() {
            return Err("the HMAC secret is empty".into());
        }
        if secret.len() < 32 {
            return Err(format!(
                "the HMAC secret is {} bytes long; at least 32 bytes (256 bits) are required",
                secret.len()
            ));
        }
        let material = Material::Hmac(Box::new(HmacKeys {
            sha256: hmac::Key::new(hmac::HMAC_SHA256, secret),
            sha384: hmac::Key::new(hmac::HMAC_SHA384, secret),
            sha512: hmac::Key::new(hmac::HMAC_SHA512, secret),
        }));
        Ok(KeySet {
            keys: vec![VerifyKey {
                kid: None,
                alg: None,
                material,
            }],
        })
    }

    /// How many usable keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether some key carries this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// Adds the keys of `other` (e.g. several configured sources).
    pub fn extend(&mut self, other: KeySet) {
        self.keys.extend(other.keys);
    }

    /// The keys, in load order.
    pub fn keys(&self) -> &[VerifyKey] {
        &self.keys
    }
}

/// A string from a document, quoted and shortened for a message.
fn printable(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}

fn parse_jwk(jwk: &Value) -> Result<VerifyKey, String> {
    let obj = jwk.as_object().ok_or("it is not a JSON object")?;
    let kid = match obj.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err("kid is not a string".into()),
    };
    match obj.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(Value::String(u)) => return Err(format!("use is {}, not \"sig\"", printable(u))),
        Some(_) => return Err("use is not a string".into()),
    }
    match obj.get("key_ops") {
        None => {}
        Some(Value::Array(ops)) if ops.iter().any(|op| op.as_str() == Some("verify")) => {}
        Some(Value::Array(_)) => return Err("key_ops does not include \"verify\"".into()),
        Some(_) => return Err("key_ops is not an array".into()),
    }
    let alg = match obj.get("alg") {
        None => None,
        Some(Value::String(name)) => Some(Alg::parse(name).ok_or_else(|| {
            format!(
                "alg {} is not a supported signature algorithm",
                printable(name)
            )
        })?),
        Some(_) => return Err("alg is not a string".into()),
    };
    let material = match obj.get("kty") {
        Some(Value::String(kty)) => match kty.as_str() {
            "RSA" => rsa_material(&member(obj, "n")?, &member(obj, "e")?)?,
            "EC" => {
                let (len, curve) = match obj.get("crv").and_then(Value::as_str) {
                    Some("P-256") => (32, Family::P256),
                    Some("P-384") => (48, Family::P384),
                    Some(crv) => return Err(format!("unsupported EC curve {}", printable(crv))),
                    None => return Err("crv is missing or not a string".into()),
                };
                let (x, y) = (member(obj, "x")?, member(obj, "y")?);
                if x.len() != len || y.len() != len {
                    return Err(format!("x and y must be {len} bytes each for this curve"));
                }
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                if curve == Family::P256 {
                    Material::P256(point)
                } else {
                    Material::P384(point)
                }
            }
            "OKP" => match obj.get("crv").and_then(Value::as_str) {
                Some("Ed25519") => {
                    let x = member(obj, "x")?;
                    if x.len() != 32 {
                        return Err("x must be 32 bytes for Ed25519".into());
                    }
                    Material::Ed25519(x)
                }
                Some(crv) => return Err(format!("unsupported OKP curve {}", printable(crv))),
                None => return Err("crv is missing or not a string".into()),
            },
            "oct" => {
                return Err("symmetric (oct) keys are not accepted from a JWKS; \
                            configure a shared secret instead"
                    .into())
            }
            other => return Err(format!("unsupported kty {}", printable(other))),
        },
        Some(_) => return Err("kty is not a string".into()),
        None => return Err("kty is missing".into()),
    };
    if let Some(alg) = alg {
        if alg.family() != material.family() {
            let kind = material.family().describe();
            return Err(format!("alg {} does not fit an {kind}", alg.as_str()));
        }
    }
    Ok(VerifyKey { kid, alg, material })
}

/// A base64url member of a JWK.
fn member(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = obj
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{name} is missing"))?;
    b64::decode_url(text).ok_or_else(|| format!("{name} is not valid base64url"))
}

/// An RSA public key from big-endian n and e (leading zeros allowed), checked for what ring will
/// accept: a 2048..=8192-bit odd modulus, an odd exponent in 3..2^33.
fn rsa_material(n: &[u8], e: &[u8]) -> Result<Material, String> {
    let strip = |bytes: &[u8]| -> Vec<u8> {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        bytes[start..].to_vec()
    };
    let (n, e) = (strip(n), strip(e));
    let Some(&top) = n.first() else {
        return Err("the RSA modulus is zero".into());
    };
    let bits = n.len() * 8 - top.leading_zeros() as usize;
    if bits < 2048 {
        return Err(format!(
            "the RSA modulus has {bits} bits; at least 2048 are required"
        ));
    }
    if bits > 8192 {
        return Err(format!(
            "the RSA modulus has {bits} bits; at most 8192 are supported"
        ));
    }
    if n.last().is_some_and(|b| b & 1 == 0) {
        return Err("the RSA modulus is even".into());
    }
    let exponent = if e.len() > 5 {
        u64::MAX
    } else {
        e.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b))
    };
    if exponent < 3 || exponent % 2 == 0 || exponent >= 1 << 33 {
        return Err("the RSA public exponent is not usable (odd, 3 to 2^33 - 1)".into());
    }
    Ok(Material::Rsa { n, e })
}

/// The label and decoded body of the first PEM block.
fn pem_block(pem: &str) -> Result<(&str, Vec<u8>), String> {
    const BEGIN: &str = "-----BEGIN ";
    let start = pem.find(BEGIN).ok_or("no \"-----BEGIN\" line in the PEM")?;
    let rest = &pem[start + BEGIN.len()..];
    let label_len = rest
        .find("-----")
        .ok_or("the PEM BEGIN line is incomplete")?;
    let label = &rest[..label_len];
    if label.len() > 64 || label.contains(['\n', '\r']) {
        return Err("the PEM BEGIN line is incomplete".into());
    }
    let body_and_end = &rest[label_len + 5..];
    let end_marker = format!("-----END {label}-----");
    let body_len = body_and_end
        .find(&end_marker)
        .ok_or_else(|| format!("no \"-----END {label}-----\" line in the PEM"))?;
    if body_and_end[body_len + end_marker.len()..].contains(BEGIN) {
        return Err("the PEM holds more than one block; give one key per source".into());
    }
    let der =
        b64::decode_std(&body_and_end[..body_len]).ok_or("the PEM body is not valid base64")?;
    Ok((label, der))
}

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// A minimal DER reader: definite lengths of at most two bytes, minimal encodings only.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    /// The value of the next element, which must have `tag`.
    fn read(&mut self, tag: u8) -> Option<&'a [u8]> {
        let (&found, rest) = self.rest.split_first()?;
        let (&first, rest) = rest.split_first()?;
        if found != tag {
            return None;
        }
        let (len, rest) = match first {
            0..=0x7F => (usize::from(first), rest),
            0x81 => match rest.split_first()? {
                (&len, rest) if len >= 0x80 => (usize::from(len), rest),
                _ => return None,
            },
            0x82 => match rest.split_at_checked(2)? {
                ([hi, lo], rest) if *hi != 0 => ((usize::from(*hi) << 8) | usize::from(*lo), rest),
                _ => return None,
            },
            _ => return None,
        };
        let (value, rest) = rest.split_at_checked(len)?;
        self.rest = rest;
        Some(value)
    }

    /// The value of the next element, which must have `tag` and be the last one.
    fn read_last(&mut self, tag: u8) -> Option<&'a [u8]> {
        let value = self.read(tag)?;
        self.rest.is_empty().then_some(value)
    }
}

const NOT_SPKI: &str = "the PEM body is not a DER SubjectPublicKeyInfo";

/// A SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { OID, params }, BIT STRING }.
fn spki(der: &[u8]) -> Result<Material, String> {
    let mut outer = Der {
        rest: Der { rest: der }.read_last(TAG_SEQUENCE).ok_or(NOT_SPKI)?,
    };
    let mut algorithm = Der {
        rest: outer.read(TAG_SEQUENCE).ok_or(NOT_SPKI)?,
    };
    let key = match outer.read_last(TAG_BIT_STRING).ok_or(NOT_SPKI)? {
        [0, key @ ..] => key,
        _ => return Err(NOT_SPKI.into()),
    };
    let oid = algorithm.read(TAG_OID).ok_or(NOT_SPKI)?;
    match oid {
        OID_RSA => {
            if !algorithm.rest.is_empty() && algorithm.read_last(TAG_NULL) != Some(&[]) {
                return Err(NOT_SPKI.into());
            }
            pkcs1(key)
        }
        OID_EC => {
            let (len, p256) = match algorithm.read_last(TAG_OID) {
                Some(OID_P256) => (65, true),
                Some(OID_P384) => (97, false),
                _ => return Err("unsupported EC curve (P-256 and P-384 are supported)".into()),
            };
            if key.len() != len || key[0] != 0x04 {
                return Err("the EC public key is not an uncompressed point of its curve".into());
            }
            Ok(if p256 {
                Material::P256(key.to_vec())
            } else {
                Material::P384(key.to_vec())
            })
        }
        OID_ED25519 if algorithm.rest.is_empty() && key.len() == 32 => {
            Ok(Material::Ed25519(key.to_vec()))
        }
        OID_ED25519 => Err("the Ed25519 public key is not 32 bytes".into()),
        OID_RSA_PSS => {
            Err("RSASSA-PSS-only keys are not supported; give an rsaEncryption key".into())
        }
        _ => Err("unsupported public key algorithm (RSA, EC P-256/P-384, Ed25519)".into()),
    }
}

/// A PKCS#1 RSAPublicKey: SEQUENCE { INTEGER n, INTEGER e }.
fn pkcs1(der: &[u8]) -> Result<Material, String> {
    const NOT_PKCS1: &str = "the RSA public key is not a DER RSAPublicKey";
    let mut seq = Der {
        rest: Der { rest: der }.read_last(TAG_SEQUENCE).ok_or(NOT_PKCS1)?,
    };
    let n = seq.read(TAG_INTEGER).ok_or(NOT_PKCS1)?;
    let e = seq.read_last(TAG_INTEGER).ok_or(NOT_PKCS1)?;
    if n.first().is_none_or(|b| b & 0x80 != 0) || e.first().is_none_or(|b| b & 0x80 != 0) {
        return Err(NOT_PKCS1.into());
    }
    rsa_material(n, e)
}

/// Test keys shared with the `jwt` tests: the committed TEST-ONLY RSA key and generated EC and
/// Ed25519 keys, with their JWK and PEM forms.
#[cfg(test)]
pub(crate) mod testkeys {
    use super::KeySet;
    use crate::b64;
    use ring::rand::SystemRandom;
    use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
    use serde_json::{json, Value};

    /// TEST ONLY: a 2048-bit RSA key generated for these tests, never used anywhere else.
    pub const RSA_PKCS8_B64: &str = include_str!("testdata/rsa-test-key.pk8.b64");
    pub const RSA_SPKI_PEM: &str = include_str!("testdata/rsa-test-key.pub.pem");
    pub const RSA_PKCS1_PEM: &str = include_str!("testdata/rsa-test-key.pkcs1.pem");
    /// The public JWK of the test key, kid "rsa-test".
    pub const RSA_JWK: &str = include_str!("testdata/rsa-test-key.jwk.json");

    pub const SPKI_P256: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
    pub const SPKI_P384: &str = "3076301006072a8648ce3d020106052b81040022036200";
    pub const SPKI_ED25519: &str = "302a300506032b6570032100";

    pub fn rsa() -> RsaKeyPair {
        let der = b64::decode_std(RSA_PKCS8_B64).expect("test key base64");
        RsaKeyPair::from_pkcs8(&der).expect("test key PKCS#8")
    }

    pub fn rsa_jwk() -> Value {
        serde_json::from_str(RSA_JWK).expect("test JWK")
    }

    pub fn ec(alg: &'static signature::EcdsaSigningAlgorithm) -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate EC key");
        EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("EC key")
    }

    pub fn ed() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("generate key");
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("Ed25519 key")
    }

    /// The JWK of an EC key pair: x and y from the uncompressed point 0x04 || x || y.
    pub fn ec_jwk(pair: &EcdsaKeyPair, kid: &str) -> Value {
        let point = pair.public_key().as_ref();
        let half = (point.len() - 1) / 2;
        let crv = if half == 32 { "P-256" } else { "P-384" };
        json!({"kty": "EC", "crv": crv, "kid": kid,
               "x": b64::encode_url(&point[1..1 + half]), "y": b64::encode_url(&point[1 + half..])})
    }

    pub fn ed_jwk(pair: &Ed25519KeyPair, kid: &str) -> Value {
        let x = b64::encode_url(pair.public_key().as_ref());
        json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": x})
    }

    pub fn jwks(keys: &[Value]) -> KeySet {
        let doc = serde_json::to_vec(&json!({ "keys": keys })).expect("JSON");
        let (set, skipped) = KeySet::from_jwks(&doc).expect("JWKS");
        assert!(skipped.is_empty(), "{skipped:?}");
        set
    }

    /// A PEM block with a standard base64 body wrapped at 64 columns.
    pub fn pem(label: &str, der: &[u8]) -> String {
        let body: String = b64::encode_url(der).replace('-', "+").replace('_', "/");
        let padded = format!("{body}{}", "=".repeat((4 - body.len() % 4) % 4));
        let lines: Vec<&str> = padded
            .as_bytes()
            .chunks(64)
            .map(|l| std::str::from_utf8(l).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    /// A SubjectPublicKeyInfo PEM from a DER prefix (hex) and the raw public key.
    pub fn spki_pem(prefix_hex: &str, key: &[u8]) -> String {
        let mut der: Vec<u8> = (0..prefix_hex.len() / 2)
            .map(|i| u8::from_str_radix(&prefix_hex[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        der.extend_from_slice(key);
        pem("PUBLIC KEY", &der)
    }
}

#[cfg(test)]
mod tests {
    use super::testkeys::*;
    use super::*;
    use ring::signature::{
        KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
    };
    use serde_json::json;

    fn rsa_parts(set: &KeySet) -> (Vec<u8>, Vec<u8>) {
        match &set.keys[0].material {
            Material::Rsa { n, e } => (n.clone(), e.clone()),
            _ => panic!("not an RSA key"),
        }
    }

    #[test]
    fn alg_names_round_trip_and_none_is_unknown() {
        for alg in ALL_ALGS {
            assert_eq!(Alg::parse(alg.as_str()), Some(alg));
        }
        for name in ["none", "None", "hs256", "ES512", "RSA-OAEP", ""] {
            assert_eq!(Alg::parse(name), None, "{name}");
        }
    }

    #[test]
    fn secrets_shorter_than_32_bytes_are_refused() {
        let err = KeySet::from_secret(b"").unwrap_err();
        assert!(err.contains("empty"), "{err}");
        let err = KeySet::from_secret(b"correct horse battery staple!!").unwrap_err();
        assert!(err.contains("30 bytes") && err.contains("32"), "{err}");
        assert!(!err.contains("horse"));
        let set = KeySet::from_secret(&[7u8; 32]).expect("32 bytes");
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn keys_are_pinned_to_their_family_and_alg() {
        let mut set = KeySet::from_secret(&[1u8; 32]).unwrap();
        set.extend(jwks(&[rsa_jwk()]));
        set.extend(jwks(&[ec_jwk(
            &ec(&ECDSA_P256_SHA256_FIXED_SIGNING),
            "p256",
        )]));
        set.extend(jwks(&[ec_jwk(
            &ec(&ECDSA_P384_SHA384_FIXED_SIGNING),
            "p384",
        )]));
        set.extend(jwks(&[ed_jwk(&ed(), "ed")]));
        let mut pinned = rsa_jwk();
        pinned["alg"] = json!("PS384");
        set.extend(jwks(&[pinned]));
        let expected: [&[Alg]; 6] = [
            &[Alg::HS256, Alg::HS384, Alg::HS512],
            &[
                Alg::RS256,
                Alg::RS384,
                Alg::RS512,
                Alg::PS256,
                Alg::PS384,
                Alg::PS512,
            ],
            &[Alg::ES256],
            &[Alg::ES384],
            &[Alg::EdDSA],
            &[Alg::PS384],
        ];
        assert_eq!(set.len(), expected.len());
        for (key, allowed) in set.keys().iter().zip(expected) {
            for alg in ALL_ALGS {
                assert_eq!(key.allows(alg), allowed.contains(&alg), "{key:?} {alg:?}");
            }
        }
        assert!(set.has_kid("rsa-test") && set.has_kid("ed") && !set.has_kid("nope"));
    }

    #[test]
    fn jwks_skips_unusable_keys_with_a_reason_each() {
        let small_n = b64::encode_url(&[0xC3; 128]); // 1024 bits
        let mut missing_n = rsa_jwk();
        missing_n.as_object_mut().unwrap().remove("n");
        let mut enc = rsa_jwk();
        enc["use"] = json!("enc");
        let mut ops = rsa_jwk();
        ops["key_ops"] = json!(["sign"]);
        let mut ec_as_rsa = ec_jwk(&ec(&ECDSA_P256_SHA256_FIXED_SIGNING), "confused");
        ec_as_rsa["alg"] = json!("RS256");
        let mut bad_b64 = rsa_jwk();
        bad_b64["e"] = json!("AQAB=");
        let doc = json!({"keys": [
            {"kty": "XYZ", "kid": "weird"},
            missing_n,
            enc,
            ops,
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "RSA", "n": small_n, "e": "AQAB"},
            ec_as_rsa,
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
            bad_b64,
            "not an object",
            rsa_jwk(),
        ]});
        let (set, skipped) = KeySet::from_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.has_kid("rsa-test"));
        let want = [
            "key 0 (kid \"weird\") skipped: unsupported kty \"XYZ\"",
            "n is missing",
            "use is \"enc\"",
            "key_ops does not include",
            "oct",
            "1024 bits",
            "alg RS256 does not fit an EC P-256 key",
            "unsupported EC curve \"P-521\"",
            "x must be 32 bytes",
            "e is not valid base64url",
            "key 10 skipped: it is not a JSON object",
        ];
        assert_eq!(skipped.len(), want.len(), "{skipped:?}");
        for (reason, want) in skipped.iter().zip(want) {
            assert!(reason.contains(want), "{reason:?} should mention {want:?}");
        }
        let n = rsa_jwk()["n"].as_str().unwrap().to_string();
        assert!(skipped
            .iter()
            .all(|r| !r.contains(&n[..16]) && !r.contains(&small_n[..16])));
    }

    #[test]
    fn jwks_document_shape_errors() {
        for doc in [
            &b"not json"[..],
            b"[]",
            b"{}",
            b"{\"keys\":{}}",
            b"\"keys\"",
        ] {
            assert!(
                KeySet::from_jwks(doc).is_err(),
                "{:?}",
                String::from_utf8_lossy(doc)
            );
        }
        let (set, skipped) = KeySet::from_jwks(b"{\"keys\":[]}").unwrap();
        assert!(set.is_empty() && skipped.is_empty());
    }

    #[test]
    fn rsa_pem_forms_match_the_jwk() {
        let from_jwk = rsa_parts(&jwks(&[rsa_jwk()]));
        assert_eq!(from_jwk.0.len(), 256);
        assert_eq!(from_jwk.1, vec![1, 0, 1]);
        let spki = KeySet::from_pem(RSA_SPKI_PEM, Some("pem".into())).unwrap();
        assert!(spki.has_kid("pem"));
        assert_eq!(rsa_parts(&spki), from_jwk);
        let crlf = format!("comment line\r\n{}", RSA_PKCS1_PEM.replace('\n', "\r\n"));
        let pkcs1 = KeySet::from_pem(&crlf, None).unwrap();
        assert_eq!(rsa_parts(&pkcs1), from_jwk);
        let ring_view: signature::RsaPublicKeyComponents<Vec<u8>> = rsa().public().into();
        assert_eq!((ring_view.n, ring_view.e), from_jwk);
    }

    #[test]
    fn ec_and_ed25519_spki_pems_load() {
        let p256 = ec(&ECDSA_P256_SHA256_FIXED_SIGNING);
        let set = KeySet::from_pem(&spki_pem(SPKI_P256, p256.public_key().as_ref()), None).unwrap();
        assert!(set.keys[0].allows(Alg::ES256) && !set.keys[0].allows(Alg::ES384));
        let p384 = ec(&ECDSA_P384_SHA384_FIXED_SIGNING);
        let set = KeySet::from_pem(&spki_pem(SPKI_P384, p384.public_key().as_ref()), None).unwrap();
        assert!(set.keys[0].allows(Alg::ES384));
        let ed = ed();
        let set =
            KeySet::from_pem(&spki_pem(SPKI_ED25519, ed.public_key().as_ref()), None).unwrap();
        assert!(set.keys[0].allows(Alg::EdDSA));
        // A compressed P-256 point (ring verifies uncompressed points only).
        let compressed = "3039301306072a8648ce3d020106082a8648ce3d030107032200";
        let mut point = p256.public_key().as_ref()[..33].to_vec();
        point[0] = 0x02;
        let err = KeySet::from_pem(&spki_pem(compressed, &point), None).unwrap_err();
        assert!(err.contains("uncompressed"), "{err}");
    }

    #[test]
    fn pem_refusals_name_the_problem() {
        let cases = [
            ("no armour", "BEGIN"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "private key",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "certificate",
            ),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n", "END"),
            (
                "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
                "base64",
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                "SubjectPublicKeyInfo",
            ),
        ];
        for (pem, want) in cases {
            let err = KeySet::from_pem(pem, None).unwrap_err();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
        let twice = format!("{RSA_SPKI_PEM}{RSA_SPKI_PEM}");
        assert!(KeySet::from_pem(&twice, None)
            .unwrap_err()
            .contains("more than one"));
    }

    #[test]
    fn truncated_and_corrupted_der_never_panics() {
        let der = b64::decode_std(
            RSA_SPKI_PEM
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>()
                .as_str(),
        )
        .unwrap();
        for len in 0..der.len() {
            assert!(
                KeySet::from_pem(&pem("PUBLIC KEY", &der[..len]), None).is_err(),
                "{len}"
            );
        }
        for i in 0..der.len() {
            for flip in [0x01, 0x80, 0xFF] {
                let mut bad = der.clone();
                bad[i] ^= flip;
                let _ = KeySet::from_pem(&pem("PUBLIC KEY", &bad), None);
                let _ = KeySet::from_pem(&pem("RSA PUBLIC KEY", &bad), None);
            }
        }
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(KeySet::from_pem(&pem("PUBLIC KEY", &trailing), None).is_err());
    }

    #[test]
    fn debug_output_holds_no_key_material() {
        let set = jwks(&[rsa_jwk()]);
        let debug = format!("{set:?}");
        assert!(
            debug.contains("RSA key") && debug.contains("rsa-test"),
            "{debug}"
        );
        let n = rsa_jwk()["n"].as_str().unwrap().to_string();
        assert!(!debug.contains(&n[..12]), "{debug}");
    }

    proptest::proptest! {
        #[test]
        fn from_jwks_never_panics_on_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = KeySet::from_jwks(&bytes);
        }

        #[test]
        fn from_jwks_never_panics_on_odd_keys(
            kty in "(RSA|EC|OKP|oct|[a-z]{0,3})",
            crv in "(P-256|P-384|Ed25519|x)",
            a in "[A-Za-z0-9_=-]{0,90}",
            b in "[A-Za-z0-9_=-]{0,90}",
            alg in "(RS256|ES256|EdDSA|HS256|none|)",
        ) {
            let doc = json!({"keys": [{"kty": kty, "crv": crv, "n": a, "e": b, "x": a, "y": b, "alg": alg}]});
            let _ = KeySet::from_jwks(doc.to_string().as_bytes());
        }

        #[test]
        fn from_pem_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = KeySet::from_pem(&pem("PUBLIC KEY", &body), None);
            let _ = KeySet::from_pem(&pem("RSA PUBLIC KEY", &body), None);
        }
    }
}
