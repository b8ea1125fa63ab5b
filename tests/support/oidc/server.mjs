// A real OpenID provider (npm `oidc-provider`, pinned in package.json) on loopback, for
// verdict's integration tests: discovery, JWKS, client_credentials tokens (JWT RS256, JWT ES256,
// opaque), introspection and revocation, plus a control API under /__control/ that rotates and
// retires signing keys, breaks the JWKS endpoint on purpose, and counts requests.
//
// Usage: node tests/support/oidc/server.mjs [--port 0] [--issuer-host 127.0.0.1]
//          [--client-id verdict-test] [--client-secret verdict-secret] [--ttl 600]
//          [--pkjwt-jwks FILE] [--state-file PATH] [--exit-on-stdin-close]
//
// With --pkjwt-jwks FILE (a public JWKS, read at start), a second client `verdict-pkjwt` is
// registered that authenticates with RFC 7523 private_key_jwt (client assertions signed with a
// key of that JWKS) at every endpoint: token, introspection and revocation (oidc-provider 8 has
// one authentication method per client, token_endpoint_auth_method, used at all three; there is
// no introspection_endpoint_auth_method metadata in this version). An assertion's `aud` may be
// the issuer, the token endpoint URL or the URL of the endpoint being called (e.g. the
// introspection endpoint); its `alg` one of CLIENT_AUTH_ALGS below except the HS ones; its
// `jti` is single-use. Every confidential client may introspect tokens issued to the other
// (features.introspection.allowedPolicy below); revocation stays owner-only (oidc-provider
// hard-codes that: another client's token gets 400 invalid_request).
//
// Listens on 127.0.0.1 only. When ready it prints exactly one line on stdout:
//   READY {"port":N,"issuer":"http://127.0.0.1:N","jwks_uri":...,"token_endpoint":...,...}
// and then logs every request (method, path, status, duration) to stderr.
//
// With --state-file, the signing keys (rotation state included) and the issued opaque tokens are
// saved there and loaded again at start, so a restart on the same port is the same provider.
//
// Control API (loopback only, JSON answers):
//   POST /__control/rotate      new RSA + EC keys with new kids, published FIRST (new tokens are
//                               signed with them), old keys still published
//                               -> {"new_kids":[..],"old_kids":[..],"published_kids":[..]}
//   POST /__control/retire      drop all but the newest key of each type
//                               -> {"published_kids":[..],"retired_kids":[..]}
//   GET  /__control/keys        -> {"published_kids":[..],"rsa_kid":..,"ec_kid":..}
//   GET  /__control/log         -> {"counts":{path:n},"jwks_requests":n,"jwks_request_times_ms":[..],
//                                   "total":n} (control requests are not counted)
//   POST /__control/log/reset   -> {"ok":true}
//   POST /__control/jwks-mode   body {"mode":"normal"|"error500"|"notjson"|"hang","delay_ms":0,
//                               "cache_control":"max-age=60"} (delay and header optional; the
//                               header goes on normal answers only; a hung request is dropped
//                               when the mode changes) -> the mode now in force
//   POST /__control/ttl         body {"seconds":N}: access-token lifetime for tokens issued next

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

// ---------------------------------------------------------------------------------------------
// Command line.

function parseArgs(argv) {
  const opts = {
    port: 0,
    issuerHost: '127.0.0.1',
    clientId: 'verdict-test',
    clientSecret: 'verdict-secret',
    ttl: 600,
    pkjwtJwks: undefined,
    stateFile: undefined,
    exitOnStdinClose: false,
  };
  const value = (i, name) => {
    if (i >= argv.length) die(`${name} needs a value`);
    return argv[i];
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    switch (arg) {
      case '--port': opts.port = Number(value(++i, arg)); break;
      case '--issuer-host': opts.issuerHost = value(++i, arg); break;
      case '--client-id': opts.clientId = value(++i, arg); break;
      case '--client-secret': opts.clientSecret = value(++i, arg); break;
      case '--ttl': opts.ttl = Number(value(++i, arg)); break;
      case '--pkjwt-jwks': opts.pkjwtJwks = value(++i, arg); break;
      case '--state-file': opts.stateFile = value(++i, arg); break;
      case '--exit-on-stdin-close': opts.exitOnStdinClose = true; break;
      default: die(`unknown argument ${arg}`);
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) die('bad --port');
  if (!Number.isInteger(opts.ttl) || opts.ttl <= 0) die('bad --ttl');
  return opts;
}

function die(message) {
  process.stderr.write(`oidc server: ${message}\n`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));

// The private_key_jwt client's id, and its public JWKS (from --pkjwt-jwks) or undefined.
const PKJWT_CLIENT_ID = 'verdict-pkjwt';

function readPkjwtJwks(file) {
  if (file === undefined) return undefined;
  let jwks;
  try {
    jwks = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    die(`--pkjwt-jwks ${file}: ${err.message}`);
  }
  if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) die(`--pkjwt-jwks ${file}: not a JWKS with keys`);
  const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];
  if (jwks.keys.some((k) => privateMembers.some((m) => m in k))) {
    die(`--pkjwt-jwks ${file}: the JWKS must hold public keys only`);
  }
  return jwks;
}

const pkjwtJwks = readPkjwtJwks(opts.pkjwtJwks);

// JWS algorithms accepted for client assertions (private_key_jwt uses the asymmetric ones,
// client_secret_jwt the HS ones). oidc-provider's default is HS256, RS256, PS256, ES256, EdDSA.
const CLIENT_AUTH_ALGS = [
  'HS256', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA',
];

// Access-token lifetime, changeable at run time through /__control/ttl.
let ttl = opts.ttl;

// ---------------------------------------------------------------------------------------------
// State: signing keys (newest first) and stored tokens, optionally persisted to --state-file.

let keys = []; // private JWKs with kid, alg, use; newest first
let generation = 0; // grows with every key made, part of the kids
const tokens = new Map(); // adapter key -> { payload, expiresAt (ms) | null }

function loadState() {
  if (!opts.stateFile || !fs.existsSync(opts.stateFile)) return false;
  const state = JSON.parse(fs.readFileSync(opts.stateFile, 'utf8'));
  keys = state.keys;
  generation = state.generation;
  const now = Date.now();
  for (const [key, entry] of Object.entries(state.tokens ?? {})) {
    if (entry.expiresAt === null || entry.expiresAt > now) tokens.set(key, entry);
  }
  return true;
}

function saveState() {
  if (!opts.stateFile) return;
  const state = { keys, generation, tokens: Object.fromEntries(tokens) };
  const tmp = `${opts.stateFile}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state));
  fs.renameSync(tmp, opts.stateFile);
}

function newKey(type) {
  generation += 1;
  const kid = `${type}-${generation}-${randomBytes(4).toString('hex')}`;
  if (type === 'rsa') {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };
}

const kids = (list) => list.map((k) => k.kid);
const newest = (kty) => keys.find((k) => k.kty === kty);

// A Map-based adapter shared by every Provider instance of this process (a rotation builds a
// new instance), so tokens issued before a rotation still introspect and revoke after it.
class SharedAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : null;
    tokens.set(this.key(id), { payload, expiresAt });
    saveState();
  }

  async find(id) {
    const entry = tokens.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= Date.now()) {
      tokens.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) {
    for (const [key, entry] of tokens) {
      if (key.startsWith(`${this.model}:`) && entry.payload.uid === uid) return entry.payload;
    }
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [key, entry] of tokens) {
      if (key.startsWith(`${this.model}:`) && entry.payload.userCode === userCode) {
        return entry.payload;
      }
    }
    return undefined;
  }

  async consume(id) {
    const entry = tokens.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    saveState();
  }

  async destroy(id) {
    tokens.delete(this.key(id));
    saveState();
  }

  async revokeByGrantId(grantId) {
    for (const [key, entry] of tokens) {
      if (entry.payload.grantId === grantId) tokens.delete(key);
    }
    saveState();
  }
}

// ---------------------------------------------------------------------------------------------
// Resource servers (resource indicators, RFC 8707).

const SCOPE = 'read write';

function resourceServer(resource) {
  switch (resource) {
    case 'api://rs256':
      return {
        scope: SCOPE, audience: resource, accessTokenTTL: ttl, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } },
      };
    case 'api://es256':
      return {
        scope: SCOPE, audience: resource, accessTokenTTL: ttl, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } },
      };
    case 'api://opaque':
      return {
        scope: SCOPE, audience: resource, accessTokenTTL: ttl, accessTokenFormat: 'opaque',
      };
    default:
      throw new errors.InvalidTarget(`unknown resource ${resource} (try api://rs256, api://es256 or api://opaque)`);
  }
}

function clients() {
  const list = [{
    client_id: opts.clientId,
    client_secret: opts.clientSecret,
    // client_secret_post works as well: oidc-provider accepts either for a secret client.
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: SCOPE,
  }];
  if (pkjwtJwks !== undefined) {
    list.push({
      client_id: PKJWT_CLIENT_ID,
      // The one authentication method of an oidc-provider 8 client: it applies to the token,
      // introspection and revocation endpoints alike.
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: pkjwtJwks,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: SCOPE,
    });
  }
  return list;
}

// Whether `client` may introspect `token`: any authenticated (confidential) client may, whoever
// the token was issued to; a public client ('none') only its own tokens (oidc-provider's default
// rule, stated here so that it is explicit and the provider does not warn about it).
async function introspectionAllowed(_ctx, client, token) {
  return client.clientAuthMethod !== 'none' || token.clientId === client.clientId;
}

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    adapter: SharedAdapter,
    clients: clients(),
    enabledJWA: { clientAuthSigningAlgValues: CLIENT_AUTH_ALGS },
    jwks: { keys },
    scopes: ['openid', 'read', 'write'],
    cookies: { keys: ['verdict-test-cookie-key'] },
    findAccount: async () => undefined,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: introspectionAllowed },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: async () => false,
        getResourceServerInfo: async (_ctx, resource) => resourceServer(resource),
      },
    },
    ttl: {
      ClientCredentials: () => ttl,
      AccessToken: () => ttl,
    },
  });
  provider.on('server_error', (_ctx, err) => {
    process.stderr.write(`oidc server: server_error: ${err?.stack ?? err}\n`);
  });
  // The answers say only "client authentication failed": log why (bad aud, alg, signature,
  // replayed jti...) to stderr, which the tests show when they fail.
  for (const event of ['grant.error', 'introspection.error', 'revocation.error']) {
    provider.on(event, (_ctx, err) => {
      const detail = err?.error_detail ? ` (${err.error_detail})` : '';
      process.stderr.write(`oidc server: ${event}: ${err?.error ?? err?.message ?? err}: ${err?.error_description ?? ''}${detail}\n`);
    });
  }
  return provider;
}

// ---------------------------------------------------------------------------------------------
// Request log and JWKS failure modes.

const RECENT_JWKS = 1000;
let counts = {};
let jwksTimes = [];
let total = 0;
let jwksMode = 'normal';
let jwksDelayMs = 0;
let jwksCacheControl; // a Cache-Control header for normal JWKS answers (oidc-provider sets none)
const hung = new Set();

function count(path) {
  total += 1;
  counts[path] = (counts[path] ?? 0) + 1;
  if (path === JWKS_PATH) {
    jwksTimes.push(Date.now());
    if (jwksTimes.length > RECENT_JWKS) jwksTimes = jwksTimes.slice(-RECENT_JWKS);
  }
}

const JWKS_PATH = '/jwks';

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function jsonBody(req) {
  const text = await readBody(req);
  if (!text.trim()) return {};
  return JSON.parse(text);
}

function isLoopback(address) {
  return address === '127.0.0.1' || address === '::1' || address?.startsWith('::ffff:127.')
    || address?.startsWith('127.');
}

let issuer;
let provider;
let handler;

function swapProvider() {
  provider = buildProvider(issuer);
  handler = provider.callback();
}

async function control(req, res, path) {
  if (!isLoopback(req.socket.remoteAddress)) {
    sendJson(res, 403, { error: 'control API is loopback only' });
    return;
  }
  const route = `${req.method} ${path}`;
  switch (route) {
    case 'POST /__control/rotate': {
      const oldKids = kids(keys);
      const fresh = [newKey('rsa'), newKey('ec')];
      keys = [...fresh, ...keys];
      saveState();
      swapProvider();
      sendJson(res, 200, { new_kids: kids(fresh), old_kids: oldKids, published_kids: kids(keys) });
      return;
    }
    case 'POST /__control/retire': {
      const keep = [newest('RSA'), newest('EC')].filter(Boolean);
      const retired = keys.filter((k) => !keep.includes(k));
      keys = keys.filter((k) => keep.includes(k));
      saveState();
      swapProvider();
      sendJson(res, 200, { published_kids: kids(keys), retired_kids: kids(retired) });
      return;
    }
    case 'GET /__control/keys':
      sendJson(res, 200, {
        published_kids: kids(keys), rsa_kid: newest('RSA')?.kid, ec_kid: newest('EC')?.kid,
      });
      return;
    case 'GET /__control/log':
      sendJson(res, 200, {
        counts,
        jwks_requests: counts[JWKS_PATH] ?? 0,
        jwks_request_times_ms: jwksTimes,
        total,
      });
      return;
    case 'POST /__control/log/reset':
      counts = {};
      jwksTimes = [];
      total = 0;
      sendJson(res, 200, { ok: true });
      return;
    case 'POST /__control/jwks-mode': {
      const body = await jsonBody(req);
      const modes = ['normal', 'error500', 'notjson', 'hang'];
      if (!modes.includes(body.mode)) {
        sendJson(res, 400, { error: `mode must be one of ${modes.join(', ')}` });
        return;
      }
      const delay = body.delay_ms ?? 0;
      if (!Number.isInteger(delay) || delay < 0) {
        sendJson(res, 400, { error: 'delay_ms must be a non-negative integer' });
        return;
      }
      if (body.cache_control !== undefined && typeof body.cache_control !== 'string') {
        sendJson(res, 400, { error: 'cache_control must be a string' });
        return;
      }
      jwksMode = body.mode;
      jwksDelayMs = delay;
      jwksCacheControl = body.cache_control;
      if (jwksMode !== 'hang') {
        for (const r of hung) r.destroy();
        hung.clear();
      }
      sendJson(res, 200, { mode: jwksMode, delay_ms: jwksDelayMs, cache_control: jwksCacheControl });
      return;
    }
    case 'POST /__control/ttl': {
      const body = await jsonBody(req);
      if (!Number.isInteger(body.seconds) || body.seconds <= 0) {
        sendJson(res, 400, { error: 'seconds must be a positive integer' });
        return;
      }
      ttl = body.seconds;
      sendJson(res, 200, { seconds: ttl });
      return;
    }
    default:
      sendJson(res, 404, { error: `no control route ${route}` });
  }
}

// Serves the JWKS request itself when the mode says so; false lets the provider answer.
async function jwksOverride(req, res) {
  if (jwksDelayMs > 0) await new Promise((r) => { setTimeout(r, jwksDelayMs); });
  switch (jwksMode) {
    case 'error500':
      sendJson(res, 500, { error: 'server_error', error_description: 'jwks-mode error500' });
      return true;
    case 'notjson':
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 21 });
      res.end('<html>not json</html>');
      return true;
    case 'hang':
      hung.add(res.socket);
      res.socket.on('close', () => hung.delete(res.socket));
      process.stderr.write(`${new Date().toISOString()} ${req.method} ${req.url} hanging (jwks-mode hang)\n`);
      return true;
    default:
      if (jwksCacheControl !== undefined) res.setHeader('cache-control', jwksCacheControl);
      return false;
  }
}

async function dispatch(req, res) {
  const started = process.hrtime.bigint();
  const path = (req.url ?? '/').split('?')[0];
  res.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    process.stderr.write(`${new Date().toISOString()} ${req.method} ${path} ${res.statusCode} ${ms.toFixed(1)}ms\n`);
  });
  try {
    if (path.startsWith('/__control/')) {
      await control(req, res, path);
      return;
    }
    count(path);
    if (path === JWKS_PATH && await jwksOverride(req, res)) return;
    handler(req, res);
  } catch (err) {
    process.stderr.write(`oidc server: ${err?.stack ?? err}\n`);
    if (!res.headersSent) sendJson(res, 500, { error: String(err?.message ?? err) });
    else res.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Start.

const server = http.createServer((req, res) => { dispatch(req, res); });

function listen(deadline) {
  return new Promise((resolve, reject) => {
    const onError = (err) => {
      server.off('listening', onListening);
      // A restart on the same port may race the old process's exit: retry for a while.
      if (err.code === 'EADDRINUSE' && Date.now() < deadline) {
        setTimeout(() => listen(deadline).then(resolve, reject), 100);
      } else {
        reject(err);
      }
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(opts.port, '127.0.0.1');
  });
}

if (!loadState()) {
  keys = [newKey('rsa'), newKey('ec')];
  saveState();
}

try {
  await listen(Date.now() + 10_000);
} catch (err) {
  die(`cannot listen on 127.0.0.1:${opts.port}: ${err.message}`);
}

const { port } = server.address();
issuer = `http://${opts.issuerHost}:${port}`;
swapProvider();

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
if (opts.exitOnStdinClose) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

process.stdout.write(`READY ${JSON.stringify({
  port,
  issuer,
  discovery_uri: `${issuer}/.well-known/openid-configuration`,
  jwks_uri: `${issuer}${JWKS_PATH}`,
  token_endpoint: `${issuer}/token`,
  introspection_endpoint: `${issuer}/token/introspection`,
  revocation_endpoint: `${issuer}/token/revocation`,
  client_id: opts.clientId,
  client_secret: opts.clientSecret,
  pkjwt_client_id: pkjwtJwks !== undefined ? PKJWT_CLIENT_ID : null,
  published_kids: kids(keys),
})}\n`);
