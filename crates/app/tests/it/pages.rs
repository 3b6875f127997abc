//! The end user's page at a session's `url`: the state in words, no personal data, `noindex`,
//! no referrer; unknown tokens are a 404 page that spends the address's budget.

use handoff::Config;
use handoff_http::rate_limit::RateLimits;
use handoff_testdb::Backend;

use crate::support::{PUBLIC_URL, Tenant, TestApp, per_backend};

/// The page of `session` as `tenant` sees its `session_url`: status, headers, body.
async fn page_of(app: &TestApp, tenant: &Tenant, session: &str) -> reqwest::Response {
    let decision = app.get(&format!("/v3/session/{session}/decision/"), tenant).await;
    let url = decision.body["session_url"].as_str().unwrap();
    let path = url.strip_prefix(PUBLIC_URL).expect("the session URL is the public one");
    app.client.get(format!("{}{path}", app.base)).send().await.unwrap()
}

async fn the_session_page_says_the_state_in_words(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (shared, clone_id) = app.in_review("user", "user-ana-001").await;
    let workflow = app.workflow(&shared.source, "user").await;
    let fresh = app.session(&shared.source, &workflow, Some("person-77")).await;

    let page = page_of(&app, &shared.source, &fresh).await;
    assert_eq!(page.status().as_u16(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-robots-tag"], "noindex, nofollow");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
    let body = page.text().await.unwrap();
    assert!(body.contains("has not started"), "{body}");
    assert!(body.contains(r#"<meta name="robots" content="noindex, nofollow">"#));
    assert!(body.contains("not done on this page"), "says the capture is elsewhere");
    for private in [fresh.as_str(), "person-77", &shared.source.id] {
        assert!(!body.contains(private), "{private} on the page");
    }

    let finished = page_of(&app, &shared.source, &shared.session).await;
    let body = finished.text().await.unwrap();
    assert!(body.contains("is finished"), "{body}");
    assert!(!body.contains("user-ana-001"));

    let imported = page_of(&app, &shared.receiver, &clone_id).await;
    assert!(imported.text().await.unwrap().contains("Nothing for you to do"));

    let css = app.client.get(format!("{}/assets/handoff.css", app.base)).send().await.unwrap();
    assert_eq!(css.status().as_u16(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}

/// Unknown tokens answer a 404 page and spend the address's budget, as wrong keys do.
async fn unknown_session_pages_are_404_and_throttled(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c: &mut Config| {
        c.rate_limits = Some(RateLimits { unauthenticated_per_minute: 3, ..RateLimits::default() })
    })
    .await;
    crate::limits::fresh_window().await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let response =
            app.client.get(format!("{}/session/no-such-token-{i}", app.base)).send().await.unwrap();
        statuses.push(response.status().as_u16());
        assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    }
    assert_eq!(statuses, [404, 404, 404, 429]);
}

per_backend!(the_session_page_says_the_state_in_words, unknown_session_pages_are_404_and_throttled);
