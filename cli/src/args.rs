//! A small flag parser: `--name value`, `--name=value`, repeated flags and
//! positional arguments. Unknown flags are errors, never ignored.

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Args {
    flags: HashMap<String, Vec<String>>,
    pub positional: Vec<String>,
}

impl Args {
    /// Parses `argv`; `known` lists the flags that take a value, `switches` those that do not.
    pub fn parse(argv: &[String], known: &[&str], switches: &[&str]) -> Result<Self, String> {
        let mut out = Args::default();
        let mut it = argv.iter();
        while let Some(a) = it.next() {
            if let Some(flag) = a.strip_prefix("--") {
                let (name, inline) = match flag.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (flag, None),
                };
                if switches.contains(&name) {
                    if inline.is_some() {
                        return Err(format!("--{name} takes no value"));
                    }
                    out.flags
                        .entry(name.to_string())
                        .or_default()
                        .push(String::new());
                    continue;
                }
                if !known.contains(&name) {
                    return Err(format!("unknown option --{name}"));
                }
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| format!("--{name} needs a value"))?,
                };
                out.flags.entry(name.to_string()).or_default().push(value);
            } else {
                out.positional.push(a.clone());
            }
        }
        Ok(out)
    }

    pub fn one(&self, name: &str) -> Result<Option<&str>, String> {
        match self.flags.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([v]) => Ok(Some(v)),
            Some(_) => Err(format!("--{name} given more than once")),
        }
    }

    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.one(name)?
            .ok_or_else(|| format!("--{name} is required"))
    }

    pub fn all(&self, name: &str) -> &[String] {
        self.flags.get(name).map_or(&[], Vec::as_slice)
    }
}
