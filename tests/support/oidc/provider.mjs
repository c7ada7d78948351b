// A real OpenID Connect provider (panva/oidc-provider) shaped like a Keycloak realm, for AstraGo's tests.
//
// Usage: node provider.mjs <port> <config.json>
//   config.json: {"realm": "astrago", "clients": [...oidc-provider client metadata...],
//                 "users": {"<id>": {"password": "...", "preferred_username": "...", "email": "...",
//                            "realm_roles": [...], "groups": [...]}},
//                 "audience": "astrago-client", "access_token_ttl": 300}
//
// The issuer is http://127.0.0.1:<port>/realms/<realm>, as Keycloak's. ID tokens, userinfo and JWT access
// tokens carry Keycloak's claims: preferred_username, realm_access.roles and groups (full group paths).
// A small control API under /__control lets a test change the IdP while AstraGo runs:
//   POST /__control/users/<id>   {"realm_roles": [...], "groups": [...], "disabled": true}  edits a user
//   POST /__control/rotate                                                   signs with a new key from now on
// Printed on stdout once listening: {"issuer": "..."}.
import http from 'node:http';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

const port = Number(process.argv[2]);
const config = JSON.parse(readFileSync(process.argv[3], 'utf8'));
const realmPath = `/realms/${config.realm || 'astrago'}`;
const issuer = `http://127.0.0.1:${port}${realmPath}`;
const audience = config.audience || 'astrago-client';
const users = config.users || {};
const keys = [];

async function newSigningKey() {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

function keycloakClaims(id) {
  const user = users[id];
  return {
    sub: id,
    preferred_username: user.preferred_username || id,
    email: user.email,
    name: user.name || user.preferred_username || id,
    realm_access: { roles: user.realm_roles || [] },
    groups: user.groups || [],
  };
}

function buildProvider() {
  const provider = new Provider(issuer, {
    clients: config.clients,
    jwks: { keys: [...keys].reverse() }, // the newest key signs; older ones stay published for verification
    findAccount: async (_ctx, id) => {
      if (!users[id] || users[id].disabled) return undefined;
      return { accountId: id, claims: async () => keycloakClaims(id) };
    },
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name', 'realm_access', 'groups'],
      email: ['email'],
    },
    conformIdTokenClaims: false, // Keycloak puts the profile claims in the ID token too
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:astrago:api',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'openid profile email offline_access',
          audience,
          accessTokenFormat: 'jwt',
          accessTokenTTL: config.access_token_ttl || 300,
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: async (_ctx, token) => {
      if (token.accountId && users[token.accountId]) {
        const { realm_access, groups, preferred_username } = keycloakClaims(token.accountId);
        return { realm_access, groups, preferred_username };
      }
      const client = token.client || {};
      const extra = (config.service_accounts || {})[client.clientId];
      if (extra) {
        return {
          preferred_username: `service-account-${client.clientId}`,
          realm_access: { roles: extra.realm_roles || [] },
          groups: extra.groups || [],
          azp: client.clientId,
        };
      }
      return {};
    },
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access') || client.grantTypeAllowed('refresh_token'),
    pkce: { required: () => true },
    ttl: {
      AccessToken: config.access_token_ttl || 300,
      IdToken: 300,
      DeviceCode: 300,
      Interaction: 600,
      Grant: 3600,
      Session: 3600,
      RefreshToken: 3600,
      AuthorizationCode: 60,
      ClientCredentials: config.access_token_ttl || 300,
    },
    cookies: { keys: ['astrago-test-oidc-cookie-key'] },
    loadExistingGrant: async (ctx) => {
      // Keycloak's default: no consent screen for the platform's own clients.
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid profile email offline_access');
      grant.addResourceScope('urn:astrago:api', 'openid profile email offline_access');
      await grant.save();
      return grant;
    },
  });
  provider.proxy = false;
  return provider;
}

keys.push(await newSigningKey());
let provider = buildProvider();

function control(req, res, body) {
  const send = (status, value) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  const userMatch = req.url.match(/^\/__control\/users\/([^/]+)$/);
  if (req.method === 'POST' && userMatch) {
    const id = decodeURIComponent(userMatch[1]);
    users[id] = { ...(users[id] || {}), ...JSON.parse(body || '{}') };
    return send(200, users[id]);
  }
  if (req.method === 'POST' && req.url === '/__control/rotate') {
    newSigningKey().then((key) => {
      keys.push(key);
      provider = buildProvider();
      send(200, { kid: key.kid });
    });
    return undefined;
  }
  return send(404, { error: 'unknown control call' });
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/__control/')) {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => control(req, res, body));
    return;
  }
  if (!req.url.startsWith(realmPath)) {
    res.writeHead(404);
    res.end('not found');
    return;
  }
  // The provider is mounted under the realm's path, as Keycloak serves it.
  req.originalUrl = req.url;
  req.url = req.url.slice(realmPath.length) || '/';
  if (req.method === 'POST' && /^\/interaction\/[^/]+$/.test(req.url)) {
    checkPassword(req, res);
    return;
  }
  provider.callback()(req, res);
});

// devInteractions' login form accepts any password; check the configured one, as a real IdP does. The body
// read here is handed on as req.body (oidc-provider reads a consumed body from there).
function checkPassword(req, res) {
  let raw = '';
  req.on('data', (chunk) => { raw += chunk; });
  req.on('end', () => {
    const form = new URLSearchParams(raw);
    const user = users[form.get('login')];
    if (form.get('prompt') === 'login' && (!user || user.disabled || user.password !== form.get('password'))) {
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end('invalid username or password');
      return;
    }
    req.body = raw;
    provider.callback()(req, res);
  });
}

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
