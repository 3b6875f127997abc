//! `cargo xtask schemathesis [--seconds N]`: runs Schemathesis (from PyPI) with every check
//! against the `/openapi.json` of a seeded server: no server error, responses as the document
//! says, and no schema-valid request refused.

use std::process::{Command, ExitCode};

use crate::seeded::Seeded;

pub fn run(args: &[String]) -> ExitCode {
    let seconds = crate::seconds(args, 120);
    let seed = args.windows(2).find(|w| w[0] == "--seed").map(|w| w[1].clone());
    match run_for(seconds, seed.as_deref()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("schemathesis: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Where a schema-valid request may still be refused for what is stored — no schema can say
/// it — the refusals `positive_data_acceptance` accepts besides 2xx, 401, 403 and 404: (path,
/// method, statuses, why).
const STATEFUL_REFUSALS: [(&str, &str, &str, &str); 13] = [
    ("/v3/session/", "POST", "409, 422", "an Idempotency-Key in use, or reused with another body"),
    (
        "/v3/session/{session_id}/share/",
        "POST",
        "400, 409, 422",
        "for_application_id must name another application that exists; Idempotency-Key",
    ),
    (
        "/v3/session/import-shared/",
        "POST",
        "400, 409, 422",
        "the workflow must be of the token's kind; Idempotency-Key",
    ),
    (
        "/v3/session/import-shared/preview/",
        "POST",
        "400",
        "the workflow must be of the token's kind",
    ),
    (
        "/v3/session/{session_id}/decision/",
        "PUT",
        "400",
        "blocks must be of the session's kind and its workflow's steps",
    ),
    (
        "/v3/session/{session_id}/update-status/",
        "PATCH",
        "400",
        "the session must be reviewable; resubmitted nodes must have results",
    ),
    ("/v3/sessions/{session_id}/reviews/", "POST", "400", "the session must be reviewable"),
    (
        "/v3/session/{session_id}/update-data/",
        "PATCH",
        "400",
        "the session must hold the step's results",
    ),
    (
        "/v3/session/{session_id}/update-poa-data/",
        "PATCH",
        "400",
        "the session must hold the step's results",
    ),
    ("/v3/workflows/", "POST", "400", "features once each, of one kind"),
    ("/v3/workflows/{workflow_id}/", "PATCH", "400", "features once each, of the workflow's kind"),
    (
        "/v3/webhook/destinations/{destination_id}/",
        "PATCH",
        "400",
        "a url must name a real host and carry no credentials or fragment: URL syntax, which a pattern does not state",
    ),
    (
        "/v3/webhook/destinations/",
        "POST",
        "400",
        "at most 20 destinations per application; a url must name a real host (URL syntax, which a pattern does not state)",
    ),
];

/// The refusals of the Lists API (see [`STATEFUL_REFUSALS`]).
const LIST_REFUSALS: [(&str, &str, &str, &str); 5] = [
    (
        "/v3/lists/",
        "POST",
        "400",
        "a name no list of the application has, nor a system blocklist; text without control characters",
    ),
    (
        "/v3/lists/{list_uuid}/",
        "PATCH",
        "400",
        "a name no other list has; text without control characters",
    ),
    (
        "/v3/lists/{list_uuid}/entries/",
        "POST",
        "400",
        "a value of the list's entry type not in it yet, or a session that holds one",
    ),
    ("/v3/blocklist/add/", "POST", "400", "at least one blocklist_* flag set"),
    ("/v3/blocklist/remove/", "POST", "400", "at least one blocklist_* flag set"),
];

/// The entity creations: a `vendor_data` already taken is a 400.
const ENTITY_CREATION: [&str; 2] = ["/v3/users/create/", "/v3/businesses/create/"];

/// The deletions, sent with the receiving application's key (which holds nothing) so that
/// they do not delete what the other operations are tested on.
const DELETIONS: [&str; 8] = [
    "DELETE /v3/session/{session_id}/delete/",
    "POST /v3/sessions/delete/",
    "POST /v3/users/delete/",
    "POST /v3/businesses/delete/",
    "DELETE /v3/workflows/{workflow_id}/",
    "DELETE /v3/webhook/destinations/{destination_id}/",
    "DELETE /v3/lists/{list_uuid}/",
    "DELETE /v3/lists/{list_uuid}/entries/{entry_uuid}/",
];

fn config(seeded: &Seeded) -> String {
    let mut config = format!(
        "headers = {{ \"x-api-key\" = \"{}\" }}\n\n[parameters]\n\"path.session_id\" = \"{}\"\n\"path.workflow_id\" = \"{}\"\n\"path.vendor_data\" = \"seed-user\"\n\"path.list_uuid\" = \"{}\"\n",
        seeded.key, seeded.sessions[0], seeded.user_workflow, seeded.list
    );
    // A body over the route's limit is refused as too large before it is read.
    config.push_str("\n[checks.negative_data_rejection]\nexpected-statuses = [\"400\", \"401\", \"403\", \"404\", \"405\", \"406\", \"409\", \"413\", \"415\", \"422\", \"428\", \"429\"]\n");
    let creations =
        ENTITY_CREATION.map(|path| (path, "POST", "400", "the vendor_data must not be taken"));
    for (path, method, statuses, why) in
        STATEFUL_REFUSALS.iter().chain(&LIST_REFUSALS).chain(&creations)
    {
        let statuses: Vec<String> = ["2xx", "401", "403", "404"]
            .into_iter()
            .chain(statuses.split(", "))
            .map(|s| format!("\"{s}\""))
            .collect();
        config.push_str(&format!(
            "\n# {why}\n[[operations]]\ninclude-name = \"{method} {path}\"\nchecks.positive_data_acceptance.expected-statuses = [{}]\n",
            statuses.join(", ")
        ));
    }
    for name in DELETIONS {
        config.push_str(&format!(
            "\n[[operations]]\ninclude-name = \"{name}\"\nheaders = {{ \"x-api-key\" = \"{}\" }}\n",
            seeded.receiver_key
        ));
    }
    config
}

/// Runs for `seconds`; with `seed`, Hypothesis draws the same cases each run (CI), otherwise
/// new ones (exploration).
fn run_for(seconds: u64, seed: Option<&str>) -> Result<ExitCode, String> {
    let seeded = Seeded::start("schemathesis")?;
    let config = seeded.dir.join("schemathesis.toml");
    std::fs::write(&config, self::config(&seeded)).map_err(|e| e.to_string())?;
    let port = seeded.port;
    eprintln!("schemathesis against 127.0.0.1:{port} for {seconds} s");
    let status = Command::new("schemathesis")
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("http://127.0.0.1:{port}/openapi.json")])
        .args(["--checks", "all"])
        // The coverage phase of Schemathesis 4.32 crashes inside Hypothesis on this document (a
        // KeyError in its own code). Its stateful phase infers links to operations that lack
        // the parameter it passes (from the reviews feed to the webhook destinations) and
        // stops on them; the API sends no Location headers to infer better ones from.
        .args(["--phases", "examples,fuzzing"])
        .args(["--max-time", &seconds.to_string(), "--workers", "2"])
        .args(seed.map(|seed| ["--seed", seed]).into_iter().flatten())
        .status()
        .map_err(|e| format!("cannot run schemathesis (pip install schemathesis): {e}"))?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
