//! The share token's rules, the import's check order and the clone's status rule, tested.

use super::*;

/// `trust_review` × every status × entity status: the whole decision table.
#[test]
fn clone_status_decision_table() {
    let entities = [
        None,
        Some(EntityStatus::Active),
        Some(EntityStatus::Flagged),
        Some(EntityStatus::Blocked),
    ];
    for source in SessionStatus::ALL {
        for trust_review in [false, true] {
            for entity in entities {
                let expected = match (entity, trust_review) {
                    (Some(EntityStatus::Blocked), _) => SessionStatus::Declined,
                    (Some(EntityStatus::Flagged), _) => SessionStatus::InReview,
                    (_, true) => source,
                    (_, false) => SessionStatus::InReview,
                };
                assert_eq!(
                    clone_status(source, trust_review, entity),
                    expected,
                    "{source} trust={trust_review} entity={entity:?}"
                );
            }
        }
    }
}

#[test]
fn clone_status_rows_in_words() {
    use EntityStatus::*;
    use SessionStatus::*;
    let rows = [
        (Approved, true, None, Approved),
        (Approved, false, None, InReview),
        (Declined, true, Some(Active), Declined),
        (InReview, true, Some(Active), InReview),
        (Approved, true, Some(Flagged), InReview),
        (Approved, true, Some(Blocked), Declined),
        (Approved, false, Some(Blocked), Declined),
        (Declined, false, Some(Flagged), InReview),
    ];
    for (source, trust, entity, expected) in rows {
        assert_eq!(clone_status(source, trust, entity), expected);
    }
}

/// A context and an attempt where every check passes.
fn passing() -> (ImportContext, ImportAttempt) {
    let id = |n| uuid::Uuid::from_u128(n);
    let at = DateTime::UNIX_EPOCH;
    let claims = ShareClaims {
        session_id: SessionId::from_uuid(id(1)),
        session_kind: SessionKind::User,
        from_application_id: ApplicationId::from_uuid(id(2)),
        for_application_id: ApplicationId::from_uuid(id(3)),
        issued_at: at,
        expires_at: at,
        jti: None,
        blocks: None,
        consent: None,
    };
    let source = StoredSession {
        session_token: String::new(),
        session_url: String::new(),
        ..StoredSession::approved(
            claims.session_id,
            claims.from_application_id,
            WorkflowId::from_uuid(id(4)),
            at,
        )
    };
    let context = ImportContext {
        token: Some(RecordedToken { claims: claims.clone(), revoked: false, redeemed: false }),
        source: Some(source),
        recorded_blocks: Vec::new(),
        existing_clone: None,
        workflow: Some(ImportWorkflow { kind: SessionKind::User, session_expiration_time: 60 }),
        receiver_entity: None,
        blocklisted: Vec::new(),
    };
    let attempt = ImportAttempt {
        claims,
        application_id: ApplicationId::from_uuid(id(3)),
        accept_unlisted_tokens: false,
        listed: true,
        workflow_id: WorkflowId::from_uuid(id(5)),
        clone_id: SessionId::from_uuid(id(6)),
        session_token: String::new(),
        session_url: String::new(),
        trust_review: false,
        vendor_data: None,
        entity_id: EntityId::from_uuid(uuid::Uuid::nil()),
        created_at: at,
        log: LogEntry {
            kind: crate::session::LogKind::Event,
            actor: String::new(),
            action: crate::action::LogAction::Created,
            old_status: None,
            new_status: None,
            comment: None,
            details: None,
            created_at: at,
        },
        source_log: LogEntry::event(String::new(), crate::action::LogAction::ImportedBy, None, at),
        source_created_after: None,
        idempotency: None,
    };
    (context, attempt)
}

/// Breaks one check of a passing context and attempt.
fn break_check(check: ImportCheck, context: &mut ImportContext, attempt: &mut ImportAttempt) {
    match check {
        ImportCheck::TokenValid | ImportCheck::TokenNotExpired => {}
        ImportCheck::TokenIssuedHere => context.token = None,
        ImportCheck::TokenNotRevoked => {
            if let Some(token) = context.token.as_mut() {
                token.revoked = true;
            }
        }
        ImportCheck::AddressedToCaller => {
            // A token issued here, for another application.
            let stranger = ApplicationId::from_uuid(uuid::Uuid::max());
            attempt.claims.for_application_id = stranger;
            if let Some(token) = context.token.as_mut() {
                token.claims.for_application_id = stranger;
            }
        }
        ImportCheck::SourceExists => context.source = None,
        ImportCheck::NotImported => {
            context.existing_clone = Some(SessionId::from_uuid(uuid::Uuid::max()));
        }
        ImportCheck::WorkflowExists => context.workflow = None,
        ImportCheck::WorkflowKind => {
            context.workflow =
                Some(ImportWorkflow { kind: SessionKind::Business, session_expiration_time: 60 });
        }
        ImportCheck::SourceRecentEnough => {
            attempt.source_created_after = Some(attempt.created_at + chrono::Duration::days(1));
        }
    }
}

#[test]
fn the_checks_are_the_contracts_rows_in_order() {
    let rows: Vec<u8> = ImportCheck::ALL.iter().map(|c| c.row()).collect();
    assert_eq!(rows, [3, 4, 5, 5, 6, 7, 8, 9, 10, 11]);
}

/// Every set of broken checks (5 to 11): the first in the contract's order is the answer.
#[test]
fn the_first_failed_check_wins_for_every_combination() {
    let decided = &ImportCheck::ALL[2..];
    let (context, attempt) = passing();
    assert_eq!(first_failed_check(&context, &attempt), None);
    for mask in 1u32..(1 << decided.len()) {
        let (mut context, mut attempt) = passing();
        let broken: Vec<ImportCheck> = decided
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, c)| *c)
            .collect();
        // From the last back: an earlier check's breakage overrides a later one's.
        for check in broken.iter().rev() {
            break_check(*check, &mut context, &mut attempt);
        }
        assert_eq!(first_failed_check(&context, &attempt), Some(broken[0]), "{broken:?}");
    }
}

#[test]
fn the_ledger_decides_whether_a_token_was_issued_here() {
    let (mut context, mut attempt) = passing();
    // Claims that differ from the recorded ones: not the token this deployment issued.
    attempt.claims.expires_at += chrono::Duration::seconds(1);
    assert_eq!(first_failed_check(&context, &attempt), Some(ImportCheck::TokenIssuedHere));
    let (_, fresh) = passing();
    attempt = fresh;
    // Redeemed, even though no clone exists any more.
    if let Some(token) = context.token.as_mut() {
        token.redeemed = true;
    }
    assert_eq!(context.existing_clone, None);
    assert_eq!(first_failed_check(&context, &attempt), Some(ImportCheck::NotImported));
    // Unlisted: refused unless the deployment accepts unlisted tokens.
    context.token = None;
    assert_eq!(first_failed_check(&context, &attempt), Some(ImportCheck::TokenIssuedHere));
    attempt.accept_unlisted_tokens = true;
    assert_eq!(first_failed_check(&context, &attempt), None);
}

#[test]
fn a_source_that_is_no_longer_finished_is_not_found() {
    for status in SessionStatus::ALL {
        let (mut context, attempt) = passing();
        if let Some(source) = context.source.as_mut() {
            source.status = status;
        }
        let expected = (!status.is_shareable()).then_some(ImportCheck::SourceExists);
        assert_eq!(first_failed_check(&context, &attempt), expected, "{status}");
    }
}

#[test]
fn a_source_of_another_kind_is_not_found() {
    let (mut context, attempt) = passing();
    if let Some(source) = context.source.as_mut() {
        source.kind = SessionKind::Business;
    }
    assert_eq!(first_failed_check(&context, &attempt), Some(ImportCheck::SourceExists));
}

#[test]
fn share_ttls_are_bounded_by_the_contract() {
    for ok in [MIN_TTL_SECONDS, DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS] {
        assert_eq!(ShareTtl::parse(ok).map(ShareTtl::seconds), Ok(ok));
    }
    for bad in [-1, 0, MIN_TTL_SECONDS - 1, MAX_TTL_SECONDS + 1, i64::MAX] {
        assert!(ShareTtl::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(ShareTtl::DEFAULT.seconds(), 3_600);
}

#[test]
fn presented_tokens_are_bounded_in_characters() {
    assert!(ShareToken::parse(String::new()).is_err());
    assert!(ShareToken::parse("é".repeat(MAX_SHARE_TOKEN_CHARS)).is_ok());
    assert!(ShareToken::parse("a".repeat(MAX_SHARE_TOKEN_CHARS + 1)).is_err());
}

#[test]
fn a_tokens_state_names_what_happened_first() {
    let (context, _) = passing();
    let claims = context.token.map(|t| t.claims).unwrap();
    let at = |seconds| DateTime::from_timestamp(seconds, 0).unwrap();
    let entry = |revoked: Option<i64>, redeemed: Option<i64>| LedgerEntry {
        jti: "j".into(),
        claims: ShareClaims { expires_at: at(100), ..claims.clone() },
        revoked_at: revoked.map(at),
        redeemed_at: redeemed.map(at),
    };
    let rows = [
        (None, None, 50, TokenState::Active),
        (None, None, 101, TokenState::Expired),
        (Some(10), None, 50, TokenState::Revoked),
        (Some(10), None, 101, TokenState::Revoked),
        (None, Some(20), 50, TokenState::Redeemed),
        (Some(30), Some(20), 101, TokenState::Redeemed),
    ];
    for (revoked, redeemed, now, expected) in rows {
        assert_eq!(entry(revoked, redeemed).state(at(now)), expected);
    }
}
