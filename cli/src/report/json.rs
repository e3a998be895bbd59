//! `--format json`: the report model as it is (members documented in
//! docs/report.md), pretty-printed, with a final newline.

use super::model::Report;

pub fn render(report: &Report) -> Result<String, String> {
    let mut text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}
