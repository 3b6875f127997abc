//! Project automation: `cargo xtask ci` runs what CI runs (after PostgreSQL is up); the tidy
//! checks live in `tidy.rs` as ordinary tests, so `cargo test --workspace` enforces them.

use std::process::{Command, ExitCode};

mod fuzz;
mod mcp;
mod schemathesis;
mod seeded;
#[cfg(test)]
mod tidy;

const USAGE: &str = "usage: cargo xtask <ci | openapi | screenshots | schemathesis | mcp | fuzz | bench>\n\n  ci        fmt --check, clippy -D warnings, test --workspace, the examples, doc, MCP, Schemathesis 30 s\n  openapi   write docs/openapi.json from the code\n  screenshots   write the review console's screenshots in docs/screenshots/ (headless Chromium)\n  schemathesis [--seconds N] [--seed S]   run Schemathesis against a seeded server (default 120 s; new cases unless seeded)\n  mcp       drive Didit's MCP server (npm) against a seeded server, every tool in scope\n  fuzz [--seconds N]   run each fuzz target N seconds (default 60; needs cargo-fuzz)\n  bench [--quick] [--only sqlite|postgres] [--pool N] [--webhooks | --scale | --fairness | --federation]   the import benchmark, or the webhook, scale-out, noisy-neighbour or federation one (docs/performance.md)";

/// The seed of CI's Schemathesis run.
const CI_SCHEMATHESIS_SEED: &str = "20261130";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("openapi") => openapi(),
        Some("screenshots") => screenshots(),
        Some("mcp") => mcp::run(),
        Some("schemathesis") => schemathesis::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The value of `--seconds N` among `args`, or `default`.
fn seconds(args: &[String], default: u64) -> u64 {
    args.windows(2)
        .find(|w| w[0] == "--seconds")
        .and_then(|w| w[1].parse::<u64>().ok())
        .unwrap_or(default)
}

/// `cargo xtask bench [--quick] [--only sqlite|postgres] [--pool N] [--webhooks | --scale |
/// --fairness | --federation]`: the release-built
/// benchmark; its last line is JSON.
fn bench(args: &[String]) -> ExitCode {
    // The server binary too: `--scale` and `--fairness` start it as separate processes.
    let built = Command::new(env!("CARGO"))
        .args(["build", "-q", "--release", "-p", "handoff", "-p", "handoff-bench"])
        .status();
    if !built.is_ok_and(|s| s.success()) {
        return ExitCode::FAILURE;
    }
    let status = Command::new(env!("CARGO"))
        .args(["run", "-q", "--release", "-p", "handoff-bench", "--"])
        .args(args)
        .status();
    if status.is_ok_and(|s| s.success()) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// `cargo xtask screenshots`: the browser test on SQLite, writing its screenshots of the review
/// console into `docs/screenshots/` (the queue at desktop width and a session at phone width
/// are the ones the docs show).
fn screenshots() -> ExitCode {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    let status = Command::new(env!("CARGO"))
        .args([
            "test",
            "-q",
            "-p",
            "handoff",
            "--test",
            "it",
            "--",
            "--exact",
            "browser::a_reviewer_clears_the_queue_in_a_browser::sqlite",
        ])
        .env("HANDOFF_SCREENSHOTS_DIR", &dir)
        .env("CI", "true")
        .status();
    if !status.is_ok_and(|s| s.success()) {
        return ExitCode::FAILURE;
    }
    eprintln!("wrote {}", dir.display());
    ExitCode::SUCCESS
}

fn openapi() -> ExitCode {
    let output =
        Command::new(env!("CARGO")).args(["run", "-q", "-p", "handoff", "--", "openapi"]).output();
    match output {
        Ok(output) if output.status.success() => {
            let path =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
            match std::fs::write(&path, &output.stdout) {
                Ok(()) => {
                    eprintln!("wrote {}", path.display());
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("cannot write {}: {error}", path.display());
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("`handoff openapi` failed");
            ExitCode::FAILURE
        }
    }
}

/// What CI runs once PostgreSQL is up: fmt, clippy, the README's test command, the embedding
/// examples, the docs without a warning, Didit's MCP server against a seeded server (skipped
/// when npm cannot install it), and a bounded Schemathesis run when `schemathesis` is installed
/// (`.ci/run` installs it).
fn ci() -> ExitCode {
    let steps: [&[&str]; 6] = [
        &["fmt", "--all", "--", "--check"],
        &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
        &["test", "--workspace"],
        &["run", "-q", "-p", "handoff-domain", "--example", "own_ports"],
        &["run", "-q", "-p", "handoff", "--example", "mount_routes"],
        &["doc", "--workspace", "--no-deps"],
    ];
    for step in steps {
        eprintln!("$ cargo {}", step.join(" "));
        let status =
            Command::new(env!("CARGO")).args(step).env("RUSTDOCFLAGS", "-D warnings").status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("failed: cargo {}", step.join(" "));
            return ExitCode::FAILURE;
        }
    }
    eprintln!("$ cargo xtask mcp");
    if mcp::run() != ExitCode::SUCCESS {
        return ExitCode::FAILURE;
    }
    let installed =
        Command::new("schemathesis").arg("--version").output().is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!("schemathesis is not installed: its run is skipped");
        return ExitCode::SUCCESS;
    }
    eprintln!("$ cargo xtask schemathesis --seconds 30");
    // A fixed seed: CI checks the same cases each run; `cargo xtask schemathesis` explores.
    schemathesis::run(&["--seconds", "30", "--seed", CI_SCHEMATHESIS_SEED].map(str::to_owned))
}
