//! The dependency rule of `src/lib.rs`, held to the code: a top-level
//! module uses only the modules below it in `LAYERS`, and the HTTP layer
//! changes the store only through `service`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level modules, highest first. Each may use only those after it.
const LAYERS: &[&str] = &[
    "bench",
    "app",
    "api",
    "service",
    "providers",
    "webhooks",
    "error",
    "store",
    "audit",
    "model",
    "policy",
    "config",
    "tls",
    "auth",
    "clock",
    "money",
    "ids",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`None` for the
/// crate root and the binary).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.trim_end_matches(".rs").to_owned();
    (!matches!(first.as_str(), "lib" | "main")).then_some(first)
}

/// The top-level modules a source text names with `crate::`, in paths and
/// in grouped imports (`use crate::{a, b::c}`).
fn uses(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String =
                    item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                found.insert(name);
            }
        } else {
            found.insert(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    found.retain(|n| !n.is_empty());
    found
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let order = LAYERS;
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut seen = BTreeSet::new();
    let mut broken = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else { continue };
        seen.insert(module.clone());
        let rank = order
            .iter()
            .position(|m| *m == module)
            .unwrap_or_else(|| panic!("{} is not placed in LAYERS (and in src/lib.rs's list)", module));
        for used in uses(&std::fs::read_to_string(file).unwrap()) {
            if used == module {
                continue;
            }
            match order.iter().position(|m| *m == used) {
                Some(r) if r > rank => {}
                _ => broken.push(format!("{} uses crate::{used}", file.display())),
            }
        }
    }
    assert!(broken.is_empty(), "dependencies against the layering:\n{}", broken.join("\n"));
    assert_eq!(seen.len(), order.len(), "every layer exists: {seen:?}");
}

#[test]
fn the_http_layer_writes_only_through_services() {
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut files = Vec::new();
    rust_files(&api, &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for call in [".write(move |tx|", ".write_validated(", ".write_for_agent(", ".seal_audit("] {
            assert!(
                !text.contains(call),
                "{} calls the store's {call}: go through a service",
                file.display()
            );
        }
    }
}

#[test]
fn the_check_sees_grouped_and_plain_uses() {
    let found = uses("use crate::{app::App, store};\nlet x = crate::policy::Policy::x();");
    assert_eq!(found.into_iter().collect::<Vec<_>>(), ["app", "policy", "store"]);
}
