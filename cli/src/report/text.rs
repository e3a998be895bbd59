//! `--format text`: the report for a terminal. Names from the logs are
//! attacker-influenced, so control characters are shown escaped: a client
//! id cannot move the cursor or recolour the reviewer's terminal.

use super::model::{Findings, Identity, Report};
use std::collections::BTreeMap;
use std::fmt::Write;

/// `s` with control characters escaped (`\u{1b}`).
fn clean(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{} {v}", clean(k)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    items.iter().map(|s| clean(s)).collect::<Vec<_>>().join(" ")
}

fn who(provider: Option<&str>, client_id: &str) -> String {
    format!("{}/{}", clean(provider.unwrap_or("*")), clean(client_id))
}

/// A left-aligned table: each column as wide as its widest cell.
fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    out.push_str(&line(&mut head.iter().copied()));
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
}

/// A section: its title, then `body`, "none", or why it was not computed.
fn section<T>(
    out: &mut String,
    title: &str,
    items: Option<&[T]>,
    needs: &str,
    body: impl FnOnce(&mut String, &[T]),
) {
    let _ = writeln!(out, "\n{title}");
    match items {
        None => {
            let _ = writeln!(out, "  (not computed: needs {needs})");
        }
        Some([]) => out.push_str("  none\n"),
        Some(items) => body(out, items),
    }
}

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let s = &r.summary;
    let _ = writeln!(out, "Scopegate identity report, at {}", r.report.now);
    if let (Some(a), Some(b)) = (&s.first_seen, &s.last_seen) {
        let _ = writeln!(out, "Logs from {a} to {b}");
    }
    if let Some(since) = &r.report.since {
        let _ = writeln!(out, "Lines before {since} ignored");
    }
    out.push_str("\nSummary\n");
    let optional = |n: Option<u64>, needs: &str| {
        n.map_or_else(|| format!("(needs {needs})"), |n| n.to_string())
    };
    let rows = [
        (
            "identities seen",
            format!(
                "{} (owner documented: {}, {}; with unused scopes: {}, {})",
                s.identities,
                s.with_owner,
                percent(s.with_owner_share),
                s.with_unused_scopes,
                percent(s.with_unused_scopes_share)
            ),
        ),
        (
            "requests",
            format!("{} (allowed {})", s.requests, s.allowed),
        ),
        ("denied", counts(&s.denied)),
        (
            "without identity",
            format!(
                "{} requests, denied: {}",
                s.without_identity.requests,
                counts(&s.without_identity.denied)
            ),
        ),
        ("dormant registered", optional(s.dormant, "a registry")),
        ("expiring registered", optional(s.expiring, "a registry")),
        ("unregistered seen", s.unregistered.to_string()),
        (
            "overflow",
            if s.overflow.lines == 0 {
                "none".to_string()
            } else {
                format!(
                    "{} lines, up to {} untracked identities, {} requests",
                    s.overflow.lines, s.overflow.identities_max, s.overflow.requests
                )
            },
        ),
        (
            "lines",
            format!(
                "{} read: {} inventory, {} audit (+{} already inventoried), {} overflow, {} skipped, {} malformed, {} before --since, {} oversized",
                s.lines.read,
                s.lines.inventory,
                s.lines.audit,
                s.lines.audit_inventoried,
                s.lines.overflow,
                s.lines.skipped,
                s.lines.malformed,
                s.lines.before_since,
                s.lines.oversized
            ),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<20} {v}");
    }
    identities(&mut out, &r.identities);
    findings(
        &mut out,
        &r.findings,
        r.report.unused_days,
        r.report.expiry_warning_days,
    );
    out
}

fn identities(out: &mut String, ids: &[Identity]) {
    out.push_str("\nIdentities\n");
    if ids.is_empty() {
        out.push_str("  none\n");
        return;
    }
    let rows: Vec<Vec<String>> = ids
        .iter()
        .map(|i| {
            vec![
                clean(&i.provider),
                clean(&i.client_id),
                i.owner.as_deref().map_or("-".into(), clean),
                match i.registered {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "?".into(),
                },
                i.requests.to_string(),
                i.allowed.to_string(),
                i.denied.values().sum::<u64>().to_string(),
                i.first_seen.clone(),
                i.last_seen.clone(),
            ]
        })
        .collect();
    table(
        out,
        &[
            "PROVIDER",
            "CLIENT_ID",
            "OWNER",
            "REGISTERED",
            "REQUESTS",
            "ALLOWED",
            "DENIED",
            "FIRST SEEN",
            "LAST SEEN",
        ],
        &rows,
    );
}

fn findings(out: &mut String, f: &Findings, unused_days: u64, warning_days: u64) {
    section(
        out,
        "Least privilege: scopes granted but never exercised",
        Some(&f.least_privilege),
        "",
        |out, items| {
            for i in items {
                let _ = writeln!(
                    out,
                    "  {}: unused {}; request only: {}{}",
                    who(Some(&i.provider), &i.client_id),
                    list(&i.scopes_unused),
                    list(&i.request_scopes),
                    if i.exercised_complete {
                        ""
                    } else {
                        " (some allowed requests' rules are unknown: give --config)"
                    },
                );
            }
        },
    );
    section(
        out,
        &format!("Dormant registered identities: not seen for {unused_days} days"),
        f.dormant.as_deref(),
        "--registry or a configuration with an inline registry",
        |out, items| {
            for d in items {
                let _ = writeln!(
                    out,
                    "  {} (owner {}): {}",
                    who(d.provider.as_deref(), &d.client_id),
                    clean(&d.owner),
                    match (&d.last_seen, d.days_since_seen) {
                        (Some(at), Some(days)) => format!("last seen {at}, {days} days ago"),
                        _ => "never seen in these logs".into(),
                    }
                );
            }
        },
    );
    section(
        out,
        &format!("Registered identities expired or expiring within {warning_days} days"),
        f.expiring.as_deref(),
        "--registry or a configuration with an inline registry",
        |out, items| {
            for e in items {
                let _ = writeln!(
                    out,
                    "  {} (owner {}): {} {} ({} days)",
                    who(e.provider.as_deref(), &e.client_id),
                    clean(&e.owner),
                    if e.expired { "expired" } else { "expires" },
                    e.expires,
                    e.days_left
                );
            }
        },
    );
    section(
        out,
        "Unregistered identities seen",
        Some(&f.unregistered),
        "",
        |out, items| {
            for u in items {
                let _ = writeln!(
                    out,
                    "  {}: {} requests, last seen {}",
                    who(Some(&u.provider), &u.client_id),
                    u.requests,
                    u.last_seen
                );
            }
        },
    );
    section(
        out,
        "Tokens longer-lived than their provider's max_lifetime_s",
        f.long_lived_tokens.as_deref(),
        "--config",
        |out, items| {
            for l in items {
                let _ = writeln!(
                    out,
                    "  {}: {} s (provider allows {} s)",
                    who(Some(&l.provider), &l.client_id),
                    l.max_token_lifetime_s,
                    l.max_lifetime_s
                );
            }
        },
    );
    section(
        out,
        "Rules never matched",
        f.unused_rules.as_deref(),
        "--config",
        |out, items| {
            let _ = writeln!(out, "  {}", list(items));
        },
    );
    section(
        out,
        "Scopes no rule requires",
        f.unrequired_scopes.as_deref(),
        "--config",
        |out, items| {
            for s in items {
                let _ = writeln!(
                    out,
                    "  {}: granted to {} identities, in {} registry entries' max_scopes",
                    clean(&s.scope),
                    s.identities,
                    s.registry_entries
                );
            }
        },
    );
}
