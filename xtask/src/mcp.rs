//! `cargo xtask mcp`: Didit's official MCP server (`@didit-protocol/mcp-server` from npm), driven
//! over stdio against a seeded handoff, calls each of its tools for sessions, reviews, users,
//! businesses and workflows and checks what comes back. Skips, saying so, where npm cannot
//! install the server.
//!
//! The share and import tools run as two applications would: the caller's server shares with
//! the receiver, and a second MCP server, holding the receiver's key, imports. Not called: the
//! bulk-import tools (out of scope, docs/api.md).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use crate::seeded::{Seeded, expect, field, root};

/// The version the harness is written against.
const PACKAGE: &str = "@didit-protocol/mcp-server@4.0.0";

/// The tools in scope; each must be called and succeed.
const TOOLS: [&str; 30] = [
    "didit_create_session",
    "didit_list_sessions",
    "didit_get_session_decision",
    "didit_update_session_status",
    "didit_update_session_data",
    "didit_update_session_poa_data",
    "didit_delete_session",
    "didit_batch_delete_sessions",
    "didit_generate_session_pdf",
    "didit_share_session",
    "didit_import_shared_session",
    "didit_list_session_reviews",
    "didit_add_session_review",
    "didit_list_workflows",
    "didit_create_workflow",
    "didit_get_workflow",
    "didit_update_workflow",
    "didit_delete_workflow",
    "didit_list_users",
    "didit_create_user",
    "didit_get_user",
    "didit_update_user",
    "didit_update_user_status",
    "didit_delete_users",
    "didit_list_businesses",
    "didit_create_business",
    "didit_get_business",
    "didit_update_business",
    "didit_update_business_status",
    "didit_delete_businesses",
];

pub fn run() -> ExitCode {
    let prefix = root().join("target/mcp-server");
    let script = prefix.join("node_modules/@didit-protocol/mcp-server/dist/index.js");
    if !script.exists() {
        let installed = Command::new("npm")
            .args(["install", "--no-save", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&prefix)
            .arg(PACKAGE)
            .status();
        if !installed.is_ok_and(|s| s.success()) || !script.exists() {
            eprintln!(
                "mcp: skipped: npm could not install {PACKAGE} (is the npm registry reachable?)"
            );
            return ExitCode::SUCCESS;
        }
    }
    match drive(&script) {
        Ok(failures) if failures.is_empty() => {
            eprintln!("mcp: every tool in scope succeeded");
            ExitCode::SUCCESS
        }
        Ok(failures) => {
            eprintln!("mcp: {} failed: {}", failures.len(), failures.join(", "));
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("mcp: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The MCP server as a child speaking newline-delimited JSON-RPC.
struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    called: Vec<&'static str>,
    failures: Vec<String>,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Client {
    /// The MCP server at `script`, calling handoff on `port` with `key`, initialized, once it
    /// lists every tool in scope.
    fn start(script: &std::path::Path, port: u16, key: &str) -> Result<Client, String> {
        let mut child = Command::new("node")
            .arg(script)
            .env("DIDIT_API_BASE_URL", format!("http://127.0.0.1:{port}/v3"))
            .env("DIDIT_API_KEY", key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run node: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut mcp =
            Client { child, stdin, stdout, next_id: 0, called: Vec::new(), failures: Vec::new() };
        mcp.request(
        "initialize",
        json!({"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "handoff-xtask", "version": "1"}}),
    )?;
        mcp.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        let listed = mcp.request("tools/list", json!({}))?;
        let names: Vec<&str> = listed["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str())
            .collect();
        for tool in TOOLS {
            if !names.contains(&tool) {
                return Err(format!("{PACKAGE} has no tool {tool}"));
            }
        }
        Ok(mcp)
    }

    fn send(&mut self, message: &Value) -> Result<(), String> {
        writeln!(self.stdin, "{message}").map_err(|e| e.to_string())
    }

    fn request(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("the MCP server exited".into());
            }
            let message: Value = serde_json::from_str(&line).map_err(|e| e.to_string())?;
            if message["id"] == id {
                if let Some(error) = message.get("error") {
                    return Err(format!("{method}: {error}"));
                }
                return Ok(message["result"].clone());
            }
        }
    }

    /// Calls `tool`, records the outcome, and gives the answer's JSON (Null on failure).
    fn call(
        &mut self, tool: &'static str, arguments: Value, check: impl Fn(&Value) -> bool,
    ) -> Value {
        self.called.push(tool);
        let outcome = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        let text = match &outcome {
            Ok(result) => result["content"][0]["text"].as_str().unwrap_or("").to_owned(),
            Err(error) => error.clone(),
        };
        let failed = outcome.as_ref().map_or(true, |r| r["isError"] == true);
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if failed || !check(&answer) {
            let shown: String = text.chars().take(400).collect();
            eprintln!("FAIL {tool}: {shown}");
            self.failures.push(tool.to_owned());
            Value::Null
        } else {
            eprintln!("ok   {tool}");
            answer
        }
    }
}

fn text(value: &Value, name: &str) -> String {
    value[name].as_str().unwrap_or_default().to_owned()
}

fn drive(script: &std::path::Path) -> Result<Vec<String>, String> {
    let seeded = Seeded::start("mcp")?;
    let mut mcp = Client::start(script, seeded.port, &seeded.key)?;
    let started = Instant::now();

    // Workflows.
    let features = json!([{"feature": "OCR"}, {"feature": "LIVENESS", "config": {"face_liveness_method": "PASSIVE"}}, {"feature": "FACE_MATCH"}]);
    let workflow = mcp.call(
        "didit_create_workflow",
        json!({"workflow_label": "MCP onboarding", "features": features, "status": "published",
               "is_white_label_enabled": false, "is_desktop_allowed": true, "max_retry_attempts": 3, "retry_window_days": 7}),
        |w| w["workflow_label"] == "MCP onboarding" && w["max_retry_attempts"] == 3,
    );
    let workflow_id = text(&workflow, "workflow_id");
    mcp.call("didit_list_workflows", json!({}), |l| {
        l["results"]
            .as_array()
            .is_some_and(|r| r.iter().any(|w| w["workflow_id"] == workflow_id.as_str()))
    });
    mcp.call("didit_get_workflow", json!({"workflow_id": workflow_id}), |w| {
        w["workflow_id"] == workflow_id.as_str()
    });
    mcp.call(
        "didit_update_workflow",
        json!({"workflow_id": workflow_id, "workflow_label": "MCP onboarding v2", "max_retry_attempts": 5}),
        |w| w["workflow_label"] == "MCP onboarding v2" && w["max_retry_attempts"] == 5,
    );

    // Sessions.
    let portrait = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let created = mcp.call(
        "didit_create_session",
        json!({"workflow_id": seeded.user_workflow, "vendor_data": "mcp-user", "callback": "https://example.com/done",
               "callback_method": "both", "language": "es", "metadata": {"plan": "gold"},
               "contact_details": {"email": "ana@example.com"}, "expected_details": {"first_name": "Ana"},
               "portrait_image": portrait}),
        |s| s["session_id"].is_string() && s["url"].is_string(),
    );
    let unfinished = text(&created, "session_id");
    mcp.call(
        "didit_list_sessions",
        json!({"status": "Not Started", "session_kind": "user", "vendor_data": "mcp-user", "workflow_id": seeded.user_workflow,
               "search": "mcp-user", "date_from": "2000-01-01", "limit": "10", "offset": "0"}),
        |l| l["count"] == 1 && l["results"][0]["session_id"] == unfinished.as_str(),
    );
    mcp.call("didit_get_session_decision", json!({"session_id": unfinished}), |d| {
        d["status"] == "Not Started"
            && d["language"] == "es"
            && d["callback_method"] == "both"
            && d["portrait_image"] == portrait
    });
    let finished =
        seeded.finished_session(&seeded.user_workflow, "mcp-user-2", "record-results-user.json")?;
    mcp.call(
        "didit_update_session_data",
        json!({"session_id": finished, "first_name": "Ana María", "date_of_birth": "1990-01-02"}),
        |_| true,
    );
    mcp.call(
        "didit_update_session_poa_data",
        json!({"session_id": finished, "issuer": "Utility Co", "poa_address": "1 Main St"}),
        |_| true,
    );
    mcp.call("didit_get_session_decision", json!({"session_id": finished}), |d| {
        d["id_verifications"][0]["first_name"] == "Ana María"
            && d["poa_verifications"][0]["issuer"] == "Utility Co"
    });
    mcp.call("didit_list_session_reviews", json!({"session_id": finished}), |r| {
        r["count"].is_u64()
    });
    mcp.call(
        "didit_add_session_review",
        json!({"session_id": finished, "new_status": "In Review", "comment": "Second look"}),
        |r| r["new_status"] == "In Review",
    );
    mcp.call(
        "didit_update_session_status",
        json!({"session_id": finished, "new_status": "Resubmitted", "nodes_to_resubmit": ["feature_poa"],
               "comment": "Address unreadable", "send_email": false}),
        |_| true,
    );
    mcp.call("didit_get_session_decision", json!({"session_id": finished}), |d| {
        d["status"] == "Resubmitted" && d["poa_verifications"].as_array().is_none_or(Vec::is_empty)
    });
    mcp.call("didit_generate_session_pdf", json!({"session_id": seeded.sessions[0]}), |r| {
        r["raw"].as_str().is_some_and(|t| t.starts_with("%PDF-"))
    });
    // Sharing: the caller shares as Didit's tool names the receiver; the receiver, through an
    // MCP server of its own, imports into its default workflow (the tool sends none).
    let shared = mcp.call(
        "didit_share_session",
        json!({"session_id": seeded.sessions[0], "partner_client_id": seeded.receiver_id}),
        |s| s["share_token"].is_string(),
    );
    let default =
        json!({"features": [{"feature": "OCR"}, {"feature": "LIVENESS"}], "is_default": true});
    let receiver_workflow = field(
        &expect(
            crate::seeded::request(
                seeded.port,
                "POST",
                "/v3/workflows/",
                Some(&seeded.receiver_key),
                Some(&default.to_string()),
            ),
            201,
            "the receiver's default workflow",
        )?,
        "workflow_id",
    )?;
    let mut receiver = Client::start(script, seeded.port, &seeded.receiver_key)?;
    receiver.call(
        "didit_import_shared_session",
        json!({"share_token": text(&shared, "share_token")}),
        |clone| {
            clone["workflow_id"] == receiver_workflow.as_str()
                && clone["shared_from_session"] == seeded.sessions[0].as_str()
        },
    );
    mcp.called.append(&mut receiver.called);
    mcp.failures.append(&mut receiver.failures);
    mcp.call("didit_delete_session", json!({"session_id": unfinished}), |_| true);
    let number = expect(
        seeded.call("GET", &format!("/v3/session/{finished}/decision/"), None),
        200,
        "decision",
    )?["session_number"]
        .clone();
    mcp.call("didit_batch_delete_sessions", json!({"session_numbers": [number]}), |d| {
        d["deleted"] == 1
    });

    // Users and businesses.
    let users = [
        "didit_create_user",
        "didit_list_users",
        "didit_get_user",
        "didit_update_user",
        "didit_update_user_status",
        "didit_delete_users",
    ];
    let businesses = [
        "didit_create_business",
        "didit_list_businesses",
        "didit_get_business",
        "didit_update_business",
        "didit_update_business_status",
        "didit_delete_businesses",
    ];
    for (vendor_data, [create, list, get, update, status, delete]) in
        [("mcp-person", users), ("mcp-company", businesses)]
    {
        mcp.call(
            create,
            json!({"vendor_data": vendor_data, "display_name": "MCP", "metadata": {"tier": 1}}),
            |e| e["vendor_data"] == vendor_data,
        );
        mcp.call(list, json!({"search": vendor_data, "limit": 5}), |l| l["count"] == 1);
        mcp.call(get, json!({"vendor_data": vendor_data}), |e| e["display_name"] == "MCP");
        mcp.call(update, json!({"vendor_data": vendor_data, "display_name": "MCP renamed"}), |e| {
            e["display_name"] == "MCP renamed"
        });
        mcp.call(status, json!({"vendor_data": vendor_data, "status": "FLAGGED"}), |e| {
            e["status"] == "FLAGGED"
        });
        mcp.call(delete, json!({"vendor_data_list": [vendor_data]}), |d| d["deleted"] == 1);
    }

    mcp.call("didit_delete_workflow", json!({"workflow_id": workflow_id}), |_| true);

    for tool in TOOLS {
        if !mcp.called.contains(&tool) {
            mcp.failures.push(format!("{tool} (not called)"));
        }
    }
    eprintln!("mcp: {} calls in {:.1} s", mcp.called.len(), started.elapsed().as_secs_f64());
    Ok(std::mem::take(&mut mcp.failures))
}
