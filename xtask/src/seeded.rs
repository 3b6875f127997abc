//! A handoff server for the tools that drive it from outside (Schemathesis, Didit's MCP
//! server): built, started on a fresh SQLite file, and seeded with two applications, a workflow
//! of each kind, a finished session of each kind and a share to the second application.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The running server and what was seeded into it; dropping it stops the server and removes
/// its files.
pub struct Seeded {
    server: Child,
    pub dir: PathBuf,
    pub port: u16,
    /// The calling application's API key.
    pub key: String,
    /// The API key of the application the seeded session is shared with, which holds nothing.
    pub receiver_key: String,
    /// That application's id.
    pub receiver_id: String,
    pub user_workflow: String,
    pub business_workflow: String,
    /// The finished KYC session, then the finished KYB session.
    pub sessions: Vec<String>,
    /// A custom list of `key` entries of the calling application.
    pub list: String,
}

impl Drop for Seeded {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

impl Seeded {
    /// One request to the server with the calling application's key.
    pub fn call(
        &self, method: &str, path: &str, body: Option<&str>,
    ) -> Result<(u16, Value), String> {
        request(self.port, method, path, Some(&self.key), body)
    }

    pub fn start(name: &str) -> Result<Self, String> {
        let built = Command::new(env!("CARGO")).args(["build", "-q", "-p", "handoff"]).status();
        if !built.is_ok_and(|s| s.success()) {
            return Err("cargo build -p handoff failed".into());
        }
        let binary = root().join("target/debug/handoff");
        let dir = std::env::temp_dir().join(format!("handoff_{name}_{}", std::process::id()));
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
        let caller = create("Caller")?;
        let target = create("Receiver")?;
        let key = field(&caller, "api_key")?;

        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let server = Command::new(&binary)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", &database)
            .env("HANDOFF_RATE_LIMIT", "off")
            .env("HANDOFF_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut seeded = Seeded {
            server,
            dir,
            port,
            key,
            receiver_key: field(&target, "api_key")?,
            receiver_id: field(&target, "application_id")?,
            user_workflow: String::new(),
            business_workflow: String::new(),
            list: String::new(),
            sessions: Vec::new(),
        };
        let started = Instant::now();
        while !matches!(request(port, "GET", "/health/", None, None), Ok((200, _))) {
            if started.elapsed() > Duration::from_secs(30) {
                return Err("the server did not start".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }

        let workflow = |seeded: &Seeded, features: Value| {
            let body = json!({"features": features}).to_string();
            let created =
                expect(seeded.call("POST", "/v3/workflows/", Some(&body)), 201, "workflow")?;
            field(&created, "workflow_id")
        };
        // The features whose blocks the example results hold.
        seeded.user_workflow = workflow(
            &seeded,
            json!([
                {"feature": "OCR"}, {"feature": "LIVENESS"}, {"feature": "FACE_MATCH"},
                {"feature": "PROOF_OF_ADDRESS"}, {"feature": "PHONE_VERIFICATION"},
                {"feature": "EMAIL_VERIFICATION"}, {"feature": "AML"}, {"feature": "DATABASE_VALIDATION"}
            ]),
        )?;
        seeded.business_workflow = workflow(
            &seeded,
            json!([
                {"feature": "KYB_REGISTRY"}, {"feature": "KYB_KEY_PEOPLE"},
                {"feature": "KYB_DOCUMENTS"}, {"feature": "AML"}
            ]),
        )?;
        for (workflow_id, vendor_data, results) in [
            (seeded.user_workflow.clone(), "seed-user", "record-results-user.json"),
            (seeded.business_workflow.clone(), "seed-business", "record-results-business.json"),
        ] {
            let session = seeded.finished_session(&workflow_id, vendor_data, results)?;
            seeded.sessions.push(session);
        }
        let list = json!({"name": "Seeded keys", "list_type": "custom", "entry_type": "key"});
        let list = expect(seeded.call("POST", "/v3/lists/", Some(&list.to_string())), 201, "list")?;
        seeded.list = field(&list, "uuid")?;
        let share = json!({"for_application_id": field(&target, "application_id")?}).to_string();
        let path = format!("/v3/session/{}/share/", seeded.sessions[0]);
        expect(seeded.call("POST", &path, Some(&share)), 200, "share")?;
        Ok(seeded)
    }

    /// A new session of `workflow_id` finished with the fixture `results`.
    pub fn finished_session(
        &self, workflow_id: &str, vendor_data: &str, results: &str,
    ) -> Result<String, String> {
        let body = json!({"workflow_id": workflow_id, "vendor_data": vendor_data}).to_string();
        let created = expect(self.call("POST", "/v3/session/", Some(&body)), 201, "session")?;
        let session = field(&created, "session_id")?;
        let results = std::fs::read_to_string(root().join("fixtures").join(results))
            .map_err(|e| e.to_string())?;
        let path = format!("/v3/session/{session}/decision/");
        expect(self.call("PUT", &path, Some(&results)), 200, "results")?;
        Ok(session)
    }
}

/// One HTTP/1.1 request over a fresh connection: (status, JSON body or Null).
pub fn request(
    port: u16, method: &str, path: &str, key: Option<&str>, body: Option<&str>,
) -> Result<(u16, Value), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
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
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response);
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("no status line")?;
    let payload = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, serde_json::from_str(payload).unwrap_or(Value::Null)))
}

pub fn expect(
    result: Result<(u16, Value), String>, status: u16, what: &str,
) -> Result<Value, String> {
    match result {
        Ok((got, body)) if got == status => Ok(body),
        Ok((got, body)) => Err(format!("{what}: {got} {body}")),
        Err(error) => Err(format!("{what}: {error}")),
    }
}

pub fn field(value: &Value, name: &str) -> Result<String, String> {
    value[name].as_str().map(str::to_owned).ok_or_else(|| format!("no {name} in {value}"))
}
