//! A data subject's request (an extension): everything an application keeps of one person or
//! company — their User and Business, every session of their `vendor_data` (matched as the
//! session list matches it, case-insensitively) with its log and its share ledger — exported,
//! then erased.

use super::{Error, SessionService, ShareService};
use crate::application::Caller;
use crate::entity::Entity;
use crate::kind::SessionKind;
use crate::session::{LogEntry, MAX_PAGE_SIZE, SessionFilter, SessionRecord};
use crate::share::{LedgerEntry, TokenState};
use crate::vendor_data::VendorData;

/// What an application keeps of one subject.
#[derive(Debug)]
pub struct SubjectData {
    /// Their User and Business, where the application has them.
    pub entities: Vec<Entity>,
    /// Their sessions, oldest first.
    pub sessions: Vec<SubjectSession>,
}

/// One session of a subject.
#[derive(Debug)]
pub struct SubjectSession {
    /// The session, its blocks and reviews.
    pub record: SessionRecord,
    /// Its log: what happened to it, a clone's provenance included.
    pub events: Vec<LogEntry>,
    /// The share tokens issued for it, with where each stands.
    pub shares: Vec<(LedgerEntry, TokenState)>,
}

/// What an erasure deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Erased {
    /// Sessions, each with every related row.
    pub sessions: u64,
    /// Users and Businesses.
    pub entities: u64,
}

/// Exports and erases a subject's data.
#[derive(Clone)]
pub struct SubjectService {
    sessions: SessionService,
    share: ShareService,
}

impl SubjectService {
    pub(super) fn new(sessions: SessionService, share: ShareService) -> Self {
        Self { sessions, share }
    }

    /// Everything the caller keeps of `vendor_data`.
    pub async fn export(
        &self, caller: &Caller, vendor_data: &VendorData,
    ) -> Result<SubjectData, Error> {
        let mut entities = Vec::new();
        for kind in [SessionKind::User, SessionKind::Business] {
            match self.sessions.entity(caller, kind, vendor_data).await {
                Ok(entity) => entities.push(entity),
                Err(Error::EntityNotFound) => {}
                Err(error) => return Err(error),
            }
        }
        let mut sessions = Vec::new();
        for id in self.session_ids(caller, vendor_data).await? {
            let record = match self.sessions.decision(caller, id).await {
                Ok(record) => record,
                // Deleted since it was listed.
                Err(Error::SessionNotFound) => continue,
                Err(error) => return Err(error),
            };
            let events = self.sessions.events(caller, id).await?;
            let shares = self.share.ledger(caller, id).await?;
            sessions.push(SubjectSession { record, events, shares });
        }
        sessions.sort_by_key(|s| (s.record.session.created_at, s.record.session.session_number));
        Ok(SubjectData { entities, sessions })
    }

    /// Deletes every session of `vendor_data` and the subject's User and Business.
    pub async fn erase(&self, caller: &Caller, vendor_data: &VendorData) -> Result<Erased, Error> {
        let ids = self.session_ids(caller, vendor_data).await?;
        let mut sessions = 0;
        for id in ids {
            match self.sessions.delete(caller, id).await {
                Ok(()) => sessions += 1,
                Err(Error::SessionNotFound) => {}
                Err(error) => return Err(error),
            }
        }
        let mut entities = 0;
        let named = std::slice::from_ref(vendor_data);
        for kind in [SessionKind::User, SessionKind::Business] {
            entities += self.sessions.delete_entities(caller, kind, Some((named, &[]))).await?;
        }
        Ok(Erased { sessions, entities })
    }

    /// The ids of the caller's sessions of `vendor_data`, of both kinds.
    async fn session_ids(
        &self, caller: &Caller, vendor_data: &VendorData,
    ) -> Result<Vec<crate::ids::SessionId>, Error> {
        let mut filter = SessionFilter {
            vendor_data: Some(vendor_data.clone()),
            ..SessionFilter::of_kinds(vec![SessionKind::User, SessionKind::Business], MAX_PAGE_SIZE)
        };
        let mut ids = Vec::new();
        loop {
            let page = self.sessions.list(caller, &filter).await?;
            let full = page.results.len() as u64 == MAX_PAGE_SIZE;
            ids.extend(page.results.into_iter().map(|listing| listing.session.id));
            if !full {
                return Ok(ids);
            }
            filter.offset += MAX_PAGE_SIZE;
        }
    }
}
