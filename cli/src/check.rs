//! `scopegate check-config`: every Scopegate configuration in each file,
//! validated by the filter's own parser, each reported on its own.

use crate::args::Args;
use crate::document::{self, InputError};
use crate::help::USAGE;
use crate::lint;
use crate::registry;
use crate::revocation;
use crate::sources::{self, Body, Findings};
use scopegate::policy::config::{self, Config};
use serde_json::Value;
use std::process::ExitCode;

/// Validates one configuration the way the filter reads it. Returns the
/// configuration and the document as written, or one line per fault.
pub fn validate(body: &Body) -> Result<(Config, Value), Vec<String>> {
    let faults = |errors: Vec<config::ConfigError>| -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    };
    match body {
        Body::Value(v) => config::parse_value(v)
            .map(|c| (c, v.clone()))
            .map_err(faults),
        Body::Text(text) => {
            let cfg = config::parse_json(text.as_bytes()).map_err(faults)?;
            // Valid for the core, so valid JSON: read again only to tell given
            // members from defaults.
            let doc = serde_json::from_str(text).unwrap_or(Value::Null);
            Ok((cfg, doc))
        }
        Body::Missing(why) => Err(vec![why.clone()]),
    }
}

/// Reads FILE and finds its configurations; `Err` is (message, exit code).
pub fn findings(file: &str) -> Result<(String, Findings), (String, u8)> {
    let input = document::load(file).map_err(|e| match e {
        InputError::Unreadable(m) => (m, 2),
        InputError::Malformed(m) => (m, 1),
    })?;
    let found = sources::find(&input.documents);
    if found.configs.is_empty() && found.notes.is_empty() {
        return Err((
            format!(
                "{}: no Scopegate configuration found (looked for: the configuration itself; Kong filters and plugins named `scopegate`; Istio WasmPlugin and TrafficExtension, Envoy Gateway EnvoyExtensionPolicy and Envoy Wasm filters whose name, URL or code says scopegate)",
                input.name
            ),
            2,
        ));
    }
    Ok((input.name, found))
}

pub fn run(argv: &[String]) -> Result<ExitCode, String> {
    let args = Args::parse(argv, &["registry", "revocation"], &[])?;
    if args.positional.is_empty() {
        return Err(format!("check-config takes at least one FILE\n{USAGE}"));
    }
    let registry_file = args.one("registry")?;
    let revocation_file = args.one("revocation")?;
    let stdin_readers = usize::from(args.positional.iter().any(|f| f == "-"))
        + usize::from(registry_file == Some("-"))
        + usize::from(revocation_file == Some("-"));
    if stdin_readers > 1 {
        return Err(
            "standard input (`-`) can be read once: give FILE, --registry or --revocation as a path"
                .into(),
        );
    }
    let registry_doc = registry_file.map(registry::read).transpose()?;
    let revocation_doc = revocation_file.map(revocation::read).transpose()?;
    let several_files = args.positional.len() > 1;
    let mut worst = 0u8;
    for file in &args.positional {
        let (name, found) = match findings(file) {
            Ok(f) => f,
            Err((message, 2)) => return Err(message),
            Err((message, code)) => {
                println!("{message}");
                worst = worst.max(code);
                continue;
            }
        };
        for (at, note) in &found.notes {
            println!("{name}: {at}: nothing to check here: {note}");
        }
        for f in &found.configs {
            // The configuration file itself, alone: the output the filter's
            // own log lines use, `ok` or `/pointer: message`.
            let prefix = match (
                several_files,
                f.location.path.is_empty() && f.location.document.is_none(),
            ) {
                (false, true) => String::new(),
                (true, true) => format!("{name}: "),
                (_, false) => format!("{name}: {}: ", f.location),
            };
            match validate(&f.body) {
                Ok((cfg, doc)) => {
                    for w in &cfg.warnings {
                        eprintln!("warning: {prefix}{w}");
                    }
                    for w in lint::warnings(&cfg, &doc) {
                        eprintln!("warning: {prefix}{}: {}", w.pointer, w.message);
                    }
                    println!("{prefix}ok");
                    let names: Vec<&str> = cfg.providers.iter().map(|p| p.name.as_str()).collect();
                    if let Some(reg) = &registry_doc {
                        worst =
                            worst.max(check_document(&prefix, &registry::KIND, reg, &cfg, &names));
                    }
                    if let Some(rev) = &revocation_doc {
                        worst = worst.max(check_document(
                            &prefix,
                            &revocation::KIND,
                            rev,
                            &cfg,
                            &names,
                        ));
                    }
                }
                Err(faults) => {
                    for fault in faults {
                        println!("{prefix}{fault}");
                    }
                    worst = worst.max(1);
                    // Checked against the provider names the configuration
                    // gives, as far as they can be read.
                    if let (Some(reg), Some(doc)) = (&registry_doc, document_of(&f.body)) {
                        let names = registry::provider_names_in(&doc);
                        let names: Vec<&str> = names.iter().map(String::as_str).collect();
                        check_faults(&prefix, reg, registry::validate, &names);
                    }
                    if let (Some(rev), Some(doc)) = (&revocation_doc, document_of(&f.body)) {
                        let names = registry::provider_names_in(&doc);
                        let names: Vec<&str> = names.iter().map(String::as_str).collect();
                        check_faults(&prefix, rev, revocation::validate, &names);
                    }
                }
            }
        }
    }
    Ok(ExitCode::from(worst))
}

/// Warns when `cfg` would not use the document `kind` names, then checks it
/// against `providers` (`check_faults`); returns the exit code it calls for.
fn check_document<T>(
    prefix: &str,
    kind: &registry::Kind<T>,
    doc: &registry::Document,
    cfg: &Config,
    providers: &[&str],
) -> u8 {
    if let Some(why) = kind.unused_reason(cfg) {
        eprintln!(
            "warning: {prefix}{}: {why}: this document would not be used",
            doc.name
        );
    }
    check_faults(prefix, doc, kind.validate, providers)
}

/// Prints a registry or revocation list document's verdict for one
/// configuration, `ok` or one line per fault, each after `prefix` and the
/// document's name; returns the exit code it calls for.
fn check_faults<T>(
    prefix: &str,
    doc: &registry::Document,
    validate: fn(&Value, &[&str]) -> Result<T, Vec<String>>,
    providers: &[&str],
) -> u8 {
    let faults = match &doc.value {
        // The reader's message already names the file.
        Err(message) => {
            println!("{prefix}{message}");
            return 1;
        }
        Ok(value) => match validate(value, providers) {
            Ok(_) => {
                println!("{prefix}{}: ok", doc.name);
                return 0;
            }
            Err(faults) => faults,
        },
    };
    for fault in faults {
        println!("{prefix}{}: {fault}", doc.name);
    }
    1
}

/// A configuration as a JSON value, when it can be read as one.
fn document_of(body: &Body) -> Option<Value> {
    match body {
        Body::Value(v) => Some(v.clone()),
        Body::Text(text) => serde_json::from_str(text).ok(),
        Body::Missing(_) => None,
    }
}
