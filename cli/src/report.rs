//! `scopegate report`: an inventory of the machine identities the filter saw,
//! from its inventory and audit lines in any number of logs, with findings
//! for a security review (docs/report.md).
//!
//! The layers, lowest first: `read` (files, gzip, lines), `line` (one line
//! recognised and parsed), `inputs` (configuration and registry),
//! `aggregate` (totals per identity), `findings` (totals → `model`, the
//! report as data), and the renderings `json`, `text` and `html`.

mod aggregate;
mod findings;
mod html;
mod inputs;
mod json;
mod line;
mod model;
mod read;
mod text;

use crate::args::Args;
use crate::help;
use scopegate::vocab::time::parse_rfc3339;
use std::io::Write;
use std::process::ExitCode;

/// Days without a request after which a registered identity is dormant.
const DEFAULT_UNUSED_DAYS: u64 = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Html,
}

impl Format {
    fn parse(s: &str) -> Result<Format, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "html" => Ok(Format::Html),
            other => Err(format!("--format {other}: expected text, json or html")),
        }
    }
}

/// An RFC 3339 flag value as Unix seconds.
fn instant(flag: &str, value: &str) -> Result<u64, String> {
    parse_rfc3339(value).ok_or_else(|| {
        format!("--{flag} {value}: expected an RFC 3339 instant, e.g. 2026-12-07T10:00:00Z")
    })
}

pub fn run(argv: &[String]) -> Result<ExitCode, String> {
    // `-o FILE` is the one short option of the tool: the usual spelling for
    // an output file.
    let argv: Vec<String> = argv
        .iter()
        .map(|a| {
            if a == "-o" {
                "--output".to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    let args = Args::parse(
        &argv,
        &[
            "config",
            "select",
            "registry",
            "since",
            "unused-days",
            "now",
            "format",
            "output",
        ],
        &[],
    )?;
    let logs = &args.positional;
    if logs.is_empty() {
        return Err(format!(
            "report takes at least one LOG (`-`: standard input)\n{}",
            help::REPORT
        ));
    }
    let stdin_readers = logs.iter().filter(|l| *l == "-").count()
        + usize::from(args.one("config")? == Some("-"))
        + usize::from(args.one("registry")? == Some("-"));
    if stdin_readers > 1 {
        return Err(
            "standard input (`-`) can be read once: give the other LOG, --config or --registry as a path"
                .into(),
        );
    }
    let format = Format::parse(args.one("format")?.unwrap_or("text"))?;
    let since = args
        .one("since")?
        .map(|s| instant("since", s))
        .transpose()?;
    let now = match args.one("now")? {
        Some(n) => instant("now", n)?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|e| e.to_string())?,
    };
    let unused_days = match args.one("unused-days")? {
        Some(n) => n
            .parse::<u64>()
            .map_err(|_| format!("--unused-days {n}: expected a whole number of days"))?,
        None => DEFAULT_UNUSED_DAYS,
    };
    if args.one("select")?.is_some() && args.one("config")?.is_none() {
        return Err("--select chooses among the configurations of --config FILE".into());
    }
    let config = args
        .one("config")?
        .map(|file| crate::explain::load(file, args.one("select")?).map(|(_, cfg)| cfg))
        .transpose()?;
    let registry = args
        .one("registry")?
        .map(|file| inputs::read_registry(file, config.as_ref()))
        .transpose()?;
    let known = inputs::Known::new(config.as_ref(), registry);

    let mut tally = aggregate::Tally::new(since);
    for log in logs {
        let mut reader = read::open(log)?;
        match read::lines(&mut *reader, |line| tally.add_line(&known, line)) {
            Ok(oversized) => tally.lines.oversized += oversized,
            // A damaged file (a gzip cut short by rotation, say) spoils its
            // own end, not the report: what was read counts.
            Err(e) => eprintln!("warning: {}: read stopped: {e}", read::name(log)),
        }
    }
    for example in &tally.malformed_examples {
        eprintln!("warning: not a readable inventory or audit object: {example}");
    }
    let report = findings::build(
        &tally,
        &known,
        &findings::Options {
            now,
            since,
            unused_days,
            inputs: logs.clone(),
        },
    );
    let rendered = match format {
        Format::Json => json::render(&report)?,
        Format::Text => text::render(&report),
        Format::Html => html::render(&report),
    };
    match args.one("output")? {
        Some(file) => {
            std::fs::write(file, rendered).map_err(|e| format!("cannot write {file}: {e}"))?
        }
        None => std::io::stdout()
            .lock()
            .write_all(rendered.as_bytes())
            .map_err(|e| format!("cannot write the report: {e}"))?,
    }
    Ok(ExitCode::SUCCESS)
}
