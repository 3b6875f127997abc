//! Store tests: every repository port against databases built by the migrations, each test run
//! once on SQLite and once on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod applications;
mod connect;
mod migrations;
mod rate_counters;
mod retention;
mod sealing;
mod sessions;
mod shares;
mod tls;
mod webhooks;
mod workflows;
