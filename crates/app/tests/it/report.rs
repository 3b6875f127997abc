//! The PDF report: rendered by Poppler (`pdftoppm`) and read back as text (`pdftotext`).

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::support::{Tenant, TestApp, assert_error, on_both_backends};

/// Whether Poppler's tools are here; in CI their absence fails the test, elsewhere it skips.
fn poppler() -> bool {
    let found = Command::new("pdftotext").arg("-v").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "pdftotext is missing (apt-get install poppler-utils; .ci/run installs it)"
        );
        eprintln!("SKIPPED: the PDF report test needs poppler-utils (pdftotext, pdftoppm)");
    }
    found
}

/// The report's bytes and its Content-Disposition.
async fn report(app: &TestApp, tenant: &Tenant, session: &str, slash: bool) -> (Vec<u8>, String) {
    let tail = if slash { "/" } else { "" };
    let path = format!("/v3/session/{session}/generate-pdf{tail}");
    let response = app.get_response(&path, tenant).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_owned();
    (response.bytes().await.unwrap().to_vec(), disposition)
}

/// The report's text, after checking that every page renders to an image.
fn read(pdf: &[u8], dir: &Path, name: &str) -> String {
    let file = dir.join(format!("{name}.pdf"));
    std::fs::write(&file, pdf).unwrap();
    let rendered = Command::new("pdftoppm")
        .args(["-png", "-r", "40"])
        .arg(&file)
        .arg(dir.join(name))
        .status()
        .unwrap();
    assert!(rendered.success(), "pdftoppm could not render {name}");
    let pages = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(name) && n.ends_with(".png")
        })
        .count();
    assert!(pages >= 1, "no page rendered");
    let output = Command::new("pdftotext").args(["-layout"]).arg(&file).arg("-").output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

on_both_backends!(the_report_shows_the_session_its_blocks_reviews_and_provenance);
async fn the_report_shows_the_session_its_blocks_reviews_and_provenance(app: TestApp) {
    if !poppler() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("handoff_report_{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();

    // A KYC session, reviewed; its report names the number, status, every block and the review.
    let tenant = app.tenant("Alpha").await;
    let session = app.finished_session(&tenant, "user", "user-ana-001").await;
    let reviewed = app
        .patch(
            &format!("/v3/session/{session}/update-status/"),
            &tenant,
            json!({"new_status": "Declined", "comment": "Document expired in review"}),
        )
        .await;
    assert_eq!(reviewed.status.as_u16(), 200, "{}", reviewed.text);
    let decision = app.decision(&tenant, &session).await.body;
    let (pdf, disposition) = report(&app, &tenant, &session, true).await;
    assert_eq!(disposition, format!("attachment; filename=session_{session}.pdf"));
    let text = read(&pdf, &dir, "user");
    let number = decision["session_number"].to_string();
    assert!(text.contains(&format!("Verification report: session {number}")), "{text}");
    assert!(text.contains("Status: Declined"), "{text}");
    for title in [
        "ID verification (id_verifications)",
        "Liveness (liveness_checks)",
        "Face match (face_matches)",
        "Proof of address (poa_verifications)",
        "Phone verification (phone_verifications)",
        "Email verification (email_verifications)",
        "AML screening (aml_screenings)",
        "IP analysis (ip_analyses)",
        "Database validation (database_validations)",
    ] {
        assert!(text.contains(title), "{title} missing:\n{text}");
    }
    assert!(text.contains("first_name: Ana"), "{text}");
    assert!(text.contains("Document expired in review"), "{text}");
    assert!(!text.contains("Provenance"), "{text}");

    // A KYB session: its own file name and blocks.
    let business = app.finished_session(&tenant, "business", "biz-widgets-001").await;
    let (pdf, disposition) = report(&app, &tenant, &business, false).await;
    assert_eq!(disposition, format!("attachment; filename=business_{business}.pdf"));
    let text = read(&pdf, &dir, "business");
    for title in [
        "Company registry (registry_checks)",
        "Key people (key_people_checks)",
        "Company documents (document_verifications)",
        "AML screening (aml_screenings)",
    ] {
        assert!(text.contains(title), "{title} missing:\n{text}");
    }
    assert!(text.contains("Example Widgets S.L."), "{text}");

    // A clone: where it came from, when, and with which trust_review.
    let shared = app.shared("user", "user-luis-002").await;
    let imported = app.redeem(&shared, json!({"trust_review": true})).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    let clone = imported.body["session_id"].as_str().unwrap();
    let (pdf, _) = report(&app, &shared.receiver, clone, true).await;
    let text = read(&pdf, &dir, "clone");
    assert!(text.contains("Provenance"), "{text}");
    assert!(text.contains(&format!("Imported from session: {}", shared.session)), "{text}");
    assert!(text.contains(&format!("Of application: {}", shared.source.id)), "{text}");
    assert!(text.contains("trust_review: true"), "{text}");
    assert!(text.contains("Status on import: Approved"), "{text}");

    // Unfinished: 403; another application's: 404.
    let workflow = app.workflow(&tenant, "user").await;
    let unfinished = app.session(&tenant, &workflow, None).await;
    let answer = app.get(&format!("/v3/session/{unfinished}/generate-pdf/"), &tenant).await;
    assert_error(&answer, 403, "session_not_finished");
    let other = app.tenant("Beta").await;
    let answer = app.get(&format!("/v3/session/{session}/generate-pdf/"), &other).await;
    assert_error(&answer, 404, "session_not_found");
    let _ = std::fs::remove_dir_all(&dir);
}

fn uuid_like() -> String {
    format!(
        "{}_{:?}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
}
