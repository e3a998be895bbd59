//! The subcommands. Each reads its inputs, calls the core, prints, and maps
//! the outcome to an exit code: 0 done, 1 the configuration has faults
//! (`check-config`), 2 usage or input errors.

use crate::args::Args;
use crate::help::{self, USAGE};
use scopegate::jose::mint::SigningKey;
use scopegate::vocab::alg::{self, Alg};
use serde_json::{json, Map, Value};
use std::process::ExitCode;

/// The JSON Schema of the configuration, the same file as config-schema/.
pub const SCHEMA: &str = include_str!("../../config-schema/scopegate.schema.json");

/// The JSON Schema of a fetched identity registry document.
pub const REGISTRY_SCHEMA: &str = include_str!("../../config-schema/registry.schema.json");

pub fn run(argv: &[String]) -> Result<ExitCode, String> {
    let Some((cmd, rest)) = argv.split_first() else {
        return Err(format!("no command given\n{USAGE}"));
    };
    // `--help` anywhere after a command asks for that command's help, before
    // any other argument is looked at (it may be incomplete).
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        if let Some(text) = help::of(cmd) {
            print!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
    }
    match cmd.as_str() {
        "check-config" => crate::check::run(rest),
        "explain" => crate::explain::run(rest),
        "report" => crate::report::run(rest),
        "schema" => {
            let args = Args::parse(rest, &[], &["registry"])?;
            if !args.positional.is_empty() {
                return Err(format!(
                    "schema takes no arguments but --registry\n{}",
                    help::SCHEMA
                ));
            }
            if args.all("registry").len() > 1 {
                return Err("--registry given more than once".into());
            }
            print!(
                "{}",
                if args.all("registry").is_empty() {
                    SCHEMA
                } else {
                    REGISTRY_SCHEMA
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        "token" => token(rest),
        "jwks" => jwks_cmd(rest),
        "help" | "--help" | "-h" => {
            match rest.first().and_then(|c| help::of(c)) {
                Some(text) => print!("{text}"),
                None => println!("{USAGE}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        "--version" | "-V" | "version" => {
            println!("scopegate {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    }
}

pub fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// `--now UNIX_SECONDS`, or the clock.
pub fn now_flag(args: &Args) -> Result<u64, String> {
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
        Some(a) => Alg::parse(a).ok_or_else(|| alg::refusal(a))?,
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
