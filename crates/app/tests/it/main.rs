//! Black-box tests of the HTTP API: the application is built as `handoff serve` builds it, bound
//! to port 0 on a throwaway database, and driven over TCP. Each test runs on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod auth;
mod browser;
mod cli;
mod console;
mod demo;
mod errors;
mod faults;
mod federation;
mod flow;
mod hostile;
mod idempotency;
mod keys;
mod limits;
mod lists;
mod logs;
mod metrics;

mod pages;
mod privacy;
mod processes;
mod provenance;
mod report;
mod retention;
mod reviews;
mod scoped_keys;
mod sealed;
mod sessions;
mod sharing;
mod timeouts;
mod walkthrough;
mod webhooks;
mod workflows;
