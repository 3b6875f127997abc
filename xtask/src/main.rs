//! Project automation: `cargo xtask ci` runs what CI runs (after PostgreSQL is up); the tidy
//! checks live in `tidy.rs` as ordinary tests, so `cargo test --workspace` enforces them.

use std::process::{Command, ExitCode};

#[cfg(test)]
mod tidy;

const USAGE: &str = "usage: cargo xtask ci\n\n  ci   cargo fmt --check, cargo clippy -D warnings, cargo test --workspace";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn ci() -> ExitCode {
    let steps: [&[&str]; 3] = [
        &["fmt", "--all", "--", "--check"],
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &["test", "--workspace"],
    ];
    for step in steps {
        eprintln!("$ cargo {}", step.join(" "));
        let status = Command::new(env!("CARGO")).args(step).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("failed: cargo {}", step.join(" "));
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
