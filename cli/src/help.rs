//! What `scopegate --help` and `scopegate COMMAND --help` print: every
//! option with its default.

use scopegate::vocab::alg::Alg;

pub const USAGE: &str = "usage:
  scopegate check-config [--registry FILE] [--revocation FILE] FILE...
  scopegate explain --config FILE [--select WHERE] --method M --path P [--token T]
                    [--header 'Name: value']... [--now UNIX_SECONDS] [--jwks PROVIDER=FILE]...
                    [--registry FILE] [--revocation FILE]
                    [--status-list URI=FILE]...
  scopegate report [--config FILE] [--registry FILE] [--since T] [--unused-days N]
                   [--now T] [--format text|json|html] [-o FILE] LOG...
  scopegate schema [--registry]
  scopegate token --key FILE [--alg ALG] [--kid KID] [--iss ISS] [--sub SUB] [--aud AUD]...
                  [--scope 'a b'] [--client-id ID] [--ttl SECONDS] [--now UNIX_SECONDS]
                  [--claim NAME=VALUE]... [--claims JSON]
  scopegate jwks --key FILE[=KID]...
  scopegate --version

`scopegate COMMAND --help` describes a command and its defaults.";

const FILES: &str =
    "FILE may be the configuration itself (JSON or YAML), or a file it is deployed in:
  Kong declarative kong.yml (filter chains and plugins named `scopegate`),
  Kong Admin API bodies (filter chain or plugin; `config` may be a JSON string),
  Istio WasmPlugin and TrafficExtension, Envoy Gateway EnvoyExtensionPolicy,
  Envoy bootstraps and ECDS resources (the Wasm filter running scopegate.wasm),
  multi-document YAML. `-` reads standard input. A .json file, or input that
  starts with `{`, is read as JSON; anything else as YAML. A member given twice
  in one object is refused.";

pub const CHECK_CONFIG: &str =
    "usage: scopegate check-config [--registry FILE] [--revocation FILE] FILE...

Validates every Scopegate configuration found in each FILE with the filter's
own code: the same checks and messages as the filter when it is configured.

A FILE that is the configuration itself prints `ok`, or one line per fault
starting with its JSON Pointer. Any other FILE prints one line per configuration
found, `FILE: WHERE: ok`, or per fault, `FILE: WHERE: /pointer: message`, where
WHERE is the path to it in FILE (e.g. services[0].filter_chains[0].filters[0].config).

Options:
  --registry FILE      also validate an identity registry document, as a registry
                       `uri` serves it ({\"identities\": [...]}, JSON or YAML), with
                       the filter's own checks, against each configuration's
                       provider names: after each configuration's line(s), one
                       line `REG: ok`, or one per fault, `REG: /pointer: message`
                       (REG: the document's FILE; prefixed like the
                       configuration's lines). Default: none
  --revocation FILE    also validate a revocation list document, as a revocation
                       `uri` serves it ({\"tokens\": [...], \"clients\": [...],
                       \"subjects\": [...]}, JSON or YAML), with the filter's own
                       checks, against each configuration's provider names:
                       `REV: ok`, or one line per fault, `REV: /pointer: message`,
                       like --registry. Default: none

Warnings (stderr; they do not change the exit code): rules that an earlier rule
always matches first, so they can never match; fetched key sets (`jwks.uri`)
without `cluster` (the default upstream is the URI's authority); a --registry
document given for a configuration whose registry is inline or absent, or a
--revocation document for one whose revocation list is inline or absent (it
would not be used).

Exit: 0 every configuration (and the --registry and --revocation documents) is
valid; 1 a configuration or a --registry or --revocation document has faults, a
configuration is missing where the filter expects it, or a FILE is not
well-formed JSON/YAML; 2 usage errors, unreadable FILE, or a FILE with no
Scopegate configuration in it.

";

pub const EXPLAIN: &str =
    "usage: scopegate explain --config FILE [--select WHERE] --method M --path P
                         [--token T] [--header 'Name: value']... [--now UNIX_SECONDS]
                         [--jwks PROVIDER=FILE]... [--registry FILE]
                         [--revocation FILE] [--status-list URI=FILE]...
                         [--client-cert PEM_FILE]

Prints, as JSON, what the filter decides for one request and what the gateway
does: decision, status, reason, rule, message, provider, identity, the identity
headers set, the normalized and forwarded path, `response` (the status, headers
and body the gateway answers with, or null when the request goes upstream),
`enforced` (false in dry run), `would_pass` (the request reaches the upstream),
in dry run `response_if_enforced`, and `registration`: what the identity
registry says of the verified caller (null when no registry was consulted,
{\"registered\": false}, or {\"registered\": true, \"owner\", \"scopes_dropped\"}:
the token's scopes outside the identity's `max_scopes`). Exit 0 whatever the
decision; exit 2 on usage errors and invalid inputs.

Options:
  --config FILE        the configuration, or a file holding it (see below)
  --select WHERE       which configuration, when FILE holds several: WHERE as
                       `check-config` prints it, a filter or plugin holding it,
                       or a JSON Pointer. Default: the only one found
  --method M           request method (required)
  --path P             request target as received, query included (required)
  --token T            sent as `Authorization: Bearer T`. Default: no token
  --header 'N: v'      another request header; repeatable. Default: none
  --now UNIX_SECONDS   the time for every time check. Default: the clock
  --client-cert FILE   the connection's client certificate (PEM), for
                       certificate-bound tokens (cnf x5t#S256). Default: none.
                       DPoP proofs go in --header 'DPoP: ...' with
                       --header 'Authorization: DPoP <token>' and
                       --header 'Host: ...'; each is judged as on first sight
  --jwks PROVIDER=FILE key set (JWK Set JSON) of a provider whose keys come from
                       a `uri`; the tool never goes to the network. Default: none
                       (such providers answer 503 jwks_unavailable)
  --registry FILE      the identity registry document ({\"identities\": [...]}, JSON
                       or YAML) when the configuration's registry comes from a
                       `uri`: validated like the fetched document, faults exit 2.
                       A usage error when the registry is inline or absent.
                       Default: none: the decision the filter makes before the
                       registry has arrived (a valid token that reaches the
                       registry check: 503 registry_unavailable)
  --revocation FILE    the revocation list document ({\"tokens\": [...],
                       \"clients\": [...], \"subjects\": [...]}, JSON or YAML) when
                       the configuration's list comes from a `uri`: validated
                       like the fetched document, faults exit 2. A usage error
                       when the list is inline or absent. Default: none: the
                       decision the filter makes before the list has arrived
                       (a valid token: 503 revocation_unavailable)
  --status-list URI=FILE
                       the Token Status List token (the compact JWT, as URI
                       serves it) for tokens whose `status.status_list.uri` is
                       URI; repeatable (URI ends at the last `=`). Verified when
                       a token points at it, like the fetched token: the token's
                       provider's keys (inline, or --jwks), algorithms and clock
                       skew, at --now. A usage error without
                       `revocation.status_list`; a warning when URI is outside
                       its `uri_prefixes`. Default: none: a list not given, or
                       one that fails verification, is the filter's decision when
                       the list cannot be had (`on_unavailable: deny`: 503
                       status_unavailable)

";

pub const REPORT: &str =
    "usage: scopegate report [--config FILE] [--select WHERE] [--registry FILE]
                        [--since T] [--unused-days N] [--now T]
                        [--format text|json|html] [-o FILE] LOG...

An inventory of the machine identities the filter saw, from the inventory
lines and audit lines it writes, with findings for a security review: scopes
granted but never exercised (and the narrower set to ask for), registered
identities not seen for N days or expiring, unregistered identities, tokens
longer-lived than the provider allows, rules never matched and scopes no rule
requires. docs/report.md describes the lines and every member of the report.

Each LOG is an Envoy log, Kong's (nginx) error log, or a file of JSON lines;
`-` reads standard input; gzip-compressed files are read as such. A line is
counted when it holds {\"inventory\":\"scopegate\"... or {\"audit\":\"scopegate\"...
anywhere (log prefixes and suffixes are ignored); other lines are skipped and
counted. An audit line marked \"inventoried\": true is not counted again.

Options:
  --config FILE        the configuration, or a file holding it (see below):
                       rules and the scopes they require, providers'
                       max_lifetime_s, and an inline registry. Default: none
                       (rule findings are not computed; `exercised` scopes
                       come from inventory lines only)
  --select WHERE       which configuration, when FILE holds several: as for
                       `explain`. Default: the only one found
  --registry FILE      an identity registry document ({\"identities\": [...]},
                       JSON or YAML). Default: the configuration's inline
                       registry, if any; without one, dormant and expiring
                       identities are not computed
  --since T            ignore lines older than T (RFC 3339). Default: none
  --unused-days N      a registered identity not seen for N days is dormant.
                       Default: 30
  --now T              the instant to judge at (RFC 3339). Default: the clock
  --format F           text (for a terminal), json (docs/report.md), or html
                       (one self-contained page with charts). Default: text
  -o, --output FILE    write the report to FILE. Default: standard output

Exit: 0 the report was written; 2 usage errors, an unreadable LOG, --config
or --registry.

";

pub const SCHEMA: &str = "usage: scopegate schema [--registry]

Prints the JSON Schema (draft-04) of the configuration: the same file as
config-schema/scopegate.schema.json and Kong's scopegate.meta.json config_schema.

Options:
  --registry           print instead the JSON Schema (draft-04) of the identity
                       registry document a registry `uri` serves,
                       {\"identities\": [...]}: config-schema/registry.schema.json
";

pub const TOKEN: &str = "usage: scopegate token --key FILE [options]

Mints a signed test token (JWS compact) with a PKCS#8 private key.

Options:
  --key FILE           PKCS#8 private key, PEM or DER: RSA (2048+ bits), P-256,
                       P-384 or Ed25519 (required)
  --alg ALG            one of: {ALGS}. Default: RS256 for an RSA key,
                       ES256 for P-256, ES384 for P-384, EdDSA for Ed25519
  --kid KID            `kid` header. Default: none
  --iss ISS            `iss` claim. Default: none
  --sub SUB            `sub` claim. Default: none
  --aud AUD            `aud` claim; repeat for several (an array). Default: none
  --scope 'a b'        `scope` claim (space-separated). Default: none
  --client-id ID       `client_id` claim. Default: none
  --ttl SECONDS        `exp` = now + SECONDS. Default: 300
  --now UNIX_SECONDS   `iat`, and the base of `exp`. Default: the clock
  --claim NAME=VALUE   any claim; VALUE is JSON if it parses as JSON, else a
                       string; `null` removes the claim. Repeatable
  --claims JSON        several claims as a JSON object
";

pub const JWKS: &str = "usage: scopegate jwks --key FILE[=KID]...

Prints the public JWK Set of PKCS#8 private keys (for `jwks.inline`, or to
serve at a provider's `uri`). KID sets each key's `kid`. Default: none.
";

/// The help of a command, `FILES` appended to those that read them.
pub fn of(command: &str) -> Option<String> {
    Some(match command {
        "check-config" => format!("{CHECK_CONFIG}{FILES}"),
        "explain" => format!("{EXPLAIN}{FILES}"),
        "report" => format!("{REPORT}{FILES}"),
        "schema" => SCHEMA.to_string(),
        "token" => {
            let algs: Vec<&str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
            TOKEN.replace("{ALGS}", &algs.join(", "))
        }
        "jwks" => JWKS.to_string(),
        _ => return None,
    })
}
