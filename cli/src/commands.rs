//! The subcommands. Each reads its inputs, calls the core, prints, and maps
//! the outcome to an exit code: 0 done, 1 the configuration has faults
//! (`check-config`), 2 usage or input errors.

use crate::args::Args;
use scopegate::alg::Alg;
use scopegate::config::{self, Config, ConfigError};
use scopegate::decision::{decide, Request};
use scopegate::headers;
use scopegate::jwks::{self, KeySet};
use scopegate::mint::SigningKey;
use scopegate::validate::{KeyStore, Keys};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::process::ExitCode;
use std::rc::Rc;

const USAGE: &str = "usage:
  scopegate check-config FILE
  scopegate explain --config FILE --method M --path P [--token T] [--header 'Name: value']...
                    [--now UNIX_SECONDS] [--jwks PROVIDER=FILE]...
  scopegate schema
  scopegate token --key FILE [--alg ALG] [--kid KID] [--iss ISS] [--sub SUB] [--aud AUD]...
                  [--scope 'a b'] [--client-id ID] [--ttl SECONDS] [--now UNIX_SECONDS]
                  [--claim NAME=VALUE]... [--claims JSON]
  scopegate jwks --key FILE[=KID]...";

/// The JSON Schema of the configuration, the same file as config-schema/.
pub const SCHEMA: &str = include_str!("../../config-schema/scopegate.schema.json");

pub fn run(argv: &[String]) -> Result<ExitCode, String> {
    let Some((cmd, rest)) = argv.split_first() else {
        return Err(format!("no command given\n{USAGE}"));
    };
    match cmd.as_str() {
        "check-config" => check_config(rest),
        "explain" => explain(rest),
        "schema" => {
            print!("{SCHEMA}");
            Ok(ExitCode::SUCCESS)
        }
        "token" => token(rest),
        "jwks" => jwks_cmd(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    }
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// Reads a configuration file as JSON, or as YAML when it is not JSON.
fn load_document(path: &str) -> Result<Value, String> {
    let bytes = read(path)?;
    if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
        return Ok(v);
    }
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{path} is neither JSON nor UTF-8 YAML"))?;
    serde_yaml::from_str::<Value>(&text)
        .map_err(|e| format!("{path} is neither valid JSON nor valid YAML: {e}"))
}

/// `--now UNIX_SECONDS`, or the clock.
fn now_flag(args: &Args) -> Result<u64, String> {
    match args.one("now")? {
        Some(n) => n
            .parse::<u64>()
            .map_err(|_| format!("--now {n}: expected Unix seconds")),
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|e| e.to_string()),
    }
}

fn check_config(argv: &[String]) -> Result<ExitCode, String> {
    let args = Args::parse(argv, &[], &[])?;
    let [file] = args.positional.as_slice() else {
        return Err(format!("check-config takes one FILE\n{USAGE}"));
    };
    let doc = load_document(file)?;
    match config::parse_value(&doc) {
        Ok(cfg) => {
            for w in &cfg.warnings {
                eprintln!("warning: {w}");
            }
            println!("ok");
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            print_faults(&errors);
            Ok(ExitCode::from(1))
        }
    }
}

fn print_faults(errors: &[ConfigError]) {
    for e in errors {
        println!("{e}");
    }
}

/// Keys given on the command line for providers that fetch theirs from a URI.
struct FileKeys(HashMap<usize, Rc<KeySet>>);

impl KeyStore for FileKeys {
    fn keys(&self, provider: usize) -> Keys {
        match self.0.get(&provider) {
            Some(set) => Keys::Ready(Rc::clone(set)),
            None => Keys::Unavailable("give this provider's keys with --jwks NAME=FILE".into()),
        }
    }
}

fn explain(argv: &[String]) -> Result<ExitCode, String> {
    let args = Args::parse(
        argv,
        &["config", "method", "path", "token", "header", "now", "jwks"],
        &[],
    )?;
    if !args.positional.is_empty() {
        return Err(format!(
            "unexpected argument `{}`",
            args.positional.join(" ")
        ));
    }
    let doc = load_document(args.required("config")?)?;
    let cfg: Config = config::parse_value(&doc).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!("configuration has faults:\n{}", lines.join("\n"))
    })?;
    let method = args.required("method")?;
    let path = args.required("path")?;
    let now = now_flag(&args)?;
    let mut headers: Vec<(String, String)> = vec![
        (":method".into(), method.into()),
        (":path".into(), path.into()),
    ];
    for h in args.all("header") {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("--header `{h}`: expected 'Name: value'"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    if let Some(t) = args.one("token")? {
        headers.push(("authorization".into(), format!("Bearer {t}")));
    }
    let mut store = HashMap::new();
    for spec in args.all("jwks") {
        let (name, file) = spec
            .split_once('=')
            .ok_or_else(|| format!("--jwks `{spec}`: expected PROVIDER=FILE"))?;
        let index = cfg
            .provider_index(name)
            .ok_or_else(|| format!("--jwks: no provider is named \"{name}\""))?;
        let (set, issues) = jwks::parse_text(&read(file)?).map_err(|e| format!("{file}: {e}"))?;
        for i in &issues {
            eprintln!("warning: {file}: {i}");
        }
        store.insert(index, Rc::new(set));
    }
    let pairs = scopegate::decision::borrow_headers(&headers);
    let req = Request {
        method,
        path,
        headers: &pairs,
    };
    let d = decide(&cfg, &req, &FileKeys(store), now);
    let status = d.reason.class().status();
    let muts = headers::plan(&cfg, &req, &d);
    let id = d.identity.as_ref();
    let set_headers: Map<String, Value> = if d.is_allowed() || cfg.mode == config::Mode::DryRun {
        muts.set
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect()
    } else {
        Map::new()
    };
    let out = json!({
        "decision": if d.is_allowed() { "allow" } else { "deny" },
        "status": status,
        "reason": d.reason.as_str(),
        "rule": d.rule.and_then(|i| cfg.rules.get(i)).map(|r| r.name.clone()),
        "message": d.message(),
        "provider": d.provider.and_then(|i| cfg.providers.get(i)).map(|p| p.name.clone()),
        "identity": {
            "subject": id.and_then(|i| i.subject.clone()),
            "client_id": id.and_then(|i| i.client_id.clone()),
            "issuer": id.map(|i| i.issuer.clone()),
            "scopes": id.map(|i| i.scopes.clone()),
        },
        "headers": set_headers,
        "removed_headers": muts.remove,
        "normalized_path": d.normalized_path,
        "forwarded_path": muts.path,
        "mode": if cfg.mode == config::Mode::DryRun { "dry_run" } else { "enforce" },
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}

fn token(argv: &[String]) -> Result<ExitCode, String> {
    let args = Args::parse(
        argv,
        &[
            "key",
            "alg",
            "kid",
            "iss",
            "sub",
            "aud",
            "scope",
            "client-id",
            "ttl",
            "now",
            "claim",
            "claims",
        ],
        &[],
    )?;
    let key = SigningKey::from_pkcs8(&read(args.required("key")?)?)?;
    let alg = match args.one("alg")? {
        Some(a) => Alg::parse(a).ok_or_else(|| scopegate::alg::refusal(a))?,
        None => key.default_alg(),
    };
    let now = now_flag(&args)?;
    let ttl = match args.one("ttl")? {
        Some(t) => t
            .parse::<u64>()
            .map_err(|_| format!("--ttl {t}: expected seconds"))?,
        None => 300,
    };
    let mut claims = Map::new();
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + ttl));
    for (flag, claim) in [
        ("iss", "iss"),
        ("sub", "sub"),
        ("scope", "scope"),
        ("client-id", "client_id"),
    ] {
        if let Some(v) = args.one(flag)? {
            claims.insert(claim.into(), json!(v));
        }
    }
    match args.all("aud") {
        [] => {}
        [one] => {
            claims.insert("aud".into(), json!(one));
        }
        many => {
            claims.insert("aud".into(), json!(many));
        }
    }
    if let Some(extra) = args.one("claims")? {
        let Value::Object(map) =
            serde_json::from_str::<Value>(extra).map_err(|e| format!("--claims: {e}"))?
        else {
            return Err("--claims: expected a JSON object".into());
        };
        claims.extend(map);
    }
    for c in args.all("claim") {
        let (name, value) = c
            .split_once('=')
            .ok_or_else(|| format!("--claim `{c}`: expected NAME=VALUE"))?;
        // A value that parses as JSON (number, array, null...) is taken as such.
        let v = serde_json::from_str::<Value>(value).unwrap_or_else(|_| json!(value));
        if v.is_null() {
            claims.remove(name);
        } else {
            claims.insert(name.into(), v);
        }
    }
    println!("{}", key.sign(alg, args.one("kid")?, &claims)?);
    Ok(ExitCode::SUCCESS)
}

fn jwks_cmd(argv: &[String]) -> Result<ExitCode, String> {
    let args = Args::parse(argv, &["key"], &[])?;
    if args.all("key").is_empty() {
        return Err(format!("jwks needs at least one --key FILE[=KID]\n{USAGE}"));
    }
    let mut keys = Vec::new();
    for spec in args.all("key") {
        let (file, kid) = match spec.rsplit_once('=') {
            Some((f, k)) => (f, Some(k)),
            None => (spec.as_str(), None),
        };
        keys.push(
            SigningKey::from_pkcs8(&read(file)?)
                .map_err(|e| format!("{file}: {e}"))?
                .public_jwk(kid),
        );
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({ "keys": keys })).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}
