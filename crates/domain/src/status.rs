//! Session statuses, with their exact wire strings, and the rules that depend on them.

use std::fmt;

/// The status of a session. The wire strings are title case with spaces, exactly as Didit's JSON
/// writes them (`In Review`, `Kyc Expired`), not the upper-case names of Didit's prose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionStatus {
    /// `Not Started`: created, the user has not begun.
    NotStarted,
    /// `In Progress`: the user is going through the flow.
    InProgress,
    /// `Awaiting User`: waiting for the user to come back.
    AwaitingUser,
    /// `In Review`: a person must decide.
    InReview,
    /// `Approved`: a final positive decision.
    Approved,
    /// `Declined`: a final negative decision.
    Declined,
    /// `Resubmitted`: the user was asked to redo some steps.
    Resubmitted,
    /// `Expired`: the session expired before it finished.
    Expired,
    /// `Abandoned`: the user left.
    Abandoned,
    /// `Kyc Expired`: an approved verification whose validity ran out.
    KycExpired,
}

impl SessionStatus {
    /// Every status, in the contract's order.
    pub const ALL: [SessionStatus; 10] = [
        SessionStatus::NotStarted,
        SessionStatus::InProgress,
        SessionStatus::AwaitingUser,
        SessionStatus::InReview,
        SessionStatus::Approved,
        SessionStatus::Declined,
        SessionStatus::Resubmitted,
        SessionStatus::Expired,
        SessionStatus::Abandoned,
        SessionStatus::KycExpired,
    ];

    /// The statuses of a session not yet finished, which a new session of the same
    /// `vendor_data` and workflow reuses instead of starting another.
    pub const UNFINISHED: [SessionStatus; 4] = [
        SessionStatus::NotStarted,
        SessionStatus::InProgress,
        SessionStatus::Resubmitted,
        SessionStatus::AwaitingUser,
    ];

    /// The statuses of a finished session, the contract's (check 7): a session is shared from
    /// them, and an application's retention counts from the last change into one.
    pub const FINISHED: [SessionStatus; 3] =
        [SessionStatus::Approved, SessionStatus::Declined, SessionStatus::InReview];

    /// The statuses from which a review (`update-status`) may move a session.
    pub const REVIEWABLE: [SessionStatus; 6] = [
        SessionStatus::Approved,
        SessionStatus::Declined,
        SessionStatus::InReview,
        SessionStatus::KycExpired,
        SessionStatus::Abandoned,
        SessionStatus::Resubmitted,
    ];

    /// The exact wire string.
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionStatus::NotStarted => "Not Started",
            SessionStatus::InProgress => "In Progress",
            SessionStatus::AwaitingUser => "Awaiting User",
            SessionStatus::InReview => "In Review",
            SessionStatus::Approved => "Approved",
            SessionStatus::Declined => "Declined",
            SessionStatus::Resubmitted => "Resubmitted",
            SessionStatus::Expired => "Expired",
            SessionStatus::Abandoned => "Abandoned",
            SessionStatus::KycExpired => "Kyc Expired",
        }
    }

    /// Parses the exact wire string (case and spaces matter); anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Whether a session in this status is finished ([`Self::FINISHED`]), so may be shared.
    pub fn is_shareable(self) -> bool {
        Self::FINISHED.contains(&self)
    }

    /// Whether a review may move a session out of this status.
    pub fn is_reviewable(self) -> bool {
        Self::REVIEWABLE.contains(&self)
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The statuses a review may set: `Approved`, `Declined` or `Resubmitted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReviewStatus {
    /// Approve the session.
    Approved,
    /// Decline the session.
    Declined,
    /// Ask the user to redo steps.
    Resubmitted,
    /// Put the session back in review (a review's, `POST /v3/sessions/{id}/reviews/`).
    InReview,
}

impl ReviewStatus {
    /// Parses what `update-status` takes: `Approved`, `Declined` or `Resubmitted`; other
    /// statuses (even valid session statuses) are `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Approved" => Some(ReviewStatus::Approved),
            "Declined" => Some(ReviewStatus::Declined),
            "Resubmitted" => Some(ReviewStatus::Resubmitted),
            _ => None,
        }
    }

    /// Parses what a review takes: `Approved`, `Declined` or `In Review`.
    pub fn parse_review(s: &str) -> Option<Self> {
        match s {
            "Approved" => Some(ReviewStatus::Approved),
            "Declined" => Some(ReviewStatus::Declined),
            "In Review" => Some(ReviewStatus::InReview),
            _ => None,
        }
    }

    /// The session status this review sets.
    pub const fn status(self) -> SessionStatus {
        match self {
            ReviewStatus::Approved => SessionStatus::Approved,
            ReviewStatus::Declined => SessionStatus::Declined,
            ReviewStatus::Resubmitted => SessionStatus::Resubmitted,
            ReviewStatus::InReview => SessionStatus::InReview,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_round_trip_exactly() {
        let strings: Vec<_> = SessionStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            strings,
            [
                "Not Started",
                "In Progress",
                "Awaiting User",
                "In Review",
                "Approved",
                "Declined",
                "Resubmitted",
                "Expired",
                "Abandoned",
                "Kyc Expired"
            ]
        );
        for status in SessionStatus::ALL {
            assert_eq!(SessionStatus::parse(status.as_str()), Some(status));
        }
        for wrong in
            ["IN_REVIEW", "APPROVED", "approved", "KYC Expired", "In  Review", " Approved", ""]
        {
            assert_eq!(SessionStatus::parse(wrong), None, "{wrong:?}");
        }
    }

    #[test]
    fn status_rules() {
        // status, shareable, reviewable
        let table = [
            (SessionStatus::NotStarted, false, false),
            (SessionStatus::InProgress, false, false),
            (SessionStatus::AwaitingUser, false, false),
            (SessionStatus::InReview, true, true),
            (SessionStatus::Approved, true, true),
            (SessionStatus::Declined, true, true),
            (SessionStatus::Resubmitted, false, true),
            (SessionStatus::Expired, false, false),
            (SessionStatus::Abandoned, false, true),
            (SessionStatus::KycExpired, false, true),
        ];
        for (status, shareable, reviewable) in table {
            assert_eq!(status.is_shareable(), shareable, "{status} shareable");
            assert_eq!(status.is_reviewable(), reviewable, "{status} reviewable");
        }
    }

    #[test]
    fn reviews_set_only_three_statuses() {
        assert_eq!(
            ReviewStatus::parse("Approved").map(ReviewStatus::status),
            Some(SessionStatus::Approved)
        );
        assert_eq!(
            ReviewStatus::parse("Declined").map(ReviewStatus::status),
            Some(SessionStatus::Declined)
        );
        assert_eq!(
            ReviewStatus::parse("Resubmitted").map(ReviewStatus::status),
            Some(SessionStatus::Resubmitted)
        );
        for other in ["In Review", "Not Started", "Kyc Expired", "approved"] {
            assert_eq!(ReviewStatus::parse(other), None);
        }
    }
}
