// tests/interop/oauth/token.mjs: get an access token from provider.mjs with client_credentials.
//
//   node token.mjs --issuer URL --resource R [--scope S] [--client fg-test|fg-test-post|fg-test-short] [--forge]
//                  [--decode] [--response]
//
// Discovers the token endpoint from URL/.well-known/oauth-authorization-server, posts
// grant_type=client_credentials&resource=R[&scope=S] (client fg-test with HTTP Basic by default;
// fg-test-post sends the secret in the body; fg-test-short gets --short-ttl tokens), and prints
// the access token on stdout.
//   --scope S    space-separated scopes (default: none requested -> token without scope)
//   --forge      print instead a token with the same header fields and claims, signed (RS256) by a
//                freshly generated key that is in no JWKS, with kid "forged-<hex>"
//   --decode     print `{"header":...,"payload":...}` of the (possibly forged) token instead
//   --response   print the token endpoint's whole JSON response instead (not with --forge)
// Exit 1 (message on stderr) when the provider refuses, e.g. invalid_target for an unknown resource.
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    issuer: { type: 'string' },
    resource: { type: 'string' },
    scope: { type: 'string' },
    client: { type: 'string', default: 'fg-test' },
    secret: { type: 'string', default: 'fg-test-secret' },
    forge: { type: 'boolean', default: false },
    decode: { type: 'boolean', default: false },
    response: { type: 'boolean', default: false },
  },
});
const die = (msg) => { console.error(`token.mjs: ${msg}`); process.exit(1); };
if (!opt.issuer || !opt.resource) die('--issuer and --resource are required');

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const part = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
export const decode = (jwt) => { const [h, p] = jwt.split('.'); return { header: part(h), payload: part(p) }; };

const signal = AbortSignal.timeout(10_000);
const issuer = opt.issuer.replace(/\/$/, '');
const metaRes = await fetch(`${issuer}/.well-known/oauth-authorization-server`, { signal });
if (!metaRes.ok) die(`metadata: HTTP ${metaRes.status}`);
const meta = await metaRes.json();

const body = new URLSearchParams({ grant_type: 'client_credentials', resource: opt.resource });
if (opt.scope) body.set('scope', opt.scope);
const headers = { 'content-type': 'application/x-www-form-urlencoded' };
if (opt.client === 'fg-test-post') {
  body.set('client_id', opt.client);
  body.set('client_secret', opt.secret);
} else {
  headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(opt.client)}:${encodeURIComponent(opt.secret)}`).toString('base64')}`;
}
const res = await fetch(meta.token_endpoint, { method: 'POST', headers, body, signal });
const json = await res.json().catch(() => ({}));
if (!res.ok || !json.access_token) die(`token endpoint: HTTP ${res.status} ${JSON.stringify(json)}`);

let token = json.access_token;
if (opt.forge) {
  const { header, payload } = decode(token);
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const h = { ...header, alg: 'RS256', kid: `forged-${randomBytes(6).toString('hex')}` };
  const input = `${b64url(JSON.stringify(h))}.${b64url(JSON.stringify(payload))}`;
  token = `${input}.${b64url(sign('sha256', Buffer.from(input), createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }))))}`;
}
if (opt.decode) console.log(JSON.stringify(decode(token)));
else if (opt.response && !opt.forge) console.log(JSON.stringify(json));
else console.log(token);
