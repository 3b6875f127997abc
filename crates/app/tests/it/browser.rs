//! The review console in a real browser: headless Chromium driven over WebDriver
//! (chromedriver, from `fantoccini`). A reviewer added by the operator signs in with a
//! password and a one-time code, finds the imported session in the
//! queue, opens it, sees where it came from and its blocks, approves it with a comment by the
//! keyboard (A), and the API shows the new status naming the reviewer; an imported KYB case is
//! then cleared with the keyboard alone (N opens the next case, A approves); a wrong password, a decision without its CSRF token and
//! another application's session are refused. axe-core checks every page shown (no serious or
//! critical violation). Screenshots of the queue and the
//! session at desktop and phone widths are written to `target/screenshots/` (or
//! `HANDOFF_SCREENSHOTS_DIR`, which `cargo xtask screenshots` points at `docs/screenshots/`).
//! Without chromedriver the test says it skipped; with `CI` set it fails instead.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use handoff_testdb::Backend;
use serde_json::json;

use crate::support::{TestApp, per_backend};

/// A chromedriver process, killed on drop.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver on a free port, or `None` (said loudly) where it is not installed.
fn chromedriver() -> Option<Driver> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    match Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => Some(Driver(child, port)),
        Err(error) => {
            assert!(std::env::var_os("CI").is_none(), "chromedriver is required under CI: {error}");
            eprintln!("SKIPPED browser test: chromedriver is not installed ({error})");
            None
        }
    }
}

async fn browser(driver: &Driver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    for _ in 0..100 {
        if let Ok(client) = ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.1))
            .await
        {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer");
}

/// Writes a screenshot of the page at `width` × `height` as `name`.png.
async fn screenshot(client: &Client, name: &str, width: u32, height: u32) {
    client.set_window_size(width, height).await.unwrap();
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let dir = std::env::var_os("HANDOFF_SCREENSHOTS_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// axe-core's script (npm `axe-core`, which `.ci/run` installs under `target/axe/`), or `None`
/// (said loudly) where it is not installed; under `CI` its absence fails.
fn axe_script() -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/axe/node_modules/axe-core/axe.min.js");
    match std::fs::read_to_string(&path) {
        Ok(script) => Some(script),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "axe-core is missing: npm install --prefix target/axe axe-core@4 (.ci/run does)"
            );
            eprintln!(
                "SKIPPED: axe-core is not installed; the pages' accessibility is not checked"
            );
            None
        }
    }
}

/// Runs axe-core on the page shown and fails on any serious or critical violation, naming
/// each rule and the elements it found.
async fn accessible(client: &Client, axe: Option<&str>, page: &str) {
    let Some(axe) = axe else {
        return;
    };
    client.execute(&format!("{axe}\nreturn true;"), Vec::new()).await.unwrap();
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']}).then(r => done(JSON.stringify(
               r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => ({rule: v.id, impact: v.impact, help: v.help,
                             nodes: v.nodes.map(n => n.target.join(' '))})))));",
            Vec::new(),
        )
        .await
        .unwrap();
    let violations: serde_json::Value = serde_json::from_str(found.as_str().unwrap()).unwrap();
    assert_eq!(violations, json!([]), "axe-core on {page}");
}

/// Presses the page's access key `key` (Alt and the key, as Chromium on Linux reads them).
async fn access_key(client: &Client, key: char) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    use fantoccini::key::Key;
    let alt: char = Key::Alt.into();
    let keys = KeyActions::new("keyboard".to_owned())
        .then(KeyAction::Down { value: alt })
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key })
        .then(KeyAction::Up { value: alt });
    client.perform_actions(keys).await.unwrap();
}

/// Clicks the element `css` selects.
async fn click(client: &Client, css: &str) {
    client.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
}

/// Types `text` into the element `css` selects.
async fn type_into(client: &Client, css: &str, text: &str) {
    client.find(Locator::Css(css)).await.unwrap().send_keys(text).await.unwrap();
}

/// The text of the page's `main` once it contains `needle` (a click's navigation may still
/// be under way), within 10 s.
async fn text_with(client: &Client, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..200 {
        if let Ok(main) = client.find(Locator::Css("main")).await
            && let Ok(text) = main.text().await
        {
            if text.contains(needle) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page never said {needle:?}: {last}");
}

async fn a_reviewer_clears_the_queue_in_a_browser(backend: Backend) {
    let Some(driver) = chromedriver() else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    let (shared, clone) = app.in_review("user", "user-ana-001").await;
    let client = browser(&driver).await;
    let axe = axe_script();
    let axe = axe.as_deref();

    // A reviewer added by the operator, with a one-time code; a wrong password is refused.
    let (email, password, secret) = crate::support::add_reviewer(
        app.db.url(),
        &shared.receiver,
        "ana@beta.example",
        "reviewer",
        true,
    );
    let secret = secret.expect("a one-time-code secret");
    let code = || handoff_domain::reviewer::code_at(&secret, chrono::Utc::now()).unwrap();
    client.goto(&format!("{}/console/", app.base)).await.unwrap();
    accessible(&client, axe, "the sign-in page").await;
    type_into(&client, "#email", &email).await;
    type_into(&client, "#password", "not the password").await;
    type_into(&client, "#code", &code()).await;
    click(&client, "button[type=submit]").await;
    text_with(&client, "is not right").await;

    // Sign in; the queue shows the imported session, and who is signed in.
    type_into(&client, "#email", &email).await;
    type_into(&client, "#password", &password).await;
    type_into(&client, "#code", &code()).await;
    click(&client, "button[type=submit]").await;
    let queue = text_with(&client, "Sessions in review").await;
    assert!(queue.contains("imported"), "{queue}");
    let header = client.find(Locator::Css("header")).await.unwrap().text().await.unwrap();
    assert!(header.contains(&email), "{header}");
    assert!(!client.source().await.unwrap().contains(&password));
    accessible(&client, axe, "the queue").await;
    screenshot(&client, "console-queue-desktop", 1280, 900).await;
    screenshot(&client, "console-queue-phone", 390, 844).await;
    client.set_window_size(1280, 900).await.unwrap();

    // Open it: provenance and blocks.
    click(&client, &format!("a[href='/console/sessions/{clone}/']")).await;
    let view = text_with(&client, "Imported from another application").await;
    accessible(&client, axe, "an imported KYC session").await;
    for expected in [
        "In Review",
        "Imported from another application",
        shared.session.as_str(),
        "ID verification",
        "AML screening",
    ] {
        assert!(view.contains(expected), "{expected}: {view}");
    }
    screenshot(&client, "console-session-desktop", 1280, 900).await;
    screenshot(&client, "console-session-phone", 390, 844).await;
    client.set_window_size(1280, 900).await.unwrap();

    // A decision sent without the form's CSRF token (a page elsewhere posting here) is refused.
    let url = client.current_url().await.unwrap();
    client
        .execute(
            "document.querySelector('form[action$=\"/review/\"] input[name=csrf]').remove()",
            Vec::new(),
        )
        .await
        .unwrap();
    click(&client, "button[value=Approved]").await;
    text_with(&client, "The form had expired").await;
    client.goto(url.as_str()).await.unwrap();
    text_with(&client, "Imported from another application").await;

    // Approve with a comment, by the keyboard (A); the API sees it.
    type_into(&client, "#comment", "Documents and selfie match").await;
    access_key(&client, 'a').await;
    let after = text_with(&client, "Documents and selfie match").await;
    assert!(after.contains("Approved"), "{after}");
    let decision = app.get(&format!("/v3/session/{clone}/decision/"), &shared.receiver).await;
    assert_eq!(decision.body["status"], "Approved");
    assert_eq!(decision.body["reviews"].as_array().unwrap().len(), 1, "one decision");
    assert_eq!(
        decision.body["reviews"][0]["user"],
        format!("reviewer:{email}"),
        "it names its person"
    );

    // An imported KYB case: its blocks, accessible, shown at both widths.
    let company = app.finished_session(&shared.source, "business", "company-0007").await;
    let token = app.share(&shared.source, &company, &shared.receiver).await;
    let kyb_workflow = app.workflow(&shared.receiver, "business").await;
    let imported = app.import(&shared.receiver, &token, &kyb_workflow, json!({})).await;
    let kyb_clone = imported.body["session_id"].as_str().unwrap().to_owned();
    // Bulk approval's confirmation lists the KYB case, whose source approved it.
    client.goto(&format!("{}/console/bulk-approve/", app.base)).await.unwrap();
    let bulk = text_with(&client, "Approve these 1 cases").await;
    assert!(bulk.contains("company-0007"), "{bulk}");
    accessible(&client, axe, "the bulk approval's confirmation").await;

    client.goto(&format!("{}/console/sessions/{kyb_clone}/", app.base)).await.unwrap();
    let kyb = text_with(&client, "Company registry").await;
    assert!(kyb.contains("Imported from another application"), "{kyb}");
    accessible(&client, axe, "an imported KYB session").await;
    screenshot(&client, "console-kyb-desktop", 1280, 900).await;
    screenshot(&client, "console-kyb-phone", 390, 844).await;
    client.set_window_size(1280, 900).await.unwrap();

    // Cleared with the keyboard: from the queue, N opens the next case, A approves it.
    client.goto(&format!("{}/console/", app.base)).await.unwrap();
    text_with(&client, "Sessions in review").await;
    access_key(&client, 'n').await;
    text_with(&client, "Company registry").await;
    type_into(&client, "#comment", "Registry and owners check out").await;
    access_key(&client, 'a').await;
    text_with(&client, "Registry and owners check out").await;
    let kyb_decision = app.decision(&shared.receiver, &kyb_clone).await;
    assert_eq!(kyb_decision.body["status"], "Approved", "{}", kyb_decision.text);
    assert_eq!(kyb_decision.body["reviews"][0]["user"], format!("reviewer:{email}"));

    // The account page.
    client.goto(&format!("{}/console/account/", app.base)).await.unwrap();
    text_with(&client, "Change your password").await;
    accessible(&client, axe, "the account page").await;

    // Another application's session does not exist here.
    client.goto(&format!("{}/console/sessions/{}/", app.base, shared.session)).await.unwrap();
    let other = client.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
    assert!(other.contains("There is no such session."), "{other}");
    accessible(&client, axe, "a refusal").await;
    client.close().await.unwrap();
}

per_backend!(a_reviewer_clears_the_queue_in_a_browser);
