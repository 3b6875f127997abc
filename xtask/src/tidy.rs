//! Tidy checks on the tree itself: the allowed dependency arrows between crates, and a `//!`
//! header on every Rust file.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The names in a manifest's `[dependencies]` section (not dev- or build-dependencies).
fn dependencies(manifest: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(manifest)).unwrap();
    let mut in_dependencies = false;
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if in_dependencies && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            names.push(name.to_owned());
        }
    }
    names
}

#[test]
fn crates_depend_only_along_the_allowed_arrows() {
    let workspace = |deps: &[String]| -> Vec<String> {
        deps.iter().filter(|d| d.starts_with("handoff")).cloned().collect()
    };
    let domain = dependencies("crates/domain/Cargo.toml");
    assert!(workspace(&domain).is_empty(), "domain depends on no workspace crate: {domain:?}");
    for forbidden in ["sea-orm", "actix-web", "jsonwebtoken", "tokio", "sea-orm-migration"] {
        assert!(!domain.iter().any(|d| d == forbidden), "domain must not depend on {forbidden}");
    }
    // Every member of the workspace, with the workspace crates it may depend on: the adapters
    // on the domain alone (the webhooks crate also on the token crate, to sign; the store, to
    // seal identity data at rest), the binary on all of them.
    let arrows: [(&str, &[&str]); 9] = [
        ("crates/domain/Cargo.toml", &[]),
        ("crates/token/Cargo.toml", &["handoff-domain"]),
        ("crates/store/Cargo.toml", &["handoff-domain", "handoff-token"]),
        ("crates/http/Cargo.toml", &["handoff-domain"]),
        ("crates/webhooks/Cargo.toml", &["handoff-domain", "handoff-token"]),
        (
            "crates/app/Cargo.toml",
            &[
                "handoff-domain",
                "handoff-token",
                "handoff-store",
                "handoff-http",
                "handoff-webhooks",
                "handoff-migrations",
            ],
        ),
        ("migrations/Cargo.toml", &[]),
        ("crates/testdb/Cargo.toml", &[]),
        ("xtask/Cargo.toml", &[]),
    ];
    let members = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    for (manifest, allowed) in arrows {
        let mut deps = workspace(&dependencies(manifest));
        deps.sort();
        let mut allowed: Vec<String> = allowed.iter().map(|d| (*d).to_owned()).collect();
        allowed.sort();
        assert!(
            deps.iter().all(|d| allowed.contains(d)),
            "{manifest} depends on {deps:?}; it may depend on {allowed:?}"
        );
    }
    // Each crate of the workspace but the bench (which measures the binary) has its row.
    for member in members
        .split("members = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_default()
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty() && *m != "bench")
    {
        let manifest = format!("{member}/Cargo.toml");
        assert!(
            arrows.iter().any(|(m, _)| *m == manifest),
            "{manifest} has no row in the dependency rules"
        );
    }
}

/// The store and the HTTP layer carry no test scaffolding, and the benchmark measures the
/// production build of each crate.
#[test]
fn production_crates_have_no_test_features() {
    for manifest in [
        "crates/store/Cargo.toml",
        "crates/http/Cargo.toml",
        "crates/token/Cargo.toml",
        "bench/Cargo.toml",
    ] {
        let text = std::fs::read_to_string(root().join(manifest)).unwrap();
        assert!(!text.contains("test-support"), "{manifest} names a test-support feature");
    }
}

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

#[test]
fn every_rust_file_says_what_it_is_for() {
    let mut files = Vec::new();
    for dir in ["crates", "migrations", "xtask", "bench", "fuzz/fuzz_targets"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 20);
    let missing: Vec<_> =
        files.iter().filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!")).collect();
    assert!(missing.is_empty(), "files without a //! header: {missing:?}");
}

/// Every file and folder the codemap of docs/ARCHITECTURE.md names under a crate exists, and
/// every path it starts a line with exists.
#[test]
fn the_codemap_names_only_what_exists() {
    let text = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let block = text
        .split("## Codemap")
        .nth(1)
        .and_then(|rest| rest.split("```").nth(1))
        .expect("a codemap block");
    let mut source: Option<PathBuf> = None;
    let mut checked = 0;
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        if !line.starts_with(' ') {
            let first = line.split_whitespace().next().unwrap_or_default();
            let path = root().join(first);
            // `examples` heads a list of paths rather than being one.
            if first != "examples" {
                assert!(path.exists(), "the codemap names {first}, which does not exist");
                checked += 1;
            }
            source = Some(path.join("src")).filter(|src| src.is_dir());
            continue;
        }
        // An entry of a crate: two spaces, its names, then two spaces or more and what it is.
        let Some(src) = &source else { continue };
        let Some(entry) = line.strip_prefix("  ").filter(|e| !e.starts_with(' ')) else {
            continue;
        };
        let names = entry.split("  ").next().unwrap_or_default();
        for name in names.split(", ").map(str::trim) {
            if name.ends_with(".rs") || name.ends_with('/') {
                let path = src.join(name.trim_end_matches('/'));
                assert!(path.exists(), "the codemap names {}", path.display());
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "the codemap was read ({checked} names checked)");
}
