//! `scopegate explain`: the filter's decision for one request, and what the
//! gateway answers, from the same core functions the filter calls.

use crate::args::Args;
use crate::check::{findings, validate};
use crate::sources::{Found, Location};
use crate::statuslist::StatusLists;
use scopegate::identity::shared::{MemoryStore, SharedStore};
use scopegate::identity::validate::{Availability, KeyStore, Keys};
use scopegate::jose::jwks::{self, KeySet};
use scopegate::jose::statuslist::StatusList;
use scopegate::policy::config::{Config, Mode};
use scopegate::policy::registry::Registry;
use scopegate::policy::revocation::RevocationList;
use scopegate::request::binding::ClientCertificate;
use scopegate::request::decision::{self, decide, Decision, Registration, Request, Verdict};
use scopegate::request::headers;
use scopegate::request::response::{self, LocalResponse};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::process::ExitCode;
use std::rc::Rc;

/// The documents the filter fetches, given on the command line instead:
/// key sets of providers whose keys come from a URI (`--jwks`), and the
/// identity registry when it comes from a URI (`--registry`), and the
/// revocation list when it comes from a URI (`--revocation`), and the
/// Token Status Lists tokens point at (`--status-list`).
struct FileKeys {
    keys: HashMap<usize, Rc<KeySet>>,
    registry: Option<Rc<Registry>>,
    revocation: Option<Rc<RevocationList>>,
    status_lists: StatusLists,
    /// A fresh replay cache: a DPoP proof is judged as on first sight.
    replay: MemoryStore,
}

impl KeyStore for FileKeys {
    fn shared(&self) -> Option<&dyn SharedStore> {
        Some(&self.replay)
    }

    fn keys(&self, provider: usize) -> Keys {
        match self.keys.get(&provider) {
            Some(set) => Keys::Ready(Rc::clone(set)),
            None => Keys::Unavailable("give this provider's keys with --jwks NAME=FILE".into()),
        }
    }

    /// Without `--registry`, the filter's decision before the registry has
    /// arrived (and after its fetch has given up): 503 registry_unavailable.
    fn registry(&self) -> Availability<Registry> {
        match &self.registry {
            Some(r) => Availability::Ready(Rc::clone(r)),
            None => Availability::Unavailable(
                "not fetched yet (give the registry document with --registry FILE)".into(),
            ),
        }
    }

    /// Without `--revocation`, the filter's decision before the list has
    /// arrived (and after its fetch has given up): 503 revocation_unavailable.
    fn revocation(&self) -> Availability<RevocationList> {
        match &self.revocation {
            Some(l) => Availability::Ready(Rc::clone(l)),
            None => Availability::Unavailable(
                "not fetched yet (give the revocation list document with --revocation FILE)".into(),
            ),
        }
    }

    /// The status list token `--status-list URI=FILE` gives for `uri`,
    /// verified as the filter verifies a fetched one; without it, or when it
    /// fails verification, the filter's decision when the list cannot be
    /// had (`on_unavailable`: 503 status_unavailable, or let through).
    fn status_list(&self, uri: &str, provider: usize, now: u64) -> Availability<StatusList> {
        self.status_lists.get(uri, provider, now, &self.keys)
    }
}

/// The configuration `--config` (and `--select`) name; `report --config`
/// reads it the same way.
pub fn load(file: &str, select: Option<&str>) -> Result<(Found, Config), String> {
    let (name, found) = findings(file).map_err(|(m, _)| m)?;
    let list = |locations: &mut dyn Iterator<Item = &Location>| -> String {
        locations.map(|at| format!("\n  {at}")).collect()
    };
    let everywhere = list(&mut found.configs.iter().map(|f| &f.location));
    let mut configs = found.configs;
    if let Some(s) = select {
        configs.retain(|f| f.location.selected_by(s));
    }
    if configs.len() > 1 {
        return Err(format!(
            "{name} holds {} Scopegate configurations{}; choose one with --select WHERE:{}",
            configs.len(),
            select.map_or(String::new(), |s| format!(" matching --select {s}")),
            list(&mut configs.iter().map(|f| &f.location))
        ));
    }
    let Some(one) = configs.pop() else {
        return Err(match select {
            Some(s) if !everywhere.is_empty() => format!(
                "--select {s}: no Scopegate configuration of {name} is there; it has:{everywhere}"
            ),
            _ => {
                let notes: Vec<String> = found
                    .notes
                    .iter()
                    .map(|(at, n)| format!("{at}: {n}"))
                    .collect();
                format!(
                    "{name}: no Scopegate configuration here: {}",
                    notes.join("; ")
                )
            }
        });
    };
    let cfg = validate(&one.body).map(|(cfg, _)| cfg).map_err(|faults| {
        let at = where_suffix(&one.location);
        format!("configuration{at} has faults:\n{}", faults.join("\n"))
    })?;
    Ok((one, cfg))
}

fn where_suffix(at: &Location) -> String {
    if at.path.is_empty() && at.document.is_none() {
        String::new()
    } else {
        format!(" at {at}")
    }
}

pub fn run(argv: &[String]) -> Result<ExitCode, String> {
    let args = Args::parse(
        argv,
        &[
            "config",
            "select",
            "method",
            "path",
            "token",
            "header",
            "now",
            "jwks",
            "registry",
            "revocation",
            "status-list",
            "client-cert",
        ],
        &[],
    )?;
    if !args.positional.is_empty() {
        return Err(format!(
            "unexpected argument `{}`",
            args.positional.join(" ")
        ));
    }
    let file = args.required("config")?;
    let stdin_readers = [Some(file), args.one("registry")?, args.one("revocation")?]
        .iter()
        .filter(|f| **f == Some("-"))
        .count();
    if stdin_readers > 1 {
        return Err(
            "standard input (`-`) can be read once: give --config, --registry or --revocation as a path"
                .into(),
        );
    }
    let (found, cfg) = load(file, args.one("select")?)?;
    let registry = args
        .one("registry")?
        .map(|r| crate::registry::KIND.given(&cfg, r))
        .transpose()?;
    let revocation = args
        .one("revocation")?
        .map(|r| crate::revocation::KIND.given(&cfg, r))
        .transpose()?;
    let status_lists = StatusLists::from_flags(&cfg, args.all("status-list"))?;
    let method = args.required("method")?;
    let path = args.required("path")?;
    let now = crate::commands::now_flag(&args)?;
    // DPoP proofs name an https URL: the request is taken to come over TLS.
    let mut headers: Vec<(String, String)> = vec![
        (":method".into(), method.into()),
        (":path".into(), path.into()),
        (":scheme".into(), "https".into()),
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
        let (name, keys_file) = spec
            .split_once('=')
            .ok_or_else(|| format!("--jwks `{spec}`: expected PROVIDER=FILE"))?;
        let index = cfg
            .provider_index(name)
            .ok_or_else(|| format!("--jwks: no provider is named \"{name}\""))?;
        let (set, issues) = jwks::parse_text(&crate::commands::read(keys_file)?)
            .map_err(|e| format!("{keys_file}: {e}"))?;
        for i in &issues {
            eprintln!("warning: {keys_file}: {i}");
        }
        store.insert(index, Rc::new(set));
    }
    // The connection's client certificate, for certificate-bound tokens.
    let certificate = match args.one("client-cert")? {
        Some(file) => match ClientCertificate::from_pem(&crate::commands::read(file)?) {
            ClientCertificate::Unknown(why) => return Err(format!("--client-cert {file}: {why}")),
            c => c,
        },
        None => ClientCertificate::Absent,
    };
    let read_certificate = move || certificate.clone();
    let pairs = decision::borrow_headers(&headers);
    let mut req = Request::new(method, path, &pairs);
    req.client_certificate = &read_certificate;
    let store = FileKeys {
        keys: store,
        registry,
        revocation,
        status_lists,
        replay: MemoryStore::new(),
    };
    let d = decide(&cfg, &req, &store, now);
    let mut out = verdict_json(&cfg, &req, &d);
    if let Value::Object(m) = &mut out {
        m.insert(
            "source".into(),
            json!({"file": file, "where": found.location.to_string()}),
        );
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}

/// The JSON `explain` prints. Its members are a public contract: add, never
/// rename or remove.
fn verdict_json(cfg: &Config, req: &Request<'_>, d: &Decision) -> Value {
    let dry_run = cfg.mode == Mode::DryRun;
    let status = d.reason.class().status();
    let muts = headers::plan(cfg, req, d);
    let id = d.identity.as_ref();
    let set_headers: Map<String, Value> = if d.is_allowed() || dry_run {
        muts.set
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect()
    } else {
        Map::new()
    };
    // What the filter sends instead of forwarding: the adapter's own call,
    // made on a denial in enforce mode only.
    let denial = match &d.verdict {
        Verdict::Deny(denial) => Some(response::denial(
            cfg,
            denial.reason,
            &denial.message,
            Some(d),
        )),
        _ => None,
    };
    let (sent, if_enforced) = match (denial, dry_run) {
        (Some(r), false) => (Some(r), None),
        (Some(r), true) => (None, Some(r)),
        (None, _) => (None, None),
    };
    let would_pass = sent.is_none();
    json!({
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
        "mode": if dry_run { "dry_run" } else { "enforce" },
        "enforced": !dry_run,
        "would_pass": would_pass,
        "response": sent.as_ref().map(response_json),
        "response_if_enforced": if_enforced.as_ref().map(response_json),
        "registration": d.registration.as_ref().map(registration_json),
    })
}

/// What the identity registry said of the verified caller; `null` when no
/// registry was consulted (none configured, or no verified token).
fn registration_json(r: &Registration) -> Value {
    match r {
        Registration::Unregistered => json!({"registered": false}),
        Registration::Registered {
            owner,
            dropped_scopes,
            ..
        } => json!({"registered": true, "owner": owner, "scopes_dropped": dropped_scopes}),
    }
}

fn response_json(r: &LocalResponse) -> Value {
    let headers: Map<String, Value> = r
        .headers
        .iter()
        .map(|(k, v)| ((*k).to_string(), json!(v)))
        .collect();
    json!({"status": r.status, "headers": headers, "body": r.body})
}
