//! Spawning the app on a fresh database, tenants, and request helpers.

use handoff::{Application, Config, services};
use handoff_store::Store;
use handoff_testdb::{Backend, TestDatabase};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Runs each named test body — a plain `async fn name(app: TestApp)` beside the call — once per
/// backend, on a fresh server (`handoff_testdb::on_each_backend`).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        handoff_testdb::on_each_backend!($crate::support::TestApp::spawn; $($name),*);
    };
}
pub(crate) use on_both_backends;

/// Runs each named test body — a plain `async fn name(backend: Backend)` that makes its own
/// servers — once per backend.
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        handoff_testdb::on_each_backend!($crate::support::backend; $($name),*);
    };
}
pub(crate) use per_backend;

/// The backend itself, for [`per_backend`].
pub async fn backend(backend: Backend) -> Backend {
    backend
}

pub const PUBLIC_URL: &str = "https://verify.example.test";

/// The key-encryption key of every test server and command, in-process or not, so that all of
/// them open the signing keys of a shared test database.
pub const TEST_KEK: &str = "the tests' key-encryption key, at least 32 bytes";

/// The secret of the server's first signing key (`k1`), opened with [`TEST_KEK`], to sign
/// tokens as the server would.
pub async fn first_key_secret(app: &TestApp) -> Vec<u8> {
    let kek = handoff_token::KeyEncryptionKey::from_secret(TEST_KEK.as_bytes()).unwrap();
    let key = app.store.signing_keys(false).await.unwrap().remove(0);
    assert_eq!(key.kid, "k1");
    kek.open(&key.kid, handoff_token::TokenAlgorithm::Hs256, &key.secret).unwrap()
}

/// The configuration of a test server on `url`, as `TestApp::spawn` builds it.
pub fn test_config(url: &str) -> Config {
    Config {
        bind: "127.0.0.1:0".into(),
        public_url: Some(PUBLIC_URL.into()),
        workers: Some(2),
        key_encryption_key: Some(handoff::config::Secret(TEST_KEK.to_owned())),
        // Retries a second apart, looked for every 50 ms.
        webhooks: handoff_webhooks::Settings {
            poll: std::time::Duration::from_millis(50),
            schedule: vec![std::time::Duration::from_secs(1); 3],
            ..handoff_webhooks::Settings::default()
        },
        ..Config::new(url)
    }
}

/// A running server on a throwaway database.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub db: TestDatabase,
}

/// A finished session shared by a source application with a receiver that has a workflow of
/// the session's kind.
pub struct Shared {
    pub source: Tenant,
    pub receiver: Tenant,
    pub session: String,
    pub workflow: String,
    pub token: String,
}

/// An application and one of its API keys.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: String,
    pub key: String,
}

/// A response: status, parsed JSON body (Null when empty) and the raw text.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
}

impl TestApp {
    /// A handle on a server started elsewhere (another process) on `db`.
    pub async fn attach(base: &str, db: TestDatabase) -> TestApp {
        // Sealing under the servers' key-encryption key, as theirs.
        let kek = handoff_token::KeyEncryptionKey::from_secret(TEST_KEK.as_bytes()).unwrap();
        let store = Store::connect(db.url(), &handoff_store::StoreOptions::default())
            .await
            .unwrap()
            .sealing_with(kek);
        TestApp { base: base.to_owned(), client: reqwest::Client::new(), store, db }
    }

    /// Shares `owner`'s session with `receiver`; the token.
    pub async fn share(&self, owner: &Tenant, session: &str, receiver: &Tenant) -> String {
        let answer =
            self.share_answer(owner, session, json!({"for_application_id": receiver.id})).await;
        assert_eq!(answer.status.as_u16(), 200, "{}", answer.text);
        answer.body["share_token"].as_str().unwrap().to_owned()
    }

    /// `owner`'s Share Session of `session` with the request `body`: the answer, whatever it is.
    pub async fn share_answer(&self, owner: &Tenant, session: &str, body: Value) -> Answer {
        self.post(&format!("/v3/session/{session}/share/"), owner, body).await
    }

    /// Two new applications, "Source" and "Receiver", and a finished session of `kind` for
    /// `vendor_data` that the first shared with the second.
    pub async fn shared(&self, kind: &str, vendor_data: &str) -> Shared {
        let source = self.tenant("Source").await;
        let receiver = self.tenant("Receiver").await;
        let session = self.finished_session(&source, kind, vendor_data).await;
        let workflow = self.workflow(&receiver, kind).await;
        let token = self.share(&source, &session, &receiver).await;
        Shared { source, receiver, session, workflow, token }
    }

    /// [`TestApp::shared`], imported by the receiver into review (`trust_review: false`): the
    /// share and the clone's id.
    pub async fn in_review(&self, kind: &str, vendor_data: &str) -> (Shared, String) {
        let shared = self.shared(kind, vendor_data).await;
        let imported = self.redeem(&shared, json!({"trust_review": false})).await;
        assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
        let clone = imported.body["session_id"].as_str().unwrap().to_owned();
        (shared, clone)
    }

    /// `tenant`'s read of session `id`'s decision (V3).
    pub async fn decision(&self, tenant: &Tenant, id: &str) -> Answer {
        self.get(&format!("/v3/session/{id}/decision/"), tenant).await
    }

    /// The receiver of `shared` imports its token into its workflow, the body's other members
    /// from `extra`.
    pub async fn redeem(&self, shared: &Shared, extra: Value) -> Answer {
        self.import(&shared.receiver, &shared.token, &shared.workflow, extra).await
    }

    /// `receiver` imports `token` into `workflow`, the body's other members from `extra`.
    pub async fn import(
        &self, receiver: &Tenant, token: &str, workflow: &str, extra: Value,
    ) -> Answer {
        let mut body = json!({"share_token": token, "workflow_id": workflow});
        for (k, v) in extra.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        self.post("/v3/session/import-shared/", receiver, body).await
    }

    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns with a configuration adjusted by `adjust`.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let db = TestDatabase::create(backend).await;
        let mut config = test_config(db.url());
        adjust(&mut config);
        let app = Application::build(config).await.expect("the app builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let store = app.store().clone();
        tokio::spawn(app.run_until_stopped());
        TestApp { base, client: reqwest::Client::new(), store, db }
    }

    /// Creates an application with a key, as the operator's CLI does.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let (application, key) = services(&self.store, PUBLIC_URL, no_tokens())
            .applications
            .create_application(name)
            .await
            .unwrap();
        Tenant { id: application.id.to_string(), key: key.reveal().to_owned() }
    }

    pub async fn send(
        &self, method: Method, path: &str, key: Option<&str>, body: Option<&Value>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, tenant: &Tenant) -> Answer {
        self.send(Method::GET, path, Some(&tenant.key), None).await
    }

    pub async fn post(&self, path: &str, tenant: &Tenant, body: Value) -> Answer {
        self.send(Method::POST, path, Some(&tenant.key), Some(&body)).await
    }

    pub async fn put(&self, path: &str, tenant: &Tenant, body: Value) -> Answer {
        self.send(Method::PUT, path, Some(&tenant.key), Some(&body)).await
    }

    pub async fn patch(&self, path: &str, tenant: &Tenant, body: Value) -> Answer {
        self.send(Method::PATCH, path, Some(&tenant.key), Some(&body)).await
    }

    pub async fn delete(&self, path: &str, tenant: &Tenant) -> Answer {
        self.send(Method::DELETE, path, Some(&tenant.key), None).await
    }

    /// A GET as `tenant`, for its headers or bytes: the response as it came.
    pub async fn get_response(&self, path: &str, tenant: &Tenant) -> reqwest::Response {
        let url = format!("{}{path}", self.base);
        self.client.get(url).header("x-api-key", &tenant.key).send().await.unwrap()
    }

    /// Sends a raw body with the given content type.
    pub async fn raw(
        &self, method: Method, path: &str, tenant: &Tenant, content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("x-api-key", &tenant.key)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        answer(request.send().await.unwrap()).await
    }

    /// Creates a workflow of the kind of the example payloads.
    pub async fn workflow(&self, tenant: &Tenant, kind: &str) -> String {
        let features = match kind {
            "user" => json!([
                {"feature": "OCR"}, {"feature": "LIVENESS"}, {"feature": "FACE_MATCH"},
                {"feature": "PROOF_OF_ADDRESS"}, {"feature": "PHONE_VERIFICATION"},
                {"feature": "EMAIL_VERIFICATION"}, {"feature": "AML"}, {"feature": "IP_ANALYSIS"},
                {"feature": "DATABASE_VALIDATION"}
            ]),
            _ => json!([
                {"feature": "KYB_REGISTRY"}, {"feature": "KYB_KEY_PEOPLE"},
                {"feature": "KYB_DOCUMENTS"}, {"feature": "AML"}
            ]),
        };
        let answer = self
            .post(
                "/v3/workflows/",
                tenant,
                json!({"workflow_label": format!("{kind} flow"), "features": features}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer.body["workflow_id"].as_str().unwrap().to_owned()
    }

    /// Creates a session and returns its id.
    pub async fn session(
        &self, tenant: &Tenant, workflow_id: &str, vendor_data: Option<&str>,
    ) -> String {
        let answer = self
            .post(
                "/v3/session/",
                tenant,
                json!({"workflow_id": workflow_id, "vendor_data": vendor_data}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer.body["session_id"].as_str().unwrap().to_owned()
    }

    /// A session with the example results of its kind recorded.
    pub async fn finished_session(&self, tenant: &Tenant, kind: &str, vendor_data: &str) -> String {
        let workflow = self.workflow(tenant, kind).await;
        let id = self.session(tenant, &workflow, Some(vendor_data)).await;
        let answer = self
            .raw(
                Method::PUT,
                &format!("/v3/session/{id}/decision/"),
                tenant,
                Some("application/json"),
                example(&format!("record-results-{kind}.json")).into_bytes(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        id
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    Answer { status, body, text, content_type, headers }
}

/// The block keys of a decision payload of `kind` (`user` or `business`), in the contract's
/// order.
pub fn block_keys(kind: &str) -> Vec<&'static str> {
    let kind = handoff_domain::SessionKind::parse(kind).expect("a session kind");
    handoff_domain::FeatureBlock::for_kind(kind).iter().map(|b| b.v3_key()).collect()
}

/// Runs the operator's command line (the real binary) on the database `database_url`, with
/// `env` added: success, the JSON lines printed, stderr.
pub fn handoff_command(
    database_url: &str, args: &[&str], env: &[(&str, &str)],
) -> (bool, Vec<Value>, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("HANDOFF_KEY_ENCRYPTION_KEY", TEST_KEK)
        .env("HANDOFF_LOG", "error")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (output.status.success(), lines, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A token signer with no key, for services that sign nothing.
pub fn no_tokens() -> std::sync::Arc<handoff_token::JwtShareTokens> {
    std::sync::Arc::new(handoff_token::JwtShareTokens::new(handoff_token::Keyring::default()))
}

/// An example payload from `fixtures/` (the synthetic payloads of the contract).
pub fn example(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Asserts a JSON error answer with this status and code.
#[track_caller]
pub fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.text);
    assert!(answer.content_type.starts_with("application/json"), "not JSON: {answer:?}");
    assert_eq!(answer.body["code"], code, "{}", answer.text);
    assert!(answer.body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{}", answer.text);
}

/// Asserts a 400 `invalid_request` that blames `field`.
#[track_caller]
pub fn assert_invalid(answer: &Answer, field: &str) {
    assert_error(answer, 400, "invalid_request");
    assert!(answer.body["errors"][field].is_array(), "should blame {field}: {}", answer.text);
}

/// Lets the application of `key` sign in to the console with its API keys (new applications
/// do not); a key that names no application changes nothing.
pub async fn allow_console_keys(store: &Store, key: &str) {
    use handoff_domain::ports::ApplicationRepository;
    let Some(presented) = handoff_domain::ApiKey::presented(key) else {
        return;
    };
    let Some(stored) = store.find_api_key(presented.prefix()).await.unwrap() else {
        return;
    };
    let id = stored.application_id;
    let mut settings = store.application_settings(id).await.unwrap().unwrap();
    settings.console_api_keys = true;
    assert!(store.update_application_settings(id, &settings).await.unwrap());
}

/// A reviewer of `tenant` added as the operator adds one: its email, its first password and,
/// with `totp`, its one-time-code secret.
pub fn add_reviewer(
    db_url: &str, tenant: &Tenant, email: &str, role: &str, totp: bool,
) -> (String, String, Option<Vec<u8>>) {
    let mut args = vec!["reviewers", "add", "--application", &tenant.id, "--email", email];
    args.extend(["--role", role]);
    if totp {
        args.push("--totp");
    }
    let (ok, printed, stderr) = handoff_command(db_url, &args, &[]);
    assert!(ok, "{stderr}");
    let added = &printed[0];
    let secret = added["totp_url"]
        .as_str()
        .map(|url| handoff_domain::reviewer::secret_of_url(url).expect("a secret in the address"));
    (
        added["email"].as_str().unwrap().to_owned(),
        added["password"].as_str().unwrap().to_owned(),
        secret,
    )
}

/// The rows `sql` selects, read straight from the store's database.
pub async fn rows(store: &Store, sql: &str) -> Vec<sea_orm::QueryResult> {
    use sea_orm::ConnectionTrait;
    let db = store.connection();
    db.query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql.to_owned()))
        .await
        .unwrap()
}

/// The `n` that `sql` (a `SELECT COUNT(*) AS n …`) counts.
pub async fn count(store: &Store, sql: &str) -> i64 {
    rows(store, sql).await[0].try_get::<i64>("", "n").unwrap()
}

/// POSTs `body` to `path` of the server at `base` (any process of a test) with `key`: the
/// status and the JSON answer.
pub async fn post_to(base: &str, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("x-api-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A results upload of `session` whose body is left half sent: it holds one of the
/// application's heavy slots until [`Upload::finish`].
pub struct Upload(tokio::net::TcpStream);

/// The body an [`Upload`] sends, in two parts.
const UPLOAD_BODY: &[u8] = br#"{"status": "Approved"}"#;

impl Upload {
    /// Sends the head and the start of the body, and waits for the server to take it up.
    pub async fn start(app: &TestApp, tenant: &Tenant, session: &str) -> Upload {
        use tokio::io::AsyncWriteExt;
        let address = app.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "PUT /v3/session/{session}/decision/ HTTP/1.1\r\nhost: {address}\r\n\
             x-api-key: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n",
            tenant.key,
            UPLOAD_BODY.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&UPLOAD_BODY[..5]).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        Upload(stream)
    }

    /// Sends the rest of the body; the answer.
    pub async fn finish(mut self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.0.write_all(&UPLOAD_BODY[5..]).await.unwrap();
        let mut answer = String::new();
        self.0.read_to_string(&mut answer).await.unwrap();
        answer
    }
}
