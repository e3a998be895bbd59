// A real OAuth 2.0 authorization server for Scopegate's end-to-end tests:
// panva's oidc-provider (pinned in package.json), client-credentials grant,
// JWT access tokens, plain Bearer, DPoP-bound (RFC 9449, `cnf.jkt`) and
// certificate-bound (RFC 8705, `cnf["x5t#S256"]`) tokens.
//
//   node server.mjs [--port N] [--ca-file ca.pem] [--jwks-file keys.json]
//
// (or IDP_PORT / IDP_CA_FILE / IDP_JWKS_FILE). Port 0 (the default) takes a
// free port. Listens on 127.0.0.1 over plain HTTP and, once ready, prints one
// JSON line: {"issuer", "jwks_uri", "token_endpoint", "resources", "clients"}.
//
// TEST SHORTCUT (mTLS): the server speaks plain HTTP on loopback, so there is
// no TLS handshake to take a client certificate from. The client "presents"
// its certificate in the request header `x-client-cert` instead: either its
// DER in base64 / base64url (one line), or its PEM URL-encoded (as nginx's
// $ssl_client_escaped_cert). `features.mTLS.getCertificate` reads that
// header; with --ca-file, `certificateAuthorized` accepts only certificates
// issued and signed by that CA (and valid now). A real deployment takes the
// certificate from the TLS connection; never trust such a header there.
//
// Signing keys: one ES256 (P-256) and one RS256 (RSA 2048) key generated at
// start, unless --jwks-file gives a private JWK Set. Access tokens for the
// resource https://api.example.test are signed ES256, for
// https://api.example.test/rs256 RS256; both carry the audience
// https://api.example.test.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider from 'oidc-provider';

const AUDIENCE = 'https://api.example.test';
const SCOPES = 'orders:read orders:write payments:read admin';
// resource indicator -> JWS algorithm of its access tokens
const RESOURCES = {
  [AUDIENCE]: 'ES256',
  [`${AUDIENCE}/rs256`]: 'RS256',
};

const CLIENTS = [
  {
    // plain Bearer tokens (also DPoP-bound ones, when the request has a proof)
    client_id: 'bearer-client',
    client_secret: 'bearer-client-secret',
    token_endpoint_auth_method: 'client_secret_post',
  },
  {
    // must send a DPoP proof: its tokens are always DPoP-bound
    client_id: 'dpop-client',
    client_secret: 'dpop-client-secret',
    token_endpoint_auth_method: 'client_secret_post',
    dpop_bound_access_tokens: true,
  },
  {
    // authenticates with its certificate (RFC 8705 §2.1); tokens are
    // bound to that certificate
    client_id: 'mtls-client',
    token_endpoint_auth_method: 'tls_client_auth',
    tls_client_auth_subject_dn: 'CN=mtls-client',
    tls_client_certificate_bound_access_tokens: true,
  },
  {
    // authenticates with a secret, but its tokens are bound to whatever
    // certificate it presents: any client certificate of the test CA
    client_id: 'mtls-secret-client',
    client_secret: 'mtls-secret-client-secret',
    token_endpoint_auth_method: 'client_secret_post',
    tls_client_certificate_bound_access_tokens: true,
  },
].map((c) => ({
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: SCOPES,
  ...c,
}));

function option(name, envName) {
  const i = process.argv.indexOf(`--${name}`);
  if (i !== -1 && i + 1 < process.argv.length) return process.argv[i + 1];
  return process.env[envName];
}

function generatedKeys() {
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  return {
    keys: [
      { ...ec.export({ format: 'jwk' }), kid: 'idp-es256', alg: 'ES256', use: 'sig' },
      { ...rsa.export({ format: 'jwk' }), kid: 'idp-rs256', alg: 'RS256', use: 'sig' },
    ],
  };
}

// The certificate "presented" by the client (see TEST SHORTCUT above).
function certificateFromHeader(ctx) {
  const raw = ctx.get('x-client-cert');
  if (!raw) return undefined;
  try {
    if (raw.startsWith('-----BEGIN') || raw.startsWith('-----') || raw.includes('%')) {
      return new crypto.X509Certificate(decodeURIComponent(raw));
    }
    const der = Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    return new crypto.X509Certificate(der);
  } catch {
    return undefined;
  }
}

function main() {
  const port = Number(option('port', 'IDP_PORT') || 0);
  const caFile = option('ca-file', 'IDP_CA_FILE');
  const jwksFile = option('jwks-file', 'IDP_JWKS_FILE');
  const ca = caFile ? new crypto.X509Certificate(fs.readFileSync(caFile)) : undefined;
  const jwks = jwksFile ? JSON.parse(fs.readFileSync(jwksFile, 'utf8')) : generatedKeys();

  // listen first: the issuer names the port actually taken
  const server = http.createServer();
  server.listen(port, '127.0.0.1', () => {
    const issuer = `http://127.0.0.1:${server.address().port}`;

    const provider = new Provider(issuer, {
      clients: CLIENTS,
      // scopes a client may hold (clients' `scope` must stay within them)
      clientAuthMethods: ['client_secret_post', 'client_secret_basic', 'tls_client_auth'],
      scopes: ['openid', 'offline_access', ...SCOPES.split(' ')],
      jwks,
      cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
      enabledJWA: {
        // the provider's default is ES256 and EdDSA only
        dPoPSigningAlgValues: ['ES256', 'ES384', 'EdDSA', 'Ed25519', 'RS256', 'PS256'],
      },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: true },
        dPoP: { enabled: true },
        mTLS: {
          enabled: true,
          certificateBoundAccessTokens: true,
          tlsClientAuth: true,
          getCertificate: certificateFromHeader,
          certificateAuthorized(ctx) {
            const cert = certificateFromHeader(ctx);
            if (!cert) return false;
            if (!ca) return true; // no CA given: any certificate (tests only)
            const now = Date.now();
            return cert.checkIssued(ca) && cert.verify(ca.publicKey)
              && Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);
          },
          certificateSubjectMatches(ctx, property, expected) {
            const cert = certificateFromHeader(ctx);
            if (!cert) return false;
            switch (property) {
              case 'tls_client_auth_subject_dn':
                // Node writes one RDN a line ("CN=x"); registered as "CN=x" (one RDN)
                return cert.subject.split('\n').join(',') === expected;
              case 'tls_client_auth_san_dns':
                return (cert.subjectAltName || '').split(', ').includes(`DNS:${expected}`);
              default:
                return false;
            }
          },
        },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => AUDIENCE,
          useGrantedResource: () => true,
          getResourceServerInfo(ctx, resourceIndicator) {
            const alg = RESOURCES[resourceIndicator];
            if (!alg) {
              throw new Provider.errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
            }
            return {
              audience: AUDIENCE,
              scope: SCOPES,
              accessTokenTTL: 600,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg } },
            };
          },
        },
      },
    });
    provider.on('server_error', (ctx, err) => {
      process.stderr.write(`idp server_error: ${err && err.stack}\n`);
    });
    if (process.env.IDP_DEBUG) {
      provider.on('grant.error', (ctx, err) => {
        process.stderr.write(`idp grant.error: ${err.message} ${err.error_description || ''}\n`);
      });
    }

    server.on('request', provider.callback());
    process.stdout.write(`${JSON.stringify({
      issuer,
      jwks_uri: `${issuer}/jwks`,
      token_endpoint: `${issuer}/token`,
      audience: AUDIENCE,
      resources: RESOURCES,
      scopes: SCOPES.split(' '),
      clients: Object.fromEntries(CLIENTS.map((c) => [c.client_id, {
        client_secret: c.client_secret,
        token_endpoint_auth_method: c.token_endpoint_auth_method,
      }])),
    })}\n`);
  });

  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
