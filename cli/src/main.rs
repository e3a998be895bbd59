//! `scopegate`: check configurations, explain decisions and mint test tokens,
//! with the same core the filter runs (CONTRACT §4).

mod args;
mod check;
mod commands;
mod document;
mod explain;
mod help;
mod lint;
mod registry;
mod report;
mod revocation;
mod sources;
mod statuslist;

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match commands::run(&argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("scopegate: {e}");
            ExitCode::from(2)
        }
    }
}
