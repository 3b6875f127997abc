//! `cargo xtask fuzz [--seconds N]`: runs each cargo-fuzz target for N seconds (default 60),
//! seeded with the fixtures, and prints the executions and the outcome of each.
//!
//! cargo-fuzz needs nightly features; on the stable toolchain they are enabled with
//! `RUSTC_BOOTSTRAP=1`. Install it once with `cargo install cargo-fuzz`.

use std::path::Path;
use std::process::{Command, ExitCode};

const TARGETS: [&str; 2] = ["token_verify", "request_parsing"];

pub fn run(args: &[String]) -> ExitCode {
    let seconds = crate::seconds(args, 60);
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut failed = false;
    for target in TARGETS {
        let corpus = fuzz.join("corpus").join(target);
        if std::fs::create_dir_all(&corpus).is_err() {
            eprintln!("cannot create {}", corpus.display());
            return ExitCode::FAILURE;
        }
        if let Ok(entries) = std::fs::read_dir(&fixtures) {
            for entry in entries.flatten() {
                let _ = std::fs::copy(entry.path(), corpus.join(entry.file_name()));
            }
        }
        eprintln!("fuzzing {target} for {seconds} s");
        let output = Command::new(env!("CARGO"))
            .current_dir(&fuzz)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "-O", target, "--", &format!("-max_total_time={seconds}")])
            .output();
        match output {
            Ok(output) => {
                let log = String::from_utf8_lossy(&output.stderr);
                let done =
                    log.lines().rev().find(|l| l.starts_with("Done ")).unwrap_or("no summary");
                println!(
                    "{target}: {done}; {}",
                    if output.status.success() { "0 crashes" } else { "CRASH" }
                );
                if !output.status.success() {
                    failed = true;
                    eprintln!(
                        "{}",
                        log.lines()
                            .rev()
                            .take(40)
                            .collect::<Vec<_>>()
                            .into_iter()
                            .rev()
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                }
            }
            Err(error) => {
                eprintln!("cannot run cargo fuzz (cargo install cargo-fuzz): {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
