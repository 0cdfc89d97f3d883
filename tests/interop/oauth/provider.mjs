// tests/interop/oauth/provider.mjs: a real OAuth 2.1 authorization server (npm `oidc-provider`,
// pinned by scripts/setup-interop.sh into $OIDC_PROVIDER_DIR) for FlowGuard's resource-server tests.
//
//   node provider.mjs --port P --keys KEYS.json --resource R [--ttl SECONDS] [--short-ttl SECONDS]
//                     [--rotate-file F]
//
// Prints `ready http://127.0.0.1:P` on stdout once listening (only 127.0.0.1), then one line
// `rotated KID` after each key rotation. Everything else (oidc-provider's warnings) goes to stderr.
//
//   issuer        http://127.0.0.1:P
//   discovery     /.well-known/openid-configuration (oidc-provider's own) and the same document at
//                 /.well-known/oauth-authorization-server (RFC 8414; mcp 2.3.0's client asks there
//                 first and falls back to the OIDC URL on a 4xx)
//   jwks_uri      /jwks          token endpoint  /token
//   clients       fg-test / fg-test-secret        (client_secret_basic, the Python SDK's default)
//                 fg-test-post / fg-test-secret   (client_secret_post)
//                 fg-test-short / fg-test-secret  (client_secret_basic; its tokens live --short-ttl)
//                 all: grant_types [client_credentials], scope "mcp:tools mcp:admin"
//   resources     only R and R + "-other" (RFC 8707 `resource`; anything else -> invalid_target).
//                 Access tokens for them are JWTs (typ at+jwt, RS256) with aud = the resource,
//                 iss, sub = client_id, client_id, scope (requested scopes within mcp:tools,
//                 mcp:admin), iat, exp = iat + ttl, jti. Without `resource` the token is opaque.
//   --ttl S       access token lifetime in seconds (default 600)
//   --short-ttl S lifetime of fg-test-short's tokens (default 1): expired tokens from the same
//                 issuer and keys without a second provider
//   --keys F      JWKS with private keys; the first RS256 key signs. Created (one fresh RSA key)
//                 when F does not exist.
//   rotation      when the file given by --rotate-file appears (polled every 100 ms), or on
//                 SIGUSR2: a new RSA key (new kid) is generated, F (--keys) is rewritten as
//                 [new, ...old], a new Provider is built with it and swapped in behind the same
//                 listening socket (port unchanged), the rotate file is deleted, and
//                 `rotated NEWKID` is printed. /jwks then lists the new key first and the old ones
//                 after; tokens issued afterwards carry the new kid.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    port: { type: 'string' },
    keys: { type: 'string' },
    resource: { type: 'string' },
    ttl: { type: 'string', default: '600' },
    'short-ttl': { type: 'string', default: '1' },
    'rotate-file': { type: 'string' },
  },
});
for (const k of ['port', 'keys', 'resource']) {
  if (!opt[k]) {
    console.error(`provider.mjs: --${k} is required`);
    process.exit(2);
  }
}
const PORT = Number(opt.port);
const TTL = Number(opt.ttl);
const SHORT_TTL = Number(opt['short-ttl']);
const ISSUER = `http://127.0.0.1:${PORT}`;
const RESOURCES = new Set([opt.resource, `${opt.resource}-other`]);
const SCOPES = ['mcp:tools', 'mcp:admin'];

const dir = process.env.OIDC_PROVIDER_DIR;
if (!dir) {
  console.error('provider.mjs: OIDC_PROVIDER_DIR unset: source .interop/env.sh (scripts/setup-interop.sh)');
  process.exit(2);
}
const pkgDir = join(dir, 'node_modules', 'oidc-provider');
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const { default: Provider, errors } = await import(pathToFileURL(join(pkgDir, pkg.main || 'lib/index.js')).href);

function newRsaJwk() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: `k-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' };
}

function loadKeys() {
  if (!existsSync(opt.keys)) {
    writeJson(opt.keys, { keys: [newRsaJwk()] });
  }
  const jwks = JSON.parse(readFileSync(opt.keys, 'utf8'));
  if (!Array.isArray(jwks.keys) || !jwks.keys.length) throw new Error(`${opt.keys}: no keys`);
  return jwks;
}

function writeJson(file, value) {
  writeFileSync(`${file}.tmp`, JSON.stringify(value, null, 2));
  renameSync(`${file}.tmp`, file);
}

const client = (id, method) => ({
  client_id: id,
  client_secret: 'fg-test-secret',
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: method,
  scope: SCOPES.join(' '),
});

function build(jwks) {
  const provider = new Provider(ISSUER, {
    jwks,
    clients: [
      client('fg-test', 'client_secret_basic'),
      client('fg-test-post', 'client_secret_post'),
      client('fg-test-short', 'client_secret_basic'),
    ],
    scopes: SCOPES,
    claims: { openid: ['sub'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resourceIndicator, cl) => {
          if (!RESOURCES.has(resourceIndicator)) {
            throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
          }
          return {
            audience: resourceIndicator,
            scope: SCOPES.join(' '),
            accessTokenTTL: cl?.clientId === 'fg-test-short' ? SHORT_TTL : TTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    ttl: {
      AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL ?? TTL,
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? TTL,
    },
    cookies: { keys: [randomBytes(16).toString('hex')] },
  });
  provider.on('server_error', (ctx, err) => console.error('provider.mjs: server_error', err));
  provider.on('grant.error', (ctx, err) => console.error(`provider.mjs: token error ${err.error}: ${err.error_description}`));
  return provider;
}

let jwks = loadKeys();
let handler = build(jwks).callback();

const server = createServer((req, res) => {
  // RFC 8414 metadata: the same document oidc-provider serves as OpenID discovery.
  const [path, query] = req.url.split('?');
  if (path === '/.well-known/oauth-authorization-server') {
    req.url = `/.well-known/openid-configuration${query === undefined ? '' : `?${query}`}`;
  }
  console.error(`provider.mjs: ${req.method} ${path}`);
  handler(req, res);
});

function rotate(why) {
  const fresh = newRsaJwk();
  jwks = { keys: [fresh, ...jwks.keys] };
  writeJson(opt.keys, jwks);
  handler = build(jwks).callback();
  console.error(`provider.mjs: rotated to ${fresh.kid} (${why})`);
  process.stdout.write(`rotated ${fresh.kid}\n`);
}

process.on('SIGUSR2', () => rotate('SIGUSR2'));
if (opt['rotate-file']) {
  setInterval(() => {
    if (existsSync(opt['rotate-file'])) {
      rmSync(opt['rotate-file'], { force: true });
      rotate(opt['rotate-file']);
    }
  }, 100).unref();
}
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));

server.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`ready ${ISSUER}\n`);
});
