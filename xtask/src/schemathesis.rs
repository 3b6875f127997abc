//! `cargo xtask schemathesis [--seconds N]`: builds handoff, starts it on a fresh SQLite file
//! seeded with two applications, workflows and finished sessions of both kinds, and runs
//! Schemathesis (from PyPI) against its `/openapi.json`: no server error, responses as the
//! document says.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One HTTP/1.1 request over a fresh connection: (status, JSON body or Null).
fn request(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, Value), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let body = body.unwrap_or("");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(key) = key {
        head.push_str(&format!("x-api-key: {key}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let payload = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    Ok((status, serde_json::from_str(payload).unwrap_or(Value::Null)))
}

fn expect(result: Result<(u16, Value), String>, status: u16, what: &str) -> Result<Value, String> {
    match result {
        Ok((got, body)) if got == status => Ok(body),
        Ok((got, body)) => Err(format!("{what}: {got} {body}")),
        Err(error) => Err(format!("{what}: {error}")),
    }
}

fn field(value: &Value, name: &str) -> Result<String, String> {
    value[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {name} in {value}"))
}

pub fn run(args: &[String]) -> ExitCode {
    let seconds = crate::seconds(args, 120);
    match run_for(seconds) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("schemathesis: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_for(seconds: u64) -> Result<ExitCode, String> {
    let built = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "handoff"])
        .status();
    if !built.is_ok_and(|s| s.success()) {
        return Err("cargo build -p handoff failed".into());
    }
    let binary = root().join("target/debug/handoff");
    let dir = std::env::temp_dir().join(format!("handoff_schemathesis_{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let database = format!("sqlite:{}?mode=rwc", dir.join("handoff.db").display());
    let create = |name: &str| -> Result<Value, String> {
        let output = Command::new(&binary)
            .args(["applications", "create", "--name", name])
            .env("DATABASE_URL", &database)
            .env("HANDOFF_LOG", "error")
            .output()
            .map_err(|e| e.to_string())?;
        serde_json::from_slice(&output.stdout).map_err(|e| format!("applications create: {e}"))
    };
    let caller = create("Schemathesis")?;
    let target = create("Receiver")?;
    let key = field(&caller, "api_key")?;

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let _server = Server(
        Command::new(&binary)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", &database)
            .env("HANDOFF_RATE_LIMIT", "off")
            .env("HANDOFF_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?,
    );
    let started = Instant::now();
    while !matches!(request(port, "GET", "/health/", None, None), Ok((200, _))) {
        if started.elapsed() > Duration::from_secs(30) {
            return Err("the server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // Seed: a finished session of each kind, and a share to the other application.
    let k = Some(key.as_str());
    let workflow = |features: Value| {
        expect(
            request(
                port,
                "POST",
                "/v3/workflows/",
                k,
                Some(&json!({"features": features}).to_string()),
            ),
            201,
            "workflow",
        )
    };
    let user_workflow = field(
        // The features whose blocks the example results hold.
        &workflow(json!([
            {"feature": "OCR"}, {"feature": "LIVENESS"}, {"feature": "FACE_MATCH"},
            {"feature": "PROOF_OF_ADDRESS"}, {"feature": "PHONE_VERIFICATION"},
            {"feature": "EMAIL_VERIFICATION"}, {"feature": "AML"}, {"feature": "DATABASE_VALIDATION"}
        ]))?,
        "workflow_id",
    )?;
    let business_workflow = field(
        &workflow(json!([
            {"feature": "KYB_REGISTRY"}, {"feature": "KYB_KEY_PEOPLE"},
            {"feature": "KYB_DOCUMENTS"}, {"feature": "AML"}
        ]))?,
        "workflow_id",
    )?;
    let mut sessions = Vec::new();
    for (workflow_id, vendor_data, results) in [
        (&user_workflow, "seed-user", "record-results-user.json"),
        (
            &business_workflow,
            "seed-business",
            "record-results-business.json",
        ),
    ] {
        let body = json!({"workflow_id": workflow_id, "vendor_data": vendor_data}).to_string();
        let session = field(
            &expect(
                request(port, "POST", "/v3/session/", k, Some(&body)),
                201,
                "session",
            )?,
            "session_id",
        )?;
        let results = std::fs::read_to_string(root().join("fixtures").join(results))
            .map_err(|e| e.to_string())?;
        expect(
            request(
                port,
                "PUT",
                &format!("/v3/session/{session}/decision/"),
                k,
                Some(&results),
            ),
            200,
            "results",
        )?;
        sessions.push(session);
    }
    let share = json!({"for_application_id": field(&target, "application_id")?}).to_string();
    expect(
        request(
            port,
            "POST",
            &format!("/v3/session/{}/share/", sessions[0]),
            k,
            Some(&share),
        ),
        200,
        "share",
    )?;

    let config = dir.join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "headers = {{ \"x-api-key\" = \"{key}\" }}\n\n[parameters]\n\"path.session_id\" = \"{}\"\n\"path.workflow_id\" = \"{user_workflow}\"\n\"path.vendor_data\" = \"seed-user\"\n",
            sessions[0]
        ),
    )
    .map_err(|e| e.to_string())?;
    eprintln!("schemathesis against 127.0.0.1:{port} for {seconds} s");
    let status = Command::new("schemathesis")
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("http://127.0.0.1:{port}/openapi.json")])
        .args(["--checks", "not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance"])
        // The coverage phase of Schemathesis 4.32 crashes inside Hypothesis on this document (a
        // KeyError in its own code). Its stateful phase infers links to operations that lack
        // the parameter it passes (from the reviews feed to the webhook destinations) and
        // stops on them; the API sends no Location headers to infer better ones from.
        .args(["--phases", "examples,fuzzing"])
        .args(["--max-time", &seconds.to_string(), "--workers", "2"])
        .status()
        .map_err(|e| format!("cannot run schemathesis (pip install schemathesis): {e}"))?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
