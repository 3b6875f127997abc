//! The review console over HTTP: sign-in with a key (CSRF-checked) gives a sealed,
//! `HttpOnly`, `SameSite=Strict` cookie; the queue shows the imported session in review; its
//! page shows the blocks and where it came from; approving it with a comment changes its status
//! in the API. A wrong key, a missing or wrong CSRF token and another application's session are
//! refused, and the key never appears in a page.

use handoff_testdb::Backend;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;

use crate::support::{TestApp, per_backend};

/// A browser's worth of state: the cookies it was given.
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookies: Vec<(String, String)>,
}

/// The value of the hidden `csrf` input of a page.
fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
        }
    }

    /// Keeps what the response sets (a removal deletes), and answers status, headers and body.
    async fn keep(&mut self, response: reqwest::Response) -> (u16, Vec<String>, String) {
        let set: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for header in &set {
            let pair = header.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() && !header.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        let status = response.status().as_u16();
        (status, set, response.text().await.unwrap())
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn get(&mut self, path: &str) -> (u16, Vec<String>, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.app.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(response).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, Vec<String>, String) {
        let response = self
            .client
            .post(format!("{}{path}", self.app.base))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(response).await
    }

    /// [`Browser::get`] of a page that takes the application's one heavy slot, right after
    /// another did: the slot of the page before is given back once its answer is sent, which
    /// may be a moment after this client read it, so a 429 is tried again, a few times.
    async fn get_heavy(&mut self, path: &str) -> (u16, Vec<String>, String) {
        for _ in 0..10 {
            let answer = self.get(path).await;
            if answer.0 != 429 {
                return answer;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.get(path).await
    }

    /// Signs in with `key` from the sign-in page, its application letting keys sign in; the
    /// answer to the form.
    async fn sign_in(&mut self, key: &str) -> (u16, Vec<String>, String) {
        crate::support::allow_console_keys(&self.app.store, key).await;
        self.sign_in_with_key(key).await
    }

    /// Signs in as a reviewer with `email`, `password` and `code` from the sign-in page.
    async fn sign_in_as(
        &mut self, email: &str, password: &str, code: &str,
    ) -> (u16, Vec<String>, String) {
        let (status, _, page) = self.get("/console/").await;
        assert_eq!(status, 200);
        let csrf = csrf_of(&page);
        let form =
            [("csrf", csrf.as_str()), ("email", email), ("password", password), ("code", code)];
        self.post("/console/sign-in/reviewer/", &form).await
    }

    /// Whether the browser is signed in: the console's front page is the queue.
    async fn signed_in(&mut self) -> bool {
        let (_, _, page) = self.get("/console/").await;
        page.contains("Sessions in review")
    }

    /// Signs in with `key`, whatever its application allows.
    async fn sign_in_with_key(&mut self, key: &str) -> (u16, Vec<String>, String) {
        let (status, _, page) = self.get("/console/").await;
        assert_eq!(status, 200);
        let csrf = csrf_of(&page);
        self.post("/console/sign-in/", &[("csrf", &csrf), ("api_key", key)]).await
    }
}

/// A browser signed in as a new reviewer of `tenant`, and the reviewer's email.
async fn reviewer_signed_in<'a>(
    app: &'a TestApp, tenant: &crate::support::Tenant,
) -> (Browser<'a>, String) {
    let (email, password, _) =
        crate::support::add_reviewer(app.db.url(), tenant, "ana@beta.example", "reviewer", false);
    let mut browser = Browser::new(app);
    assert_eq!(browser.sign_in_as(&email, &password, "").await.0, 303);
    (browser, email)
}

/// A session of the receiver's own, in review, newer than the shared one's clone.
async fn own_in_review(app: &TestApp, shared: &crate::support::Shared) -> String {
    let own = app.session(&shared.receiver, &shared.workflow, Some("own-person")).await;
    let path = format!("/v3/session/{own}/decision/");
    let put = app.put(&path, &shared.receiver, json!({"status": "In Review"})).await;
    assert_eq!(put.status.as_u16(), 200, "{}", put.text);
    own
}

async fn a_reviewer_clears_an_imported_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (shared, clone) = app.in_review("user", "user-ana-001").await;

    let mut browser = Browser::new(&app);
    let (status, set, _) = browser.sign_in(&shared.receiver.key).await;
    assert_eq!(status, 303);
    let session_cookie =
        set.iter().find(|c| c.starts_with("handoff_console=")).expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console", "Secure"] {
        assert!(session_cookie.contains(attribute), "{attribute}: {session_cookie}");
    }
    assert!(!session_cookie.contains(&shared.receiver.key));

    // The queue: sessions in review, the clone among them, marked imported.
    let (status, _, queue) = browser.get("/console/").await;
    assert_eq!(status, 200);
    assert!(queue.contains("Sessions in review"), "{queue}");
    assert!(queue.contains(&format!("/console/sessions/{clone}/")), "{queue}");
    assert!(queue.contains("imported"));
    assert!(!queue.contains(&shared.receiver.key), "the key is never in a page");

    // The session: its blocks in words, and where it came from.
    let (status, _, view) = browser.get(&format!("/console/sessions/{clone}/")).await;
    assert_eq!(status, 200);
    let source_named = format!("Source ({})", shared.source.id);
    for expected in [
        "In Review",
        "Imported from another application",
        shared.session.as_str(),
        // The source application by name, its decision beside the copy's status, times in
        // words.
        source_named.as_str(),
        "Approved at import; this copy is In Review",
        "sent to review",
        "UTC (just now)",
        "ID verification",
        "Liveness",
        "AML screening",
        "Approve",
    ] {
        assert!(view.contains(expected), "{expected} missing: {view}");
    }
    assert!(!view.contains("{&quot;"), "no raw JSON dump");

    // A decision needs the form's CSRF token.
    let review = format!("/console/sessions/{clone}/review/");
    let (status, _, _) =
        browser.post(&review, &[("new_status", "Approved"), ("comment", "Looks right")]).await;
    assert_eq!(status, 403, "no CSRF token");
    let (status, _, _) =
        browser.post(&review, &[("csrf", "forged"), ("new_status", "Approved")]).await;
    assert_eq!(status, 403, "a wrong CSRF token");
    let csrf = csrf_of(&view);
    let (status, _, _) = browser
        .post(
            &review,
            &[("csrf", &csrf), ("new_status", "Approved"), ("comment", "Documents match")],
        )
        .await;
    assert_eq!(status, 303);
    let decision = app.get(&format!("/v3/session/{clone}/decision/"), &shared.receiver).await;
    assert_eq!(decision.body["status"], "Approved");
    assert_eq!(decision.body["reviews"][0]["comment"], "Documents match");
    let (_, _, queue) = browser.get("/console/").await;
    assert!(!queue.contains(&clone), "cleared from the queue");

    // Another application's session does not exist here.
    let (status, _, _) = browser.get(&format!("/console/sessions/{}/", shared.session)).await;
    assert_eq!(status, 404);

    // Signing out ends the session for every copy of its cookie.
    let copy = browser.cookies.clone();
    let (status, _, _) = browser.post("/console/sign-out/", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    let (_, _, page) = browser.get("/console/").await;
    assert!(page.contains("Sign in"), "{page}");
    // A second clone in review for the same reviewer's application.
    let second = app.finished_session(&shared.source, "user", "user-ana-002").await;
    let token = app.share(&shared.source, &second, &shared.receiver).await;
    let imported = app.import(&shared.receiver, &token, &shared.workflow, json!({})).await;
    let victim = imported.body["session_id"].as_str().unwrap().to_owned();
    let mut replay = Browser::new(&app);
    replay.cookies = copy;
    let (_, _, page) = replay.get("/console/").await;
    assert!(page.contains("Sign in"), "a replayed cookie: {page}");
    let (status, _, _) = replay
        .post(
            &format!("/console/sessions/{victim}/review/"),
            &[("csrf", &csrf), ("new_status", "Approved")],
        )
        .await;
    assert_eq!(status, 303, "sent to sign in");
    let decision = app.get(&format!("/v3/session/{victim}/decision/"), &shared.receiver).await;
    assert_eq!(decision.body["status"], "In Review", "nothing approved");
}

async fn the_console_refuses_wrong_keys_and_forged_sign_ins(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.tenant("Acme").await;
    let mut browser = Browser::new(&app);
    let (status, _, page) = browser.sign_in("hk_000000000000_wrong").await;
    assert_eq!(status, 401);
    assert!(page.contains("That key is not valid."));
    assert!(!browser.cookies.iter().any(|(n, _)| n == "handoff_console"));

    // A sign-in without the form's token (posted from elsewhere) is refused.
    let mut stranger = Browser::new(&app);
    let (status, _, _) =
        stranger.post("/console/sign-in/", &[("api_key", tenant.key.as_str())]).await;
    assert_eq!(status, 403);
    assert!(!stranger.cookies.iter().any(|(n, _)| n == "handoff_console"));

    // A forged session cookie is no session.
    let mut forger = Browser::new(&app);
    forger.cookies.push(("handoff_console".into(), "AAAA".into()));
    let (_, _, page) = forger.get("/console/").await;
    assert!(page.contains("Sign in"));
}

/// The sharing application sees its session's tokens, revokes one, and shares again.
async fn a_sharer_revokes_and_shares_from_the_console(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shared = app.shared("user", "user-ana-001").await;
    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in(&shared.source.key).await.0, 303);
    let path = format!("/console/sessions/{}/", shared.session);
    let (status, _, view) = browser.get(&path).await;
    assert_eq!(status, 200);
    assert!(view.contains(&shared.receiver.id), "{view}");
    assert!(view.contains(">active<"), "{view}");
    let jti_start = view.find("/shares/").unwrap() + 8;
    let jti = view[jti_start..].split('/').next().unwrap().to_owned();
    let csrf = csrf_of(&view);

    let revoke = format!("/console/sessions/{}/shares/{jti}/revoke/", shared.session);
    assert_eq!(browser.post(&revoke, &[]).await.0, 403, "no CSRF token");
    assert_eq!(browser.post(&revoke, &[("csrf", &csrf)]).await.0, 303);
    let (_, _, view) = browser.get(&path).await;
    assert!(view.contains(">revoked<"), "{view}");
    let refused = app.redeem(&shared, json!({})).await;
    assert_eq!(refused.body["code"], "share_token_revoked");

    let share = format!("/console/sessions/{}/share/", shared.session);
    let (status, _, _) =
        browser.post(&share, &[("csrf", &csrf), ("for_application_id", "not-an-id")]).await;
    assert_eq!(status, 400);
    let (status, _, page) =
        browser.post(&share, &[("csrf", &csrf), ("for_application_id", &shared.receiver.id)]).await;
    assert_eq!(status, 200);
    let needle = r#"aria-label="Share token">"#;
    let start = page.find(needle).unwrap() + needle.len();
    let token = page[start..].split('<').next().unwrap().trim().to_owned();
    let imported = app.import(&shared.receiver, &token, &shared.workflow, json!({})).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
}

/// The queue puts imported sessions first, newest first within, and filters by origin.
async fn the_queue_puts_imports_first_and_filters_by_origin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (shared, clone) = app.in_review("user", "user-ana-001").await;
    // A newer session of the receiver's own, also in review.
    let own = own_in_review(&app, &shared).await;

    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in(&shared.receiver.key).await.0, 303);
    let (_, _, queue) = browser.get("/console/").await;
    let (at_clone, at_own) = (queue.find(&clone).unwrap(), queue.find(&own).unwrap());
    assert!(at_clone < at_own, "the import first, though older");
    let (_, _, imports) = browser.get("/console/?origin=imported").await;
    assert!(imports.contains(&clone) && !imports.contains(&own));
    let (_, _, owns) = browser.get("/console/?origin=own").await;
    assert!(owns.contains(&own) && !owns.contains(&clone));
}

/// A reviewer asks the user to redo checked steps: only those steps' items go.
async fn a_reviewer_asks_to_redo_steps(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (shared, clone) = app.in_review("user", "user-ana-001").await;
    let before = app.get(&format!("/v3/session/{clone}/decision/"), &shared.receiver).await;
    let liveness = before.body["liveness_checks"][0]["node_id"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in(&shared.receiver.key).await.0, 303);
    let (_, _, view) = browser.get(&format!("/console/sessions/{clone}/")).await;
    assert!(view.contains(&format!(r#"name="node" value="{liveness}""#)), "{view}");
    let csrf = csrf_of(&view);
    let review = format!("/console/sessions/{clone}/review/");
    let (status, _, _) =
        browser.post(&review, &[("csrf", &csrf), ("new_status", "Resubmitted")]).await;
    assert_eq!(status, 400, "no step checked");
    let (status, _, _) = browser
        .post(
            &review,
            &[
                ("csrf", &csrf),
                ("new_status", "Resubmitted"),
                ("node", &liveness),
                ("comment", "Selfie too dark"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let decision = app.get(&format!("/v3/session/{clone}/decision/"), &shared.receiver).await;
    assert_eq!(decision.body["status"], "Resubmitted");
    assert!(decision.body["liveness_checks"].is_null(), "{}", decision.text);
    assert!(decision.body["id_verifications"].is_array(), "the others stay");
}

/// The console signs in only with a key that holds `reviews:write`; a workflow-limited key's
/// queue and pages hold its workflows' sessions only, and sharing needs `shares:write`.
async fn the_console_honours_a_keys_scopes_and_workflows(backend: Backend) {
    use handoff_domain::{Grant, WorkflowId};
    let app = TestApp::spawn(backend).await;
    let (shared, clone) = app.in_review("user", "user-ana-001").await;
    let receiver = &shared.receiver;
    let reader = crate::scoped_keys::named_key(
        &app,
        receiver,
        Grant { scopes: Some(vec!["sessions:read".parse().unwrap()]), ..Grant::default() },
    )
    .await;
    let mut browser = Browser::new(&app);
    let (status, set, page) = browser.sign_in(&reader.key).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("lacks the scope reviews:write"), "{page}");
    assert!(!set.iter().any(|c| c.starts_with("handoff_console=")), "no session");

    let other_workflow = app.workflow(receiver, "user").await;
    let elsewhere = app.session(receiver, &other_workflow, Some("user-elsewhere")).await;
    let reviewer = crate::scoped_keys::named_key(
        &app,
        receiver,
        Grant {
            scopes: Some(vec!["reviews:write".parse().unwrap()]),
            workflows: Some(vec![WorkflowId::from_uuid(shared.workflow.parse().unwrap())]),
            ..Grant::default()
        },
    )
    .await;
    let (status, _, _) = browser.sign_in(&reviewer.key).await;
    assert_eq!(status, 303);
    let (status, _, queue) = browser.get("/console/?status=all").await;
    assert_eq!(status, 200);
    assert!(queue.contains(&format!("/console/sessions/{clone}/")), "{queue}");
    assert!(!queue.contains(&elsewhere), "another workflow's session: {queue}");
    let (status, _, _) = browser.get(&format!("/console/sessions/{elsewhere}/")).await;
    assert_eq!(status, 404);
    let (status, _, view) = browser.get(&format!("/console/sessions/{clone}/")).await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&view);
    let share = format!("/console/sessions/{clone}/share/");
    let form = [("csrf", csrf.as_str()), ("for_application_id", shared.source.id.as_str())];
    let (status, _, page) = browser.post(&share, &form).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("scopes do not allow"), "{page}");
}

/// A clone's provenance in the console names what its share withheld and the person's consent.
async fn the_console_shows_what_a_share_withheld_and_its_consent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let session = app.finished_session(&source, "user", "user-ana-001").await;
    let workflow = app.workflow(&receiver, "user").await;
    let shared = app
        .post(
            &format!("/v3/session/{session}/share/"),
            &source,
            serde_json::json!({"for_application_id": receiver.id, "blocks": ["aml_screenings"],
                "consent": {"reference": "consent-0042", "given_at": "2026-12-01T09:30:00Z",
                "text_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}),
        )
        .await;
    let token = shared.body["share_token"].as_str().unwrap();
    let imported = app.import(&receiver, token, &workflow, serde_json::json!({})).await;
    let clone = imported.body["session_id"].as_str().unwrap();
    let mut browser = Browser::new(&app);
    browser.sign_in(&receiver.key).await;
    let (status, _, view) = browser.get(&format!("/console/sessions/{clone}/")).await;
    assert_eq!(status, 200);
    for expected in ["Withheld by the share", "face_matches", "consent-0042", "9f86d081884c7d65"] {
        assert!(view.contains(expected), "{expected} missing: {view}");
    }
    assert!(!view.contains("Partner deployment"), "a local share names no partner");
}

per_backend!(
    the_console_shows_what_a_share_withheld_and_its_consent,
    the_console_honours_a_keys_scopes_and_workflows,
    a_reviewer_asks_to_redo_steps,
    the_queue_puts_imports_first_and_filters_by_origin,
    a_sharer_revokes_and_shares_from_the_console,
    a_reviewer_clears_an_imported_session,
    the_console_refuses_wrong_keys_and_forged_sign_ins,
    console_pages_are_bounded_and_pay_the_apis_budgets,
    console_forms_fit_the_comment_and_time_out
);

/// A session of a megabyte and more is shown a page of items at a time, long values cut;
/// the console's pages spend the key's rate budget and take the application's heavy slots
/// as the API's do, refused with pages.
async fn console_pages_are_bounded_and_pay_the_apis_budgets(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.heavy_requests =
            handoff_http::heavy::HeavyLimits { per_application: 1, waiting_per_application: 0 };
        c.rate_limits = Some(handoff_http::rate_limit::RateLimits {
            reads_per_minute: 12,
            ..handoff_http::rate_limit::RateLimits::default()
        });
    })
    .await;
    let tenant = app.tenant("Acme").await;
    let workflow = app.workflow(&tenant, "user").await;
    let session = app.session(&tenant, &workflow, Some("user-big")).await;
    let mut results: serde_json::Value =
        serde_json::from_str(&crate::support::example("record-results-user.json")).unwrap();
    let mut item = results["id_verifications"][0].clone();
    item["notes"] = json!("n".repeat(20_000));
    results["id_verifications"] = json!(vec![item; 60]);
    results["status"] = json!("In Review");
    let recorded = app.put(&format!("/v3/session/{session}/decision/"), &tenant, results).await;
    assert_eq!(recorded.status.as_u16(), 200, "{}", recorded.text);
    crate::limits::fresh_window().await;

    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in(&tenant.key).await.0, 303);
    let path = format!("/console/sessions/{session}/");
    let (status, _, page) = browser.get(&path).await;
    assert_eq!(status, 200);
    assert!(page.len() < 200_000, "a page of {} bytes", page.len());
    assert!(page.contains("Items 1–20 of 60"), "paged");
    assert!(page.contains("19700 more characters"), "cut values say so");
    let next = format!("{path}?block=id_verifications&#38;page=1#id_verifications");
    assert!(
        page.contains(&next),
        "a link to the next items: {:?}",
        page.lines().find(|l| l.contains("Next items"))
    );
    let (status, _, second) =
        browser.get_heavy(&format!("{path}?block=id_verifications&page=1")).await;
    assert_eq!(status, 200);
    assert!(second.contains("Items 21–40 of 60"));
    let (status, _, refused) = browser.get_heavy(&format!("{path}?page=x")).await;
    assert_eq!(status, 400, "a query that cannot be read");
    assert!(refused.contains("<html"), "a page, not JSON: {refused:.200}");

    // An upload of the application's holds its one heavy slot: the session page waits for
    // none and is refused with a page.
    let other = app.session(&tenant, &workflow, None).await;
    let upload = crate::support::Upload::start(&app, &tenant, &other).await;
    let (status, _, busy) = browser.get(&path).await;
    assert_eq!(status, 429, "the heavy slot is taken");
    assert!(busy.contains("<html"), "{busy:.200}");
    let answer = upload.finish().await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The reads spent so far count against the key's budget of 12, as the API's do.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(browser.get("/console/").await.0);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let api = app.get("/v3/sessions/", &tenant).await;
    assert_eq!(api.status.as_u16(), 429, "one budget for the key");
}

/// Console forms: a 10,000-character comment in any script fits; a larger form is a 413
/// page; a form that trickles in is cut off at the body timeout with a page.
async fn console_forms_fit_the_comment_and_time_out(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(backend, |c| {
        c.timeouts.body = std::time::Duration::from_secs(1);
    })
    .await;
    let (shared, clone) = app.in_review("user", "user-ana-001").await;
    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in(&shared.receiver.key).await.0, 303);
    let (_, _, view) = browser.get(&format!("/console/sessions/{clone}/")).await;
    let csrf = csrf_of(&view);
    let review = format!("/console/sessions/{clone}/review/");
    let comment = "𝔄".repeat(10_000);
    let (status, _, page) = browser
        .post(&review, &[("csrf", &csrf), ("new_status", "Approved"), ("comment", &comment)])
        .await;
    assert_eq!(status, 303, "{page:.300}");
    let decision = app.get(&format!("/v3/session/{clone}/decision/"), &shared.receiver).await;
    assert_eq!(decision.body["reviews"][0]["comment"], comment.as_str());

    let huge = "x".repeat(handoff_http::console::CONSOLE_FORM_BYTES);
    let (status, _, page) = browser.post(&review, &[("csrf", &csrf), ("comment", &huge)]).await;
    assert_eq!(status, 413);
    assert!(page.contains("<html"), "{page:.200}");

    let address = app.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /console/sign-in/ HTTP/1.1\r\nhost: {address}\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\
         connection: close\r\n\r\napi_key="
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("</html>")
        && started.elapsed() < std::time::Duration::from_secs(5)
    {
        match tokio::time::timeout(std::time::Duration::from_secs(5), slow.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:.300}");
    assert!(answer.contains("<html"), "{answer:.300}");
}

/// Reviewers sign in as themselves (an API key signs in only where the operator allows it),
/// their decisions name them, another application's sessions do not exist for them, and a
/// removed reviewer's open session ends at its next request.
async fn reviewers_sign_in_as_themselves_and_decisions_name_them(backend: Backend) {
    use crate::support::add_reviewer;
    let app = TestApp::spawn(backend).await;
    let (shared, clone) = app.in_review("user", "user-ana-001").await;
    let (email, password, _) = add_reviewer(
        app.db.url(),
        &shared.receiver,
        "Ana.Reviewer@Beta.Example",
        "reviewer",
        false,
    );
    assert_eq!(email, "ana.reviewer@beta.example", "kept in lower case");

    let mut browser = Browser::new(&app);
    let (status, _, page) = browser.sign_in_with_key(&shared.receiver.key).await;
    assert_eq!(status, 403, "a new application's console takes no keys");
    assert!(page.contains("takes no API keys"), "{page}");
    let (status, _, page) = browser.sign_in_as(&email, "not the password", "").await;
    assert_eq!(status, 401);
    assert!(page.contains("email, password or code is not right"), "{page}");
    let (status, _, page) = browser.sign_in_as("nobody@beta.example", &password, "").await;
    assert_eq!((status, page.contains("not right")), (401, true), "one answer for both");

    let (status, set, _) = browser.sign_in_as("ANA.REVIEWER@beta.example", &password, "").await;
    assert_eq!(status, 303);
    assert!(set.iter().any(|c| c.starts_with("handoff_console=")));
    let (_, _, queue) = browser.get("/console/").await;
    assert!(queue.contains(&email), "the header names who is signed in");
    assert!(queue.contains(&format!("/console/sessions/{clone}/")), "{queue}");
    let (_, _, view) = browser.get_heavy(&format!("/console/sessions/{clone}/")).await;
    let csrf = csrf_of(&view);
    let review = format!("/console/sessions/{clone}/review/");
    let form = [("csrf", csrf.as_str()), ("new_status", "Approved"), ("comment", "Seen")];
    assert_eq!(browser.post(&review, &form).await.0, 303);
    let decision = app.decision(&shared.receiver, &clone).await;
    assert_eq!(decision.body["status"], "Approved");
    assert_eq!(decision.body["reviews"][0]["user"], format!("reviewer:{email}"));
    let reviews = app.get(&format!("/v3/sessions/{clone}/reviews/"), &shared.receiver).await;
    let item = &reviews.body["results"][0];
    assert_eq!(
        (item["actor_type"].as_str(), item["actor_display"].as_str()),
        (Some("USER"), Some(format!("reviewer:{email}").as_str())),
        "{}",
        reviews.text
    );

    // A reviewer (not an admin) decides nothing of the console's API keys.
    let (_, _, account) = browser.get("/console/account/").await;
    assert!(!account.contains("API keys in this console"), "{account}");
    let form = [("csrf", csrf.as_str()), ("allow", "true")];
    assert_eq!(browser.post("/console/account/api-keys/", &form).await.0, 403);

    // A reviewer role may not share.
    let (status, _, _) =
        browser.post(&format!("/console/sessions/{}/share/", clone), &[("csrf", &csrf)]).await;
    assert_eq!(status, 403, "sharing is an admin's");
    // Another application's session does not exist for it.
    let (status, _, _) = browser.get(&format!("/console/sessions/{}/", shared.session)).await;
    assert_eq!(status, 404);

    // Removed by the operator: its open session ends at its next request.
    let args = ["reviewers", "remove", "--application", &shared.receiver.id, "--email", &email];
    let (ok, _, stderr) = crate::support::handoff_command(app.db.url(), &args, &[]);
    assert!(ok, "{stderr}");
    assert!(!browser.signed_in().await, "signed out once removed");
    let (status, _, _) = browser.sign_in_as(&email, &password, "").await;
    assert_eq!(status, 401);

    // The operator lets the application's keys sign in again.
    let args = [
        "applications",
        "update",
        "--application",
        &shared.receiver.id,
        "--console-api-keys",
        "true",
    ];
    let (ok, printed, _) = crate::support::handoff_command(app.db.url(), &args, &[]);
    assert!(ok);
    assert_eq!(printed[0]["console_api_keys"], true);
    assert_eq!(browser.sign_in_with_key(&shared.receiver.key).await.0, 303);
}

/// Wrong passwords or codes in a row lock an account for a while; a one-time code is needed
/// where the account has one; a password change ends every session and takes effect.
async fn accounts_lock_take_codes_and_change_passwords(backend: Backend) {
    use crate::support::add_reviewer;
    use handoff_domain::reviewer::code_at;
    let app = TestApp::spawn(backend).await;
    let tenant = app.tenant("Beta").await;
    let (email, password, secret) =
        add_reviewer(app.db.url(), &tenant, "totp@beta.example", "admin", true);
    let secret = secret.expect("a one-time-code secret");
    let mut browser = Browser::new(&app);
    let code = || code_at(&secret, chrono::Utc::now()).unwrap();
    assert_eq!(browser.sign_in_as(&email, &password, "").await.0, 401, "the code is needed");
    assert_eq!(browser.sign_in_as(&email, &password, "000000x").await.0, 401);
    assert_eq!(browser.sign_in_as(&email, &password, &code()).await.0, 303);
    assert!(browser.signed_in().await);

    // An admin lets the application's API keys sign in, from the console.
    let tenant_key = tenant.key.clone();
    let mut headless = Browser::new(&app);
    assert_eq!(headless.sign_in_with_key(&tenant_key).await.0, 403, "not yet");
    let (_, _, account) = browser.get("/console/account/").await;
    assert!(account.contains("Let API keys sign in"), "{account}");
    let form = [("csrf", csrf_of(&account)), ("allow", "true".to_owned())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(browser.post("/console/account/api-keys/", &form).await.0, 303);
    assert_eq!(headless.sign_in_with_key(&tenant_key).await.0, 303, "now it may");

    // Change the password: every session of the reviewer ends, this one too.
    let mut other = Browser::new(&app);
    assert_eq!(other.sign_in_as(&email, &password, &code()).await.0, 303);
    let (_, _, account) = browser.get("/console/account/").await;
    assert!(account.contains("Change your password"), "{account}");
    let csrf = csrf_of(&account);
    let short = [
        ("csrf", csrf.as_str()),
        ("current_password", password.as_str()),
        ("new_password", "short"),
    ];
    let (status, _, page) = browser.post("/console/account/password/", &short).await;
    assert_eq!(status, 400);
    assert!(page.contains("at least 12 characters"), "{page}");
    let changed = "a new and long passphrase";
    let form = [
        ("csrf", csrf.as_str()),
        ("current_password", password.as_str()),
        ("new_password", changed),
    ];
    assert_eq!(browser.post("/console/account/password/", &form).await.0, 303);
    assert!(!browser.signed_in().await && !other.signed_in().await, "both signed out");
    assert_eq!(browser.sign_in_as(&email, &password, &code()).await.0, 401, "the old one");
    assert_eq!(browser.sign_in_as(&email, changed, &code()).await.0, 303, "the new one");

    // Five wrong attempts in a row lock it; then even the right password waits.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(other.sign_in_as(&email, "wrong password!", &code()).await.0);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429]);
    let (status, _, page) = other.sign_in_as(&email, changed, &code()).await;
    assert_eq!(status, 429);
    assert!(page.contains("locked until"), "{page}");
}

/// The queue counts each status, orders oldest first (imports first) or as asked, filters by
/// age and assignee, and a reviewer takes a case and lets it go; a case links to the next and
/// names its keyboard shortcuts.
async fn the_queue_counts_orders_and_takes_assignments(backend: Backend) {
    use crate::support::add_reviewer;
    let app = TestApp::spawn(backend).await;
    let (shared, clone) = app.in_review("user", "user-ana-001").await;
    let own = own_in_review(&app, &shared).await;
    let (ana, ana_password, _) =
        add_reviewer(app.db.url(), &shared.receiver, "ana@beta.example", "reviewer", false);
    let (ben, ben_password, _) =
        add_reviewer(app.db.url(), &shared.receiver, "ben@beta.example", "reviewer", false);
    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in_as(&ana, &ana_password, "").await.0, 303);

    let (_, _, queue) = browser.get("/console/").await;
    assert!(queue.contains("In Review: 2"), "counts per status: {queue}");
    let order = |page: &str| (page.find(&clone).unwrap(), page.find(&own).unwrap());
    let (c, o) = order(&queue);
    assert!(c < o, "imports first, oldest first");
    let (_, _, newest) = browser.get("/console/?order=newest&origin=own").await;
    assert!(newest.contains(&own) && !newest.contains(&clone));
    let (_, _, newest) = browser.get("/console/?order=newest").await;
    let (c, o) = order(&newest);
    assert!(o < c, "newest first when asked");
    let (_, _, old) = browser.get("/console/?age=1d").await;
    assert!(old.contains("0 session(s)") && !old.contains(&clone), "none over a day old");

    // Ana takes the clone: hers, nobody's no more.
    let csrf = csrf_of(&queue);
    let assign = format!("/console/sessions/{clone}/assign/");
    let form = [("csrf", csrf.as_str()), ("to", "me"), ("back", "/console/?assignee=me")];
    let (status, headers, _) = browser.post(&assign, &form).await;
    assert_eq!(status, 303, "{headers:?}");
    let (_, _, mine) = browser.get("/console/?assignee=me").await;
    assert!(mine.contains(&clone) && !mine.contains(&own), "{mine}");
    assert!(mine.contains("Unassign #"), "she may let it go");
    let (_, _, nobodys) = browser.get("/console/?assignee=nobody").await;
    assert!(nobodys.contains(&own) && !nobodys.contains(&clone));
    let (_, _, view) = browser.get_heavy(&format!("/console/sessions/{clone}/")).await;
    assert!(view.contains(&ana), "the case names its assignee");
    // Times in the reviewer's zone, once chosen.
    assert!(view.contains(" UTC ("), "UTC until a zone is chosen");
    let (_, _, account) = browser.get("/console/account/").await;
    let zone_form = |zone: &'static str| [("csrf", csrf.clone()), ("time_zone", zone.to_owned())];
    let bad = zone_form("Mars/Olympus");
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert!(account.contains("Your time zone"));
    assert_eq!(browser.post("/console/account/time-zone/", &bad).await.0, 400);
    let tokyo = zone_form("Asia/Tokyo");
    let tokyo: Vec<(&str, &str)> = tokyo.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(browser.post("/console/account/time-zone/", &tokyo).await.0, 303);
    let (_, _, view) = browser.get_heavy(&format!("/console/sessions/{clone}/")).await;
    assert!(view.contains(" JST (") && !view.contains(" UTC ("), "{view}");
    // Keyboard: the next case, approve, decline, redo, back; and the help that says so.
    assert!(view.contains(&format!(r#"href="/console/sessions/{own}/" accesskey="n""#)), "{view}");
    for key in [
        r#"value="Approved" accesskey="a""#,
        r#"value="Declined" accesskey="d""#,
        r#"accesskey="q""#,
    ] {
        assert!(view.contains(key), "{key}");
    }
    assert!(view.contains("Keyboard shortcuts"));

    // Ben sees whose it is; his own cases are none.
    let mut other = Browser::new(&app);
    assert_eq!(other.sign_in_as(&ben, &ben_password, "").await.0, 303);
    let (_, _, his) = other.get("/console/?assignee=me").await;
    assert!(his.contains("0 session(s)"), "{his}");
    let (_, _, all) = other.get("/console/").await;
    assert!(all.contains(&ana), "the queue names the assignee");

    // Ana lets it go.
    let form = [("csrf", csrf.as_str()), ("to", "nobody")];
    assert_eq!(browser.post(&assign, &form).await.0, 303);
    let (_, _, nobodys) = browser.get("/console/?assignee=nobody").await;
    assert!(nobodys.contains(&own) && nobodys.contains(&clone));
    // Another application's session cannot be taken.
    let elsewhere = format!("/console/sessions/{}/assign/", shared.session);
    let (status, _, _) = browser.post(&elsewhere, &[("csrf", &csrf), ("to", "me")]).await;
    assert_eq!(status, 404);
    // An API key takes nothing.
    let mut key = Browser::new(&app);
    assert_eq!(key.sign_in(&shared.receiver.key).await.0, 303);
    let (_, _, page) = key.get("/console/").await;
    let key_csrf = csrf_of(&page);
    let (status, _, _) = key.post(&assign, &[("csrf", &key_csrf), ("to", "me")]).await;
    assert_eq!(status, 400);
}

/// Imported cases in review whose source approved them are listed for confirmation, then
/// approved at once, each naming the reviewer; a case whose source declined it, and the
/// application's own, are left.
async fn imported_cases_their_source_approved_are_approved_in_bulk(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (shared, approved_clone) = app.in_review("user", "user-ana-001").await;
    // A case the source declined, imported into review too.
    let declined = app.finished_session(&shared.source, "user", "user-ben-002").await;
    let put = app
        .put(
            &format!("/v3/session/{declined}/decision/"),
            &shared.source,
            json!({"status": "Declined"}),
        )
        .await;
    assert_eq!(put.status.as_u16(), 200, "{}", put.text);
    let token = app.share(&shared.source, &declined, &shared.receiver).await;
    let imported = app.import(&shared.receiver, &token, &shared.workflow, json!({})).await;
    let declined_clone = imported.body["session_id"].as_str().unwrap().to_owned();
    let (mut browser, email) = reviewer_signed_in(&app, &shared.receiver).await;

    let (status, _, confirm) = browser.get("/console/bulk-approve/").await;
    assert_eq!(status, 200);
    assert!(confirm.contains(&approved_clone), "{confirm}");
    assert!(!confirm.contains(&declined_clone), "its source declined it");
    assert!(confirm.contains("Approve these 1 cases"), "{confirm}");
    let csrf = csrf_of(&confirm);
    let (status, _, _) = browser.post("/console/bulk-approve/", &[("comment", "x")]).await;
    assert_eq!(status, 403, "no CSRF token");
    let form = [("csrf", csrf.as_str()), ("comment", "Source approved; documents match")];
    assert_eq!(browser.post("/console/bulk-approve/", &form).await.0, 303);
    let decision = app.decision(&shared.receiver, &approved_clone).await;
    assert_eq!(decision.body["status"], "Approved");
    assert_eq!(decision.body["reviews"][0]["user"], format!("reviewer:{email}"));
    assert_eq!(decision.body["reviews"][0]["comment"], "Source approved; documents match");
    let left = app.decision(&shared.receiver, &declined_clone).await;
    assert_eq!(left.body["status"], "In Review");
    let (_, _, again) = browser.get("/console/bulk-approve/").await;
    assert!(again.contains("No imported case in review was approved by its source."));
}

/// A case shows its evidence as cards, warnings first; the document number is masked until
/// the reviewer reveals it, which the session's log records (and a clone does not copy).
async fn evidence_is_summed_up_and_a_reveal_is_recorded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (shared, clone) = app.in_review("user", "user-ana-001").await;
    let (mut browser, email) = reviewer_signed_in(&app, &shared.receiver).await;
    let page = format!("/console/sessions/{clone}/");
    let (_, _, view) = browser.get_heavy(&page).await;
    let (warnings, evidence) = (view.find(r#"id="warnings""#), view.find(r#"id="evidence""#));
    assert!(warnings.unwrap() < evidence.unwrap(), "warnings first");
    assert!(warnings.unwrap() < view.find(r#"id="decide""#).unwrap());
    for expected in [
        "IP_COUNTRY_MATCHES_DOCUMENT",
        "Ana Example",
        "1990-04-12 (age 36)",
        "Identity Card, Spain",
        "••••••67Z",
        "Similarity score",
        "VPN or Tor",
        "Reveal the document number",
    ] {
        assert!(view.contains(expected), "{expected}: {view}");
    }
    assert!(!view.contains("X1234567Z"), "the number is masked everywhere on the page");

    let csrf = csrf_of(&view);
    let reveal = format!("/console/sessions/{clone}/reveal/");
    assert_eq!(browser.post(&reveal, &[]).await.0, 403, "no CSRF token");
    let (status, _, revealed) = browser.post(&reveal, &[("csrf", &csrf)]).await;
    assert_eq!(status, 200);
    assert!(revealed.contains("X1234567Z"));
    assert!(!revealed.contains("Reveal the document number"));
    let events =
        app.get(&format!("/v3/session/{clone}/decision/?include=events"), &shared.receiver).await;
    let looks: Vec<&serde_json::Value> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "revealed")
        .collect();
    assert_eq!(looks.len(), 1, "{}", events.text);
    assert_eq!(looks[0]["actor"], format!("reviewer:{email}"));
    assert_eq!(looks[0]["details"]["field"], "document_number");
    // Another application's session reveals nothing.
    let elsewhere = format!("/console/sessions/{}/reveal/", shared.session);
    assert_eq!(browser.post(&elsewhere, &[("csrf", &csrf)]).await.0, 404);
}

per_backend!(
    evidence_is_summed_up_and_a_reveal_is_recorded,
    imported_cases_their_source_approved_are_approved_in_bulk,
    the_queue_counts_orders_and_takes_assignments,
    reviewers_sign_in_as_themselves_and_decisions_name_them,
    accounts_lock_take_codes_and_change_passwords
);
