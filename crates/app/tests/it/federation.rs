//! Sharing across deployments: two (or three) `handoff serve` processes, each on its own
//! database, port and public URL, made partners by their operators' command line. The callers'
//! requests are those of one deployment; the session moves between the servers.

use std::process::Command;

use handoff_testdb::{Backend, TestDatabase};
use serde_json::{Value, json};

use crate::processes::Server;
use crate::support::{Tenant, TestApp, assert_error, count, per_backend};

/// A deployment of its own: a server process on its own database, its public URL its own
/// address, signing share tokens with EdDSA.
struct Deployment {
    server: Server,
    app: TestApp,
}

impl Deployment {
    async fn start(backend: Backend) -> Deployment {
        let db = TestDatabase::create(backend).await;
        let mut server = Server::start_with(
            db.url(),
            &[
                ("HANDOFF_PUBLIC_URL", "{base}"),
                ("HANDOFF_TOKEN_ALG", "EdDSA"),
                ("HANDOFF_FEDERATION_ALLOW_PRIVATE", "true"),
            ],
        );
        server.wait_until_healthy().await;
        let app = TestApp::attach(&server.base, db).await;
        Deployment { server, app }
    }

    fn url(&self) -> &str {
        &self.server.base
    }

    /// `handoff partners <args>` on this deployment's database: success, the JSON lines,
    /// stderr.
    fn partners(&self, args: &[&str]) -> (bool, Vec<Value>, String) {
        let args: Vec<&str> = std::iter::once("partners").chain(args.iter().copied()).collect();
        let private = [("HANDOFF_FEDERATION_ALLOW_PRIVATE", "true")];
        crate::support::handoff_command(self.app.db.url(), &args, &private)
    }

    /// Trusts `other` as the partner `name`, sharing with `applications` of its.
    fn trust(&self, name: &str, other: &Deployment, applications: &[&Tenant]) {
        let mut args = vec!["add", "--name", name, "--url", other.url()];
        for tenant in applications {
            args.extend(["--application", tenant.id.as_str()]);
        }
        let (ok, lines, stderr) = self.partners(&args);
        assert!(ok, "{stderr}");
        assert_eq!(lines[0]["name"], name);
        assert_eq!(lines[0]["url"], other.url());
    }
}

/// A bank's deployment and a fintech's, partners both ways: the bank may share with the
/// fintech's application, the fintech imports the bank's tokens.
struct Partners {
    bank: Deployment,
    fintech: Deployment,
    source: Tenant,
    receiver: Tenant,
}

async fn partners(bank: Backend, fintech: Backend) -> Partners {
    let (bank, fintech) = (Deployment::start(bank).await, Deployment::start(fintech).await);
    let source = bank.app.tenant("Bank").await;
    let receiver = fintech.app.tenant("Fintech").await;
    bank.trust("fintech", &fintech, &[&receiver]);
    fintech.trust("bank", &bank, &[]);
    Partners { bank, fintech, source, receiver }
}

/// The blocks of a decision payload, by key.
fn blocks(decision: &Value, kind: &str) -> Vec<(String, Value)> {
    let keys = crate::support::block_keys(kind);
    keys.iter().map(|key| (key.to_string(), decision[*key].clone())).collect()
}

impl Partners {
    /// A finished session of `kind` at the bank, shared with the fintech's application; the
    /// session, the token and the fintech's workflow of that kind.
    async fn shared(&self, kind: &str, vendor_data: &str) -> (String, String, String) {
        let session = self.bank.app.finished_session(&self.source, kind, vendor_data).await;
        let token = self.bank.app.share(&self.source, &session, &self.receiver).await;
        let workflow = self.fintech.app.workflow(&self.receiver, kind).await;
        (session, token, workflow)
    }

    async fn import(&self, token: &str, workflow: &str) -> crate::support::Answer {
        self.fintech
            .app
            .import(&self.receiver, token, workflow, json!({"trust_review": true}))
            .await
    }

    async fn clones(&self) -> i64 {
        count(&self.fintech.app.store, "SELECT count(*) AS n FROM sessions").await
    }
}

/// KYC and KYB move between the deployments with every block equal to the source's; the
/// clone's `imported` event names the partner, the source logs `imported_by` with the
/// remote application; a second import is 403 with the clone's id.
async fn imports_between(bank: Backend, fintech: Backend) {
    let p = partners(bank, fintech).await;
    // Both sides subscribe to their events (never delivered: the address is not served).
    for (app, tenant, events) in [
        (&p.bank.app, &p.source, json!(["share.redeemed"])),
        (&p.fintech.app, &p.receiver, json!(["session.imported"])),
    ] {
        let body =
            json!({"url": "https://hooks.example.test/handoff", "subscribed_events": events});
        let made = app.post("/v3/webhook/destinations/", tenant, body).await;
        assert_eq!(made.status.as_u16(), 201, "{}", made.text);
    }
    for (kind, vendor_data) in [("user", "user-ana-001"), ("business", "acme-gmbh")] {
        let (session, token, workflow) = p.shared(kind, vendor_data).await;
        let imported = p.import(&token, &workflow).await;
        assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
        let clone = imported.body["session_id"].as_str().unwrap().to_owned();
        assert_eq!(imported.body["shared_from_session"], session.as_str());
        assert_eq!(imported.body["vendor_data"], vendor_data);

        let source = p.bank.app.decision(&p.source, &session).await.body;
        let cloned = p.fintech.app.decision(&p.receiver, &clone).await.body;
        assert_eq!(cloned["status"], source["status"], "trust_review keeps the status");
        assert_eq!(cloned["session_kind"], kind);
        assert_eq!(blocks(&cloned, kind), blocks(&source, kind));
        assert!(blocks(&cloned, kind).iter().any(|(_, items)| items.is_array()));

        let events = |decision: &Value, action: &str| -> Vec<Value> {
            let events = decision["events"].as_array().unwrap().iter();
            events.filter(|event| event["action"] == action).cloned().collect()
        };
        let path = |id: &str| format!("/v3/session/{id}/decision/?include=events");
        let cloned = p.fintech.app.get(&path(&clone), &p.receiver).await.body;
        let imported = events(&cloned, "imported");
        assert_eq!(imported.len(), 1, "{cloned}");
        assert_eq!(imported[0]["details"]["partner"], "bank");
        assert_eq!(imported[0]["details"]["partner_url"], p.bank.url());

        let redeemed = p.bank.app.get(&format!("/v3/session/{session}/shares/"), &p.source).await;
        assert_eq!(redeemed.body[0]["state"], "redeemed", "{}", redeemed.text);
        let source = p.bank.app.get(&path(&session), &p.source).await.body;
        let imported_by = events(&source, "imported_by");
        assert_eq!(imported_by.len(), 1, "{source}");
        assert_eq!(imported_by[0]["actor"], "partner:fintech");
        assert_eq!(imported_by[0]["details"]["application_id"], p.receiver.id.as_str());
        assert!(!source.to_string().contains(&clone), "the clone's id stays the fintech's");

        let again = p.import(&token, &workflow).await;
        assert_error(&again, 403, "already_imported");
        assert_eq!(again.body["session_id"], clone.as_str());
    }
    assert_eq!(p.clones().await, 2);
    let events = |app: &TestApp, kind: &str| {
        let sql = format!("SELECT count(*) AS n FROM webhook_events WHERE webhook_type = '{kind}'");
        let store = app.store.clone();
        async move { count(&store, &sql).await }
    };
    assert_eq!(events(&p.bank.app, "share.redeemed").await, 2, "the issuer's share.redeemed");
    assert_eq!(events(&p.fintech.app, "session.imported").await, 2, "the receiver's event");
}

async fn imports_between_deployments(backend: Backend) {
    imports_between(backend, backend).await;
}

per_backend!(imports_between_deployments);

/// A SQLite deployment and a PostgreSQL one share both ways.
#[tokio::test]
async fn sqlite_and_postgres_deployments_share() {
    if handoff_testdb::skip(Backend::Postgres) {
        return;
    }
    imports_between(Backend::Sqlite, Backend::Postgres).await;
    imports_between(Backend::Postgres, Backend::Sqlite).await;
}

/// Every refusal keeps the contract's status and code, and writes nothing: revoked at the
/// issuer, the source deleted there, a token from a deployment that is not a partner, and an
/// issuer that cannot be reached.
async fn refusals_keep_the_contracts_codes(backend: Backend) {
    let mut p = partners(backend, backend).await;
    let (session, token, workflow) = p.shared("user", "user-ana-001").await;
    let jti =
        p.bank.app.get(&format!("/v3/session/{session}/shares/"), &p.source).await.body[0]["jti"]
            .as_str()
            .unwrap()
            .to_owned();
    let revoked = p
        .bank
        .app
        .post(&format!("/v3/session/{session}/shares/{jti}/revoke/"), &p.source, json!({}))
        .await;
    assert_eq!(revoked.status.as_u16(), 200, "{}", revoked.text);
    assert_error(&p.import(&token, &workflow).await, 401, "share_token_revoked");

    let (session, token, workflow) = p.shared("user", "user-ben-002").await;
    let deleted = p.bank.app.delete(&format!("/v3/session/{session}/delete/"), &p.source).await;
    assert_eq!(deleted.status.as_u16(), 204);
    assert_error(&p.import(&token, &workflow).await, 404, "source_session_not_found");

    // A deployment the fintech does not trust issues a token for the fintech's application.
    let stranger = Deployment::start(backend).await;
    let stranger_source = stranger.app.tenant("Stranger").await;
    stranger.trust("fintech", &p.fintech, &[&p.receiver]);
    let session = stranger.app.finished_session(&stranger_source, "user", "user-cy-003").await;
    let token = stranger.app.share(&stranger_source, &session, &p.receiver).await;
    assert_error(&p.import(&token, &workflow).await, 401, "share_token_invalid");

    // The issuer stops: 503, nothing written; back up, the same token imports.
    let (_, token, workflow) = p.shared("user", "user-dee-004").await;
    let bank_url = p.bank.url().to_owned();
    p.bank.server.kill();
    let before = p.clones().await;
    assert_error(&p.import(&token, &workflow).await, 503, "partner_unavailable");
    assert_eq!(p.clones().await, before, "nothing written");
    assert_eq!(
        count(&p.fintech.app.store, "SELECT count(*) AS n FROM partner_redemptions").await,
        0
    );
    assert!(bank_url.starts_with("http://127.0.0.1:"));
}

per_backend!(refusals_keep_the_contracts_codes);

/// The exchange answers only partners: without a proof, with a proof signed by a deployment
/// the issuer does not trust (a third one holding a stolen token), the answer is 401 and says
/// nothing of the token or the session; the third deployment's own import is refused.
async fn a_stolen_token_obtains_nothing(backend: Backend) {
    let p = partners(backend, backend).await;
    let (session, token, workflow) = p.shared("user", "user-ana-001").await;

    let client = reqwest::Client::new();
    let bare = client
        .post(format!("{}/federation/v1/redemptions/", p.bank.url()))
        .json(&json!({"share_token": token, "application_id": p.receiver.id, "redeem": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status().as_u16(), 401);
    let body: Value = bare.json().await.unwrap();
    assert_eq!(body["code"], "partner_unauthenticated");
    assert!(!body.to_string().contains(&session));
    let oversized = client
        .post(format!("{}/federation/v1/redemptions/", p.bank.url()))
        .body(vec![b'a'; 20 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status().as_u16(), 413);
    let body: Value = oversized.json().await.unwrap();
    assert_eq!(body["code"], "payload_too_large", "JSON, not plain text");

    // A thief's deployment trusts the bank (so it verifies the token), but the bank does not
    // trust it: its exchange is refused, and its caller gets nothing.
    let thief = Deployment::start(backend).await;
    let thief_tenant = thief.app.tenant("Thief").await;
    thief.trust("bank", &p.bank, &[]);
    let thief_workflow = thief.app.workflow(&thief_tenant, "user").await;
    let stolen = thief.app.import(&thief_tenant, &token, &thief_workflow, json!({})).await;
    assert!(stolen.status.as_u16() >= 400, "{}", stolen.text);
    assert!(!stolen.text.contains("id_verifications"), "{}", stolen.text);
    assert_eq!(count(&thief.app.store, "SELECT count(*) AS n FROM sessions").await, 0);

    // The token still works for its addressee.
    assert_eq!(p.import(&token, &workflow).await.status.as_u16(), 201);
}

per_backend!(a_stolen_token_obtains_nothing);

/// A receiver that died after the issuer recorded the redemption and before its own commit
/// imports on retry — the issuer hands the session over again to the same partner — and 16
/// concurrent imports of another token make one clone.
async fn exactly_one_clone_whatever_fails(backend: Backend) {
    let p = partners(backend, backend).await;
    let (session, token, workflow) = p.shared("user", "user-ana-001").await;

    // The exchange as the fintech's server makes it, signed with its key: the bank records
    // the redemption; the fintech writes nothing (it "died").
    let (handed, _) = exchange(&p, &token).await;
    assert_eq!(handed["session"]["session_id"], session.as_str());
    assert_eq!(
        p.bank.app.get(&format!("/v3/session/{session}/shares/"), &p.source).await.body[0]["state"],
        "redeemed"
    );
    assert_eq!(p.clones().await, 0);
    let retried = p.import(&token, &workflow).await;
    assert_eq!(retried.status.as_u16(), 201, "{}", retried.text);
    assert_eq!(p.clones().await, 1);

    let (_, token, workflow) = p.shared("business", "acme-gmbh").await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (base, key, body) = (
            p.fintech.url().to_owned(),
            p.receiver.key.clone(),
            json!({"share_token": token, "workflow_id": workflow}),
        );
        tasks.spawn(async move {
            crate::support::post_to(&base, "/v3/session/import-shared/", &key, &body).await
        });
    }
    let answers = tasks.join_all().await;
    let created: Vec<_> = answers.iter().filter(|(status, _)| *status == 201).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 201) {
        assert_eq!((*status, body["code"].as_str()), (403, Some("already_imported")), "{body}");
    }
    assert_eq!(p.clones().await, 2);
}

per_backend!(exactly_one_clone_whatever_fails);

/// The exchange for `token`, made as the fintech's server makes it: the answer, and its size
/// as sent (compressed) and as JSON.
async fn exchange(p: &Partners, token: &str) -> (Value, (usize, usize)) {
    use sha2::Digest;
    let kek =
        handoff_token::KeyEncryptionKey::from_secret(crate::support::TEST_KEK.as_bytes()).unwrap();
    let key = p.fintech.app.store.signing_keys(false).await.unwrap().remove(0);
    let seed = kek.open(&key.kid, handoff_token::TokenAlgorithm::EdDsa, &key.secret).unwrap();
    let signer = handoff_token::SigningKey::ed25519(key.kid.clone(), &seed, None).unwrap();
    let tokens = handoff_token::JwtShareTokens::new(
        handoff_token::Keyring::new(vec![signer])
            .signing_with(handoff_token::TokenAlgorithm::EdDsa),
    );
    let body = serde_json::to_vec(
        &json!({"share_token": token, "application_id": p.receiver.id, "redeem": true}),
    )
    .unwrap();
    let hash: String = sha2::Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
    let now = chrono::Utc::now().timestamp();
    let proof = tokens
        .sign_proof(&json!({
            "iss": p.fintech.url(), "aud": p.bank.url(), "iat": now, "exp": now + 60,
            "body_sha256": hash,
        }))
        .unwrap();
    let answer = reqwest::Client::new()
        .post(format!("{}/federation/v1/redemptions/", p.bank.url()))
        .bearer_auth(proof)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(answer.headers()["content-encoding"], "gzip");
    let bytes = answer.bytes().await.unwrap();
    let json = handoff_http::federation::gunzip(&bytes).unwrap();
    (serde_json::from_slice(&json).unwrap(), (bytes.len(), json.len()))
}

/// A session of 1,000 related rows moves in one exchange, compressed, and its clone holds
/// them all.
async fn a_thousand_rows_move_in_one_compressed_exchange(backend: Backend) {
    let p = partners(backend, backend).await;
    let workflow = p.bank.app.workflow(&p.source, "user").await;
    let session = p.bank.app.session(&p.source, &workflow, Some("user-many-001")).await;
    let item = json!({"node_id": "feature_aml", "status": "Approved", "entity_type": "person",
        "total_hits": 1, "hits": [{"name": "Example Hit", "score": 0.1}]});
    let results = json!({"status": "Approved", "aml_screenings": vec![item; 1_000]});
    let recorded =
        p.bank.app.put(&format!("/v3/session/{session}/decision/"), &p.source, results).await;
    assert_eq!(recorded.status.as_u16(), 200, "{}", recorded.text);
    let token = p.bank.app.share(&p.source, &session, &p.receiver).await;

    let (handed, (sent, json)) = exchange(&p, &token).await;
    assert_eq!(handed["session"]["blocks"]["aml_screenings"].as_array().unwrap().len(), 1_000);
    assert!(sent * 10 < json, "compressed: {sent} of {json} bytes");

    let fintech_workflow = p.fintech.app.workflow(&p.receiver, "user").await;
    let imported = p.import(&token, &fintech_workflow).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    let clone = imported.body["session_id"].as_str().unwrap();
    let decision = p.fintech.app.decision(&p.receiver, clone).await;
    assert_eq!(decision.body["aml_screenings"].as_array().unwrap().len(), 1_000);
}

per_backend!(a_thousand_rows_move_in_one_compressed_exchange);

/// The operator's `partners` commands: add refuses plain http without
/// HANDOFF_FEDERATION_ALLOW_PRIVATE's blessing, list prints each partner, remove forgets one.
async fn operators_manage_partners(backend: Backend) {
    let bank = Deployment::start(backend).await;
    let fintech = Deployment::start(backend).await;
    let app = fintech.app.tenant("Fintech").await;
    bank.trust("fintech", &fintech, &[&app]);
    let (ok, lines, _) = bank.partners(&["list"]);
    assert!(ok);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["applications"], json!([app.id]));
    assert_eq!(
        lines[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["name", "url", "applications", "added_at"]
    );
    let (ok, _, stderr) = bank.partners(&["add", "--name", "fintech", "--url", fintech.url()]);
    assert!(!ok && stderr.contains("exists"), "{stderr}");
    let (ok, _, stderr) = bank.partners(&["add", "--name", "Bad Name", "--url", fintech.url()]);
    assert!(!ok && stderr.contains("partner name"), "{stderr}");
    let (ok, _, stderr) = bank.partners(&["add", "--name", "gone", "--url", "http://127.0.0.1:9"]);
    assert!(!ok && stderr.contains("cannot be reached"), "{stderr}");
    let (ok, lines, _) = bank.partners(&["remove", "fintech"]);
    assert!(ok && lines[0]["removed"] == true);
    assert!(bank.partners(&["list"]).1.is_empty());
    let (ok, _, stderr) = bank.partners(&["remove", "fintech"]);
    assert!(!ok && stderr.contains("no partner"), "{stderr}");
}

per_backend!(operators_manage_partners);

/// The README's two deployments, `scripts/federation.sh`, run as printed against two servers.
async fn the_readme_federation_runs_as_printed(backend: Backend) {
    let (bank, fintech) = (Deployment::start(backend).await, Deployment::start(backend).await);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let env = [
        ("BANK", bank.url().to_owned()),
        ("FINTECH", fintech.url().to_owned()),
        ("BANK_DATABASE_URL", bank.app.db.url().to_owned()),
        ("FINTECH_DATABASE_URL", fintech.app.db.url().to_owned()),
        ("HANDOFF", env!("CARGO_BIN_EXE_handoff").to_owned()),
        ("HANDOFF_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK.to_owned()),
        ("HANDOFF_FEDERATION_ALLOW_PRIVATE", "true".to_owned()),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new("sh").arg(root.join("scripts/federation.sh")).envs(env).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for step in 1..=6 {
        let ran = stdout.lines().any(|line| line.starts_with(&format!("{step}. ")));
        assert!(ran, "step {step} did not run:\n{stdout}");
    }
    assert!(stdout.contains("6. the bank's ledger: the token is redeemed\n"), "{stdout}");
    assert!(stdout.ends_with("federation done\n"), "{stdout}");
}

per_backend!(the_readme_federation_runs_as_printed);

/// A partner is handed only the blocks the share names, and its clone holds only those; the
/// person's consent reaches the clone's provenance.
async fn a_partner_gets_only_the_named_blocks(backend: Backend) {
    let p = partners(backend, backend).await;
    let session = p.bank.app.finished_session(&p.source, "user", "user-ana-001").await;
    let shared = p
        .bank
        .app
        .post(
            &format!("/v3/session/{session}/share/"),
            &p.source,
            json!({"for_application_id": p.receiver.id, "blocks": ["aml_screenings"],
                "consent": {"reference": "c-1", "given_at": "2026-12-01T09:30:00Z",
                    "text_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}),
        )
        .await;
    assert_eq!(shared.status.as_u16(), 200, "{}", shared.text);
    let token = shared.body["share_token"].as_str().unwrap();
    let (handed, _) = exchange(&p, token).await;
    let handed_blocks: Vec<&String> =
        handed["session"]["blocks"].as_object().unwrap().keys().collect();
    assert_eq!(handed_blocks, ["aml_screenings"]);

    let workflow = p.fintech.app.workflow(&p.receiver, "user").await;
    let imported = p.import(token, &workflow).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    let clone = imported.body["session_id"].as_str().unwrap();
    let path = format!("/v3/session/{clone}/decision/?include=events");
    let cloned = p.fintech.app.get(&path, &p.receiver).await.body;
    let imported_event =
        cloned["events"].as_array().unwrap().iter().find(|e| e["action"] == "imported").unwrap();
    assert_eq!(imported_event["details"]["consent"]["reference"], "c-1");
    assert_eq!(imported_event["details"]["withheld_blocks"].as_array().unwrap().len(), 10);
    let source = p.bank.app.decision(&p.source, &session).await.body;
    for (block, items) in blocks(&cloned, "user") {
        if block == "aml_screenings" {
            assert_eq!(items, source[&block]);
        } else {
            assert!(items.is_null(), "{block}: {items}");
        }
    }
}

per_backend!(a_partner_gets_only_the_named_blocks);
