//! The source tree keeps its layers: a module imports only from its own
//! layer or the ones below it (the order `lib.rs` lists), and no two modules
//! import each other, directly or around a circle.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Lowest first; `remote` and `request` are siblings above `identity`.
const LAYERS: [(&str, &[&str]); 8] = [
    ("vocab", &[]),
    ("crypto", &["vocab"]),
    ("jose", &["crypto", "vocab"]),
    ("policy", &["jose", "crypto", "vocab"]),
    ("identity", &["policy", "jose", "crypto", "vocab"]),
    (
        "request",
        &["identity", "policy", "jose", "crypto", "vocab"],
    ),
    ("remote", &["identity", "policy", "jose", "crypto", "vocab"]),
    (
        "host",
        &[
            "request", "remote", "identity", "policy", "jose", "crypto", "vocab",
        ],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `layer/module` for every source file below a layer folder.
fn modules() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (layer, _) in LAYERS {
        let dir = src().join(layer);
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                let name = path
                    .file_stem()
                    .expect("stem")
                    .to_string_lossy()
                    .to_string();
                let text = fs::read_to_string(&path).expect("source");
                out.insert(format!("{layer}/{name}"), text);
            }
        }
    }
    out
}

/// The `layer/module`s a source text names through `crate::layer::module`,
/// test modules included (they are part of the crate's graph too).
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let mut parts = rest.split("::").map(|p| {
            p.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        });
        if let (Some(layer), Some(module)) = (parts.next(), parts.next()) {
            if !module.is_empty()
                && module
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
            {
                out.insert(format!("{layer}/{module}"));
            }
        }
    }
    out
}

#[test]
fn every_source_file_sits_in_a_layer_folder() {
    let allowed: BTreeSet<String> = LAYERS
        .iter()
        .map(|(l, _)| format!("{l}.rs"))
        .chain(["lib.rs".to_string()])
        .collect();
    for entry in fs::read_dir(src()).expect("src") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().to_string();
        if entry.path().is_file() {
            assert!(
                allowed.contains(&name),
                "{name} is not a layer file: put it in a layer folder"
            );
        } else {
            assert!(
                LAYERS.iter().any(|(l, _)| *l == name),
                "{name}/ is not a layer listed in tests/layers.rs"
            );
        }
    }
}

#[test]
fn lib_rs_lists_the_layers_lowest_first() {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let expected: Vec<&str> = LAYERS.iter().map(|(l, _)| *l).collect();
    assert_eq!(declared, expected);
    for layer in expected {
        assert!(
            lib.contains(&format!("//! - `{layer}`:")),
            "lib.rs has no map line for `{layer}`"
        );
    }
}

#[test]
fn no_module_imports_a_higher_layer() {
    let rules: BTreeMap<&str, &[&str]> = LAYERS.into_iter().collect();
    let mut faults = Vec::new();
    for (module, text) in modules() {
        let layer = module.split('/').next().expect("layer");
        for target in imports(&text) {
            let to = target.split('/').next().expect("layer");
            if to != layer && !rules[layer].contains(&to) {
                faults.push(format!("{module} uses {target}"));
            }
        }
    }
    assert!(faults.is_empty(), "upward imports:\n{}", faults.join("\n"));
}

#[test]
fn no_import_circle_between_modules() {
    let all = modules();
    let graph: BTreeMap<String, BTreeSet<String>> = all
        .iter()
        .map(|(m, text)| {
            let deps = imports(text)
                .into_iter()
                .filter(|d| d != m && all.contains_key(d))
                .collect();
            (m.clone(), deps)
        })
        .collect();
    if let Some(circle) = find_circle(&graph) {
        panic!("import circle: {}", circle.join(" -> "));
    }
}

/// A circle in the graph, printed whole, or `None`: depth-first search that
/// keeps the path it is on.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == node) {
            let mut circle = path[start..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_circle_finder_reports_a_circle_and_passes_a_chain() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(find_circle(&graph(&[("a", "b"), ("b", "c")])), None);
    let circle = find_circle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])).expect("circle");
    assert_eq!(circle, ["a", "b", "c", "a"]);
}

#[test]
fn the_import_reader_finds_crate_paths() {
    let a = imports("use crate::policy::config::Config; fn f() { crate::vocab::text::clip(x, 1) }");
    assert_eq!(
        a,
        ["policy/config", "vocab/text"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}
