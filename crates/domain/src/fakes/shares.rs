//! The share ledger and the import in memory, decided by the domain's own check order.

use super::*;

#[async_trait]
impl ShareRepository for InMemory {
    async fn find_source(
        &self, application_id: ApplicationId, id: SessionId,
    ) -> Result<Option<StoredSession>, RepoError> {
        let mut state = self.state();
        Ok(find_mut(&mut state, application_id, id).map(|(r, _)| r.session.clone()))
    }

    async fn record_share_token(&self, token: &IssuedShareToken) -> Result<(), RepoError> {
        let mut state = self.state();
        let claims = &token.claims;
        claim(
            &mut state,
            claims.from_application_id,
            token.idempotency.as_ref(),
            IdempotentOperation::Share,
            crate::idempotency::share_resource(claims.session_id, &token.jti),
        )?;
        if let Some((_, logs)) = find_mut(&mut state, claims.from_application_id, claims.session_id)
        {
            logs.push(token.log.clone());
        }
        state.share_tokens.push(LedgerEntry {
            jti: token.jti.clone(),
            claims: token.claims.clone(),
            revoked_at: None,
            redeemed_at: None,
        });
        Ok(())
    }

    async fn list_unlisted_token(&self, claims: &ShareClaims) -> Result<(), RepoError> {
        let mut state = self.state();
        let Some(jti) = &claims.jti else {
            return Ok(());
        };
        if !state.share_tokens.iter().any(|t| &t.jti == jti) {
            state.share_tokens.push(LedgerEntry {
                jti: jti.clone(),
                claims: claims.clone(),
                revoked_at: None,
                redeemed_at: None,
            });
        }
        Ok(())
    }

    async fn import_context(&self, attempt: &ImportAttempt) -> Result<ImportContext, RepoError> {
        let mut state = self.state();
        state.import_context_reads += 1;
        Ok(import_context(&mut state, attempt))
    }

    async fn share_tokens_of(
        &self, application_id: ApplicationId, session_id: SessionId,
    ) -> Result<Vec<LedgerEntry>, RepoError> {
        Ok(self
            .state()
            .share_tokens
            .iter()
            .filter(|t| {
                t.claims.from_application_id == application_id && t.claims.session_id == session_id
            })
            .cloned()
            .collect())
    }

    async fn revoke_share_token(
        &self, application_id: ApplicationId, jti: &str, log: &LogEntry,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        let Some(token) = state
            .share_tokens
            .iter_mut()
            .find(|t| t.jti == jti && t.claims.from_application_id == application_id)
        else {
            return Ok(false);
        };
        let first = token.revoked_at.is_none();
        token.revoked_at.get_or_insert(log.created_at);
        let session_id = token.claims.session_id;
        if first && let Some((_, logs)) = find_mut(&mut state, application_id, session_id) {
            logs.push(log.clone());
        }
        Ok(true)
    }

    /// Checks with the domain's [`first_failed_check`] and clones, under one lock.
    async fn import(&self, attempt: &ImportAttempt) -> Result<ImportOutcome, RepoError> {
        let mut state = self.state();
        let context = import_context(&mut state, attempt);
        match (first_failed_check(&context, attempt), context.existing_clone) {
            (Some(ImportCheck::NotImported), Some(existing)) => {
                return Ok(ImportOutcome::AlreadyImported(existing));
            }
            (Some(_), _) => return Ok(ImportOutcome::Refused),
            (None, _) => {}
        }
        // A token expected in the ledger must be there, to be redeemed.
        if attempt.listed && context.token.is_none() {
            return Ok(ImportOutcome::Refused);
        }
        let (Some(source), Some(workflow)) = (context.source, context.workflow) else {
            return Ok(ImportOutcome::Refused);
        };
        let Some((source, source_logs)) =
            find_mut(&mut state, attempt.claims.from_application_id, source.id)
                .map(|(r, l)| (r.clone(), l.clone()))
        else {
            return Ok(ImportOutcome::Refused);
        };
        let session_number = next_number(&mut state, attempt.application_id);
        let vendor_data = attempt.clone_vendor_data(&source.session).cloned();
        let kind = source.session.kind;
        let entity_status = match &vendor_data {
            Some(vendor_data) => {
                ensure_entity(
                    &mut state,
                    attempt.application_id,
                    kind,
                    vendor_data,
                    attempt.created_at,
                );
                let key = vendor_data.key();
                state
                    .entities
                    .iter()
                    .find(|(app, e)| {
                        *app == attempt.application_id
                            && e.kind == kind
                            && e.vendor_data.key() == key
                    })
                    .map(|(_, e)| e.status)
            }
            None => None,
        };
        let status = attempt.status(source.session.status, entity_status, &[]);
        let session = StoredSession {
            id: attempt.clone_id,
            application_id: attempt.application_id,
            session_number,
            session_token: attempt.session_token.clone(),
            session_url: attempt.session_url.clone(),
            status,
            workflow_id: attempt.workflow_id,
            vendor_data,
            metadata: None,
            callback: None,
            options: Default::default(),
            revision: 0,
            shared_from_session: Some(source.session.id),
            created_at: attempt.created_at,
            expires_at: attempt.expires_at(workflow),
            ..source.session.clone()
        };
        claim(
            &mut state,
            attempt.application_id,
            attempt.idempotency.as_ref(),
            IdempotentOperation::Import,
            attempt.clone_id.to_string(),
        )?;
        let mut logs: Vec<LogEntry> = source_logs
            .into_iter()
            .filter(LogEntry::copied_to_clones)
            .map(|log| LogEntry { actor: attempt.copied_actor(), ..log })
            .collect();
        logs.push(attempt.log.transition(source.session.status, status));
        if attempt.listed {
            let jti = attempt.claims.jti.as_deref();
            if let Some(token) = state.share_tokens.iter_mut().find(|t| Some(t.jti.as_str()) == jti)
            {
                token.redeemed_at = Some(attempt.created_at);
            }
        }
        let reviews = source
            .reviews
            .into_iter()
            .map(|review| Review { user: attempt.copied_actor(), ..review })
            .collect();
        let blocks =
            source.blocks.into_iter().filter(|(block, _)| attempt.claims.carries(*block)).collect();
        let record = SessionRecord { session, blocks, reviews };
        if let Some((_, source_logs)) =
            find_mut(&mut state, attempt.claims.from_application_id, source.session.id)
        {
            source_logs.push(attempt.source_log.clone());
        }
        state.sessions.push((record.clone(), logs));
        Ok(ImportOutcome::Imported(Box::new(record)))
    }
}
