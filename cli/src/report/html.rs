//! `--format html`: one self-contained page for a security reviewer, opened
//! from a ticket. No scripts, fonts or requests of any kind: inline CSS and
//! inline SVG, and a Content-Security-Policy that forbids everything else.
//! Every name from the logs (client ids are attacker-chosen) is escaped.

use super::model::{Findings, Identity, Report};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters have no business in a name; show them.
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of `s`, escaped, with an ellipsis when cut.
fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return esc(s);
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", esc(&cut))
}

const STYLE: &str = "
:root{--fg:#1d2330;--muted:#5b6477;--line:#d9dee8;--bg:#f6f7fa;--accent:#2456c9;--warn:#b5401d;--ok:#1f7a4d}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg)}
header,main,footer{max-width:1180px;margin:0 auto;padding:16px 24px}
header{padding-top:28px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.meta{color:var(--muted);margin:0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card .n{font-size:22px;font-weight:600}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card.warn .n{color:var(--warn)}
.charts{display:grid;grid-template-columns:1fr;gap:14px}
figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px}
figcaption{font-weight:600;margin-bottom:6px}
svg{display:block;max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:var(--muted)}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin-top:6px;font-size:12px}
.legend span::before{content:'';display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;background:var(--c)}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line);font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef1f6;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef1f6;padding:1px 4px;border-radius:3px;word-break:break-all}
.none{color:var(--muted);font-style:italic}
.no{color:var(--warn);font-weight:600}.yes{color:var(--ok)}
footer{color:var(--muted);font-size:12px}
";

/// Series colours (distinguishable, and readable on white).
const COLOURS: [&str; 9] = [
    "#2456c9", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#0b7285", "#e67700", "#5c677d",
    "#a61e4d",
];

pub fn render(r: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024 + r.identities.len() * 600);
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Scopegate identity report</title>\n<style>",
    );
    out.push_str(STYLE);
    out.push_str("</style></head>\n<body>\n<header><h1>Scopegate identity report</h1>\n");
    let s = &r.summary;
    let _ = write!(out, "<p class=\"meta\">At {}", esc(&r.report.now));
    if let (Some(a), Some(b)) = (&s.first_seen, &s.last_seen) {
        let _ = write!(out, " · logs from {} to {}", esc(a), esc(b));
    }
    if let Some(since) = &r.report.since {
        let _ = write!(out, " · lines before {} ignored", esc(since));
    }
    out.push_str("</p>\n</header>\n<main>\n");
    summary(&mut out, r);
    charts(&mut out, r);
    findings(
        &mut out,
        &r.findings,
        r.report.unused_days,
        r.report.expiry_warning_days,
    );
    identities(&mut out, &r.identities);
    out.push_str("</main>\n<footer>");
    let l = &s.lines;
    let _ = write!(
        out,
        "{} lines read: {} inventory, {} audit (+{} already counted by inventory lines), {} overflow, {} skipped, {} malformed, {} before --since, {} oversized. Inputs: {}. Generated by scopegate report.",
        l.read,
        l.inventory,
        l.audit,
        l.audit_inventoried,
        l.overflow,
        l.skipped,
        l.malformed,
        l.before_since,
        l.oversized,
        esc(&r.report.inputs.join(", "))
    );
    out.push_str("</footer>\n</body></html>\n");
    out
}

fn card(out: &mut String, key: &str, value: &str, warn: bool) {
    let _ = write!(
        out,
        "<div class=\"card{}\"><div class=\"n\">{}</div><div class=\"k\">{}</div></div>",
        if warn { " warn" } else { "" },
        esc(value),
        esc(key)
    );
}

fn summary(out: &mut String, r: &Report) {
    let s = &r.summary;
    out.push_str("<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">");
    card(out, "identities seen", &s.identities.to_string(), false);
    card(
        out,
        "with a documented owner",
        &format!("{:.0}%", s.with_owner_share * 100.0),
        s.with_owner < s.identities,
    );
    card(
        out,
        "with unused scopes",
        &format!("{:.0}%", s.with_unused_scopes_share * 100.0),
        s.with_unused_scopes > 0,
    );
    let needs = |n: Option<u64>| n.map_or("n/a".to_string(), |n| n.to_string());
    card(
        out,
        "dormant registered",
        &needs(s.dormant),
        s.dormant.unwrap_or(0) > 0,
    );
    card(
        out,
        "expiring registered",
        &needs(s.expiring),
        s.expiring.unwrap_or(0) > 0,
    );
    card(
        out,
        "unregistered seen",
        &s.unregistered.to_string(),
        s.unregistered > 0,
    );
    card(out, "requests", &s.requests.to_string(), false);
    card(
        out,
        "denied",
        &s.denied.values().sum::<u64>().to_string(),
        false,
    );
    if s.overflow.lines > 0 {
        card(
            out,
            "untracked (overflow) identities, max",
            &s.overflow.identities_max.to_string(),
            true,
        );
    }
    out.push_str("</div></section>\n");
}

fn charts(out: &mut String, r: &Report) {
    out.push_str("<section id=\"charts\"><h2>Charts</h2><div class=\"charts\">\n");
    timeline(out, r);
    scopes_chart(out, &r.identities);
    bars(
        out,
        "denials-chart",
        "Denials by reason",
        &r.summary.denied,
        COLOURS[4],
    );
    out.push_str("</div></section>\n");
}

/// Requests per time bucket: the busiest identities, each a line.
fn timeline(out: &mut String, r: &Report) {
    const SERIES: usize = 8;
    let (w, h, left, right, top, bottom) = (760.0, 240.0, 48.0, 12.0, 12.0, 30.0);
    let n = r.timeline.requests.len();
    out.push_str("<figure id=\"timeline-chart\"><figcaption>Requests per identity over time");
    let _ = write!(
        out,
        " ({} per point, the {} busiest identities)</figcaption>",
        duration(r.timeline.bucket_s),
        SERIES.min(r.identities.len())
    );
    if n == 0 {
        out.push_str("<p class=\"none\">No requests.</p></figure>\n");
        return;
    }
    let mut busiest: Vec<&Identity> = r.identities.iter().collect();
    busiest.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then(a.client_id.cmp(&b.client_id))
    });
    busiest.truncate(SERIES);
    let max = busiest
        .iter()
        .flat_map(|i| i.activity.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let x = |i: usize| {
        if n <= 1 {
            left + (w - left - right) / 2.0
        } else {
            left + (w - left - right) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: u64| top + (h - top - bottom) * (1.0 - v as f64 / max);
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Requests per identity over time\">"
    );
    // Axes and the scale.
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{b}\" stroke=\"#d9dee8\"/>\
         <line x1=\"{left}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#d9dee8\"/>\
         <text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{max}</text>\
         <text x=\"{tx}\" y=\"{b}\" text-anchor=\"end\">0</text>",
        b = h - bottom,
        r = w - right,
        tx = left - 6.0,
        ty = top + 8.0,
        max = max as u64
    );
    if let Some(from) = &r.timeline.from {
        let _ = write!(
            out,
            "<text x=\"{left}\" y=\"{}\">{}</text>",
            h - 8.0,
            esc(from)
        );
    }
    if let Some(to) = &r.timeline.to {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            w - right,
            h - 8.0,
            esc(to)
        );
    }
    for (k, id) in busiest.iter().enumerate() {
        let colour = COLOURS.get(k).copied().unwrap_or("#000");
        let points: Vec<String> = id
            .activity
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = write!(
            out,
            "<g><title>{}/{}: {} requests</title>",
            esc(&id.provider),
            esc(&id.client_id),
            id.requests
        );
        if n == 1 {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"/>",
                x(0),
                y(id.activity.first().copied().unwrap_or(0))
            );
        } else {
            let _ = write!(
                out,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                points.join(" ")
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg><div class=\"legend\">");
    for (k, id) in busiest.iter().enumerate() {
        let _ = write!(
            out,
            "<span style=\"--c:{}\">{}</span>",
            COLOURS.get(k).copied().unwrap_or("#000"),
            short(&id.client_id, 40)
        );
    }
    out.push_str("</div></figure>\n");
}

/// Granted against exercised scopes, per identity (those granted the most).
fn scopes_chart(out: &mut String, ids: &[Identity]) {
    const ROWS: usize = 20;
    let mut rows: Vec<&Identity> = ids
        .iter()
        .filter(|i| !i.scopes_granted.is_empty())
        .collect();
    rows.sort_by(|a, b| {
        b.scopes_unused
            .len()
            .cmp(&a.scopes_unused.len())
            .then(b.scopes_granted.len().cmp(&a.scopes_granted.len()))
            .then(a.client_id.cmp(&b.client_id))
    });
    let total = rows.len();
    rows.truncate(ROWS);
    out.push_str(
        "<figure id=\"scopes-chart\"><figcaption>Scopes granted and exercised per identity",
    );
    if total > ROWS {
        let _ = write!(out, " (the {ROWS} with the most unused of {total})");
    }
    out.push_str("</figcaption>");
    if rows.is_empty() {
        out.push_str("<p class=\"none\">No scopes seen.</p></figure>\n");
        return;
    }
    let max = rows
        .iter()
        .map(|i| i.scopes_granted.len())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (w, label, row_h) = (760.0, 230.0, 22.0);
    let h = row_h * rows.len() as f64 + 8.0;
    let bar_w = w - label - 60.0;
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Scopes granted and exercised per identity\">"
    );
    for (k, i) in rows.iter().enumerate() {
        let y = k as f64 * row_h + 4.0;
        let granted = i.scopes_granted.len() as f64 / max * bar_w;
        let exercised = i.scopes_exercised.len().min(i.scopes_granted.len()) as f64 / max * bar_w;
        let _ = write!(
            out,
            "<g><title>{}/{}: granted {}; exercised {}; unused {}</title>\
             <text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label}\" y=\"{y}\" width=\"{granted:.1}\" height=\"16\" fill=\"#f3b79f\"/>\
             <rect x=\"{label}\" y=\"{y}\" width=\"{exercised:.1}\" height=\"16\" fill=\"#2b8a3e\"/>\
             <text x=\"{nx:.1}\" y=\"{ty}\">{}/{}</text></g>",
            esc(&i.provider),
            esc(&i.client_id),
            esc(&i.scopes_granted.join(" ")),
            esc(&i.scopes_exercised.join(" ")),
            esc(&i.scopes_unused.join(" ")),
            short(&i.client_id, 34),
            i.scopes_exercised.len(),
            i.scopes_granted.len(),
            lx = label - 6.0,
            ty = y + 12.0,
            nx = label + granted + 6.0,
        );
    }
    out.push_str(
        "</svg><div class=\"legend\"><span style=\"--c:#2b8a3e\">exercised</span>\
         <span style=\"--c:#f3b79f\">granted, never exercised</span></div></figure>\n",
    );
}

/// A horizontal bar per entry of `counts`.
fn bars(out: &mut String, id: &str, title: &str, counts: &BTreeMap<String, u64>, colour: &str) {
    let _ = write!(
        out,
        "<figure id=\"{id}\"><figcaption>{}</figcaption>",
        esc(title)
    );
    if counts.is_empty() {
        out.push_str("<p class=\"none\">None.</p></figure>\n");
        return;
    }
    let mut rows: Vec<(&String, &u64)> = counts.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let max = rows.first().map_or(1, |r| *r.1).max(1) as f64;
    let (w, label, row_h) = (760.0, 230.0, 22.0);
    let h = row_h * rows.len() as f64 + 8.0;
    let bar_w = w - label - 80.0;
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    for (k, (name, n)) in rows.iter().enumerate() {
        let y = k as f64 * row_h + 4.0;
        let len = **n as f64 / max * bar_w;
        let _ = write!(
            out,
            "<g><title>{}: {n}</title><text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label}\" y=\"{y}\" width=\"{len:.1}\" height=\"16\" fill=\"{colour}\"/>\
             <text x=\"{nx:.1}\" y=\"{ty}\">{n}</text></g>",
            esc(name),
            short(name, 34),
            lx = label - 6.0,
            ty = y + 12.0,
            nx = label + len + 6.0,
        );
    }
    out.push_str("</svg></figure>\n");
}

fn duration(s: u64) -> String {
    match s {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn codes(items: &[String]) -> String {
    if items.is_empty() {
        return "<span class=\"none\">none</span>".into();
    }
    items
        .iter()
        .map(|s| format!("<code>{}</code>", esc(s)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn opt(s: Option<&str>, none: &str) -> String {
    match s {
        Some(s) => esc(s),
        None => format!("<span class=\"none\">{}</span>", esc(none)),
    }
}

/// A finding's table: its heading, then rows, "none", or why it is absent.
fn finding<T>(
    out: &mut String,
    id: &str,
    title: &str,
    items: Option<&[T]>,
    needs: &str,
    head: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) {
    let _ = write!(out, "<h3 id=\"{id}\">{}", esc(title));
    if let Some(items) = items {
        let _ = write!(out, " ({})", items.len());
    }
    out.push_str("</h3>\n");
    let items = match items {
        None => {
            let _ = writeln!(
                out,
                "<p class=\"none\">Not computed: needs {}.</p>",
                esc(needs)
            );
            return;
        }
        Some([]) => {
            out.push_str("<p class=\"none\">None.</p>\n");
            return;
        }
        Some(items) => items,
    };
    out.push_str("<table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for item in items {
        out.push_str("<tr>");
        for cell in row(item) {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

fn findings(out: &mut String, f: &Findings, unused_days: u64, warning_days: u64) {
    const REGISTRY: &str = "--registry, or a configuration with an inline registry";
    out.push_str("<section id=\"findings\"><h2>Findings</h2>\n");
    finding(
        out,
        "least-privilege",
        "Least privilege: scopes granted but never exercised",
        Some(&f.least_privilege),
        "",
        &["Identity", "Owner", "Unused scopes", "Request only"],
        |i| {
            let mut ask = codes(&i.request_scopes);
            if !i.exercised_complete {
                ask.push_str(
                    " <span class=\"none\">(lower bound: some rules unknown, give --config)</span>",
                );
            }
            vec![
                format!("<code>{}/{}</code>", esc(&i.provider), esc(&i.client_id)),
                opt(i.owner.as_deref(), "none"),
                codes(&i.scopes_unused),
                ask,
            ]
        },
    );
    finding(
        out,
        "dormant",
        &format!("Registered identities not seen for {unused_days} days (offboarding candidates)"),
        f.dormant.as_deref(),
        REGISTRY,
        &["Identity", "Owner", "Last seen", "Days since"],
        |d| {
            vec![
                format!(
                    "<code>{}/{}</code>",
                    esc(d.provider.as_deref().unwrap_or("*")),
                    esc(&d.client_id)
                ),
                esc(&d.owner),
                opt(d.last_seen.as_deref(), "never in these logs"),
                d.days_since_seen.map_or(String::new(), |n| n.to_string()),
            ]
        },
    );
    finding(
        out,
        "expiring",
        &format!("Registered identities expired or expiring within {warning_days} days"),
        f.expiring.as_deref(),
        REGISTRY,
        &["Identity", "Owner", "Expires", "Days left"],
        |e| {
            vec![
                format!(
                    "<code>{}/{}</code>",
                    esc(e.provider.as_deref().unwrap_or("*")),
                    esc(&e.client_id)
                ),
                esc(&e.owner),
                format!(
                    "{}{}",
                    esc(&e.expires),
                    if e.expired {
                        " <span class=\"no\">expired</span>"
                    } else {
                        ""
                    }
                ),
                e.days_left.to_string(),
            ]
        },
    );
    finding(
        out,
        "unregistered",
        "Unregistered identities seen",
        Some(&f.unregistered),
        "",
        &["Identity", "Requests", "Last seen"],
        |u| {
            vec![
                format!("<code>{}/{}</code>", esc(&u.provider), esc(&u.client_id)),
                u.requests.to_string(),
                esc(&u.last_seen),
            ]
        },
    );
    finding(
        out,
        "long-lived-tokens",
        "Tokens longer-lived than their provider's max_lifetime_s",
        f.long_lived_tokens.as_deref(),
        "--config",
        &["Identity", "Longest token (s)", "Provider allows (s)"],
        |l| {
            vec![
                format!("<code>{}/{}</code>", esc(&l.provider), esc(&l.client_id)),
                l.max_token_lifetime_s.to_string(),
                l.max_lifetime_s.to_string(),
            ]
        },
    );
    finding(
        out,
        "unused-rules",
        "Rules never matched",
        f.unused_rules.as_deref(),
        "--config",
        &["Rule"],
        |r| vec![format!("<code>{}</code>", esc(r))],
    );
    finding(
        out,
        "unrequired-scopes",
        "Scopes no rule requires",
        f.unrequired_scopes.as_deref(),
        "--config",
        &[
            "Scope",
            "Identities granted it",
            "Registry entries allowing it",
        ],
        |s| {
            vec![
                format!("<code>{}</code>", esc(&s.scope)),
                s.identities.to_string(),
                s.registry_entries.to_string(),
            ]
        },
    );
    out.push_str("</section>\n");
}

fn identities(out: &mut String, ids: &[Identity]) {
    let _ = writeln!(
        out,
        "<section id=\"identities\"><h2>Identities ({})</h2>",
        ids.len()
    );
    if ids.is_empty() {
        out.push_str("<p class=\"none\">None seen.</p></section>\n");
        return;
    }
    out.push_str(
        "<table id=\"identities-table\"><thead><tr><th>Provider</th><th>Client id</th><th>Owner</th>\
         <th>Registered</th><th>First seen</th><th>Last seen</th><th class=\"num\">Requests</th>\
         <th class=\"num\">Allowed</th><th>Denied</th><th>Rules</th><th>Scopes granted</th>\
         <th>Exercised</th><th>Unused</th></tr></thead><tbody>\n",
    );
    let counts = |m: &BTreeMap<String, u64>| -> String {
        if m.is_empty() {
            return "<span class=\"none\">none</span>".into();
        }
        m.iter()
            .map(|(k, v)| format!("{} {v}", esc(k)))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    for i in ids {
        let rules: Vec<String> = i.rules.keys().cloned().collect();
        let _ = writeln!(
            out,
            "<tr class=\"identity\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&i.provider),
            esc(&i.client_id),
            opt(i.owner.as_deref(), "none"),
            match i.registered {
                Some(true) => "<span class=\"yes\">yes</span>",
                Some(false) => "<span class=\"no\">no</span>",
                None => "<span class=\"none\">unknown</span>",
            },
            esc(&i.first_seen),
            esc(&i.last_seen),
            i.requests,
            i.allowed,
            counts(&i.denied),
            codes(&rules),
            codes(&i.scopes_granted),
            codes(&i.scopes_exercised),
            codes(&i.scopes_unused),
        );
    }
    out.push_str("</tbody></table></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_logs_cannot_open_markup() {
        assert_eq!(
            esc("<script>alert('x')</script>&\"\u{1b}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\\u{1b}"
        );
        assert_eq!(short("abcdef", 4), "abc…");
        assert_eq!(short("<b>", 4), "&lt;b&gt;");
    }
}
