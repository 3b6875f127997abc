//! Reviewers: the people who sign in to an application's review console with their own
//! password (Argon2id) and, when they have one, a time-based one-time code (RFC 6238), and
//! whose decisions name them. The operator adds and removes them; repeated wrong passwords
//! lock the account for a while.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};

use crate::grant::{Access, Grant, Resource, Scope};
use crate::ids::{ApplicationId, ReviewerId};

/// Wrong passwords or codes in a row after which an account is locked.
pub const MAX_FAILED_SIGN_INS: i32 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT: Duration = Duration::minutes(15);
/// The shortest password a reviewer may choose.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password read (Argon2 would take any; a limit keeps a sign-in cheap).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// What a reviewer may do in the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewerRole {
    /// Reads sessions and decides them (reviews, resubmissions).
    Reviewer,
    /// Also shares sessions and revokes shares.
    Admin,
}

impl ReviewerRole {
    /// The name the command line and the store use.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReviewerRole::Reviewer => "reviewer",
            ReviewerRole::Admin => "admin",
        }
    }

    /// Parses `reviewer` or `admin`.
    pub fn parse(raw: &str) -> Option<Self> {
        [ReviewerRole::Reviewer, ReviewerRole::Admin].into_iter().find(|r| r.as_str() == raw)
    }

    /// What a console session of the role may do.
    pub fn grant(self) -> Grant {
        match self {
            ReviewerRole::Reviewer => Grant {
                scopes: Some(vec![
                    Scope { resource: Resource::Sessions, access: Access::Read },
                    Scope { resource: Resource::Reviews, access: Access::Write },
                ]),
                ..Grant::every_right()
            },
            ReviewerRole::Admin => Grant::every_right(),
        }
    }
}

/// A reviewer of an application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reviewer {
    /// Its id.
    pub id: ReviewerId,
    /// The application whose sessions it reviews.
    pub application_id: ApplicationId,
    /// How it signs in, and how its decisions name it: unique in the deployment, lower case.
    pub email: String,
    /// What it may do.
    pub role: ReviewerRole,
    /// Whether it signs in with a one-time code as well.
    pub totp: bool,
    /// The IANA time zone it reads times in (`Europe/Madrid`); `None`: UTC.
    pub time_zone: Option<String>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

impl Reviewer {
    /// How log rows name the reviewer as an actor.
    pub fn actor(&self) -> String {
        format!("reviewer:{}", self.email)
    }
}

/// A reviewer as stored: with its password's hash, its sealed one-time-code secret, and its
/// failed sign-ins.
#[derive(Clone, Debug)]
pub struct StoredReviewer {
    /// The reviewer.
    pub reviewer: Reviewer,
    /// Its password's Argon2id hash, in the PHC string format.
    pub password_hash: String,
    /// Its one-time-code secret, sealed under the deployment's key-encryption key.
    pub totp_secret: Option<crate::webhook::SealedSecret>,
    /// Wrong passwords or codes since the last sign-in.
    pub failed_sign_ins: i32,
    /// Until when the account is locked.
    pub locked_until: Option<DateTime<Utc>>,
}

/// A reviewer's email: trimmed and lower-cased, one `@` with something on each side, no
/// spaces or control characters, at most 254 characters.
pub fn parse_email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    let well_formed = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !domain.contains('@')
    });
    if !well_formed || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("an email address is local@domain, without spaces");
    }
    if email.chars().count() > 254 {
        return Err("an email address is at most 254 characters");
    }
    Ok(email)
}

/// Whether `password` may be chosen.
pub fn check_new_password(password: &str) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err("a password has at least 12 characters");
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err("a password has at most 256 characters");
    }
    Ok(())
}

/// `password`'s Argon2id hash (the crate's default parameters, a random salt), PHC-encoded.
pub fn hash_password(password: &str) -> Result<String, crate::RepoError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| crate::RepoError::Internal(format!("random source failed: {e}").into()))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| crate::RepoError::Internal(e.to_string().into()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| crate::RepoError::Internal(e.to_string().into()))
}

/// Whether `password` is the one `hash` was made from (in constant time, by the crate).
pub fn verify_password(password: &str, hash: &str) -> bool {
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return false;
    }
    PasswordHash::new(hash)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A fresh password for a new reviewer: 20 random characters of `a-z0-9`, about 103 bits.
pub fn new_password() -> Result<String, crate::RepoError> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes)
        .map_err(|e| crate::RepoError::Internal(format!("random source failed: {e}").into()))?;
    // 256 is not a multiple of 36: the bias of the first 4 letters is below 1 %, and the
    // password is a first one, changed at the first sign-in.
    Ok(bytes.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect())
}

/// What a reviewer's one-time-code secret is sealed for.
pub fn totp_context(id: ReviewerId) -> String {
    format!("reviewer {} totp", id.as_uuid())
}

/// A fresh one-time-code secret: 20 random bytes (160 bits, RFC 4226's recommendation).
pub fn new_totp_secret() -> Result<Vec<u8>, crate::RepoError> {
    let mut secret = vec![0u8; 20];
    getrandom::fill(&mut secret)
        .map_err(|e| crate::RepoError::Internal(format!("random source failed: {e}").into()))?;
    Ok(secret)
}

/// The RFC 6238 generator of `secret`: SHA-1, 6 digits, 30 s steps, one step of skew.
fn totp(secret: Vec<u8>) -> Option<totp_rs::TOTP> {
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, secret).ok()
}

/// The `otpauth://` address an authenticator app reads the secret from.
pub fn totp_url(email: &str, secret: &[u8]) -> Option<String> {
    let base32 = totp(secret.to_vec())?.get_secret_base32();
    let label: String = url::form_urlencoded::byte_serialize(email.as_bytes()).collect();
    Some(format!("otpauth://totp/handoff:{label}?secret={base32}&issuer=handoff"))
}

/// Whether `code` is the secret's code at `now` (or one step either side).
pub fn check_code(secret: &[u8], code: &str, now: DateTime<Utc>) -> bool {
    let Ok(time) = u64::try_from(now.timestamp()) else {
        return false;
    };
    totp(secret.to_vec()).is_some_and(|totp| totp.check(code.trim(), time))
}

/// The code of `secret` at `now` (for tests and tools that play the authenticator).
pub fn code_at(secret: &[u8], now: DateTime<Utc>) -> Option<String> {
    let time = u64::try_from(now.timestamp()).ok()?;
    totp(secret.to_vec()).map(|totp| totp.generate(time))
}

/// The secret an `otpauth://` address carries (for tests and tools that play the
/// authenticator).
pub fn secret_of_url(url: &str) -> Option<Vec<u8>> {
    let query = url.split_once('?')?.1;
    let encoded = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "secret")
        .map(|(_, value)| value.into_owned())?;
    totp_rs::Secret::Encoded(encoded).to_bytes().ok()
}

/// A time zone a reviewer may choose: an IANA name (`Europe/Madrid`, `UTC`).
pub fn parse_time_zone(raw: &str) -> Result<chrono_tz::Tz, &'static str> {
    raw.trim()
        .parse::<chrono_tz::Tz>()
        .map_err(|_| "a time zone is an IANA name, such as Europe/Madrid")
}

/// Why a sign-in was refused, as the console tells it (a wrong email and a wrong password are
/// one answer, so that the page says nothing of who has an account).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInRefusal {
    /// The email, the password or the code is wrong.
    Wrong,
    /// Too many wrong attempts: the account is locked until then.
    Locked(DateTime<Utc>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterz", &hash));
        assert!(!verify_password("", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert_ne!(hash_password("correct horse battery").unwrap(), hash, "salted");
    }

    #[test]
    fn new_passwords_are_long_and_different() {
        let (a, b) = (new_password().unwrap(), new_password().unwrap());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(check_new_password(&a).is_ok());
        assert!(check_new_password("short").is_err());
        assert!(check_new_password(&"x".repeat(257)).is_err());
    }

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(parse_email("  Ana@Bank.Example ").unwrap(), "ana@bank.example");
        for bad in ["", "ana", "@bank", "ana@", "a na@bank", "a@b@c", "ana@ba\nnk"] {
            assert!(parse_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_code_holds_for_its_step_and_the_next_only() {
        let secret = new_totp_secret().unwrap();
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:10Z").unwrap().to_utc();
        let code = code_at(&secret, now).unwrap();
        assert!(check_code(&secret, &code, now));
        assert!(check_code(&secret, &code, now + Duration::seconds(30)), "one step of skew");
        assert!(!check_code(&secret, &code, now + Duration::seconds(90)));
        assert!(!check_code(&secret, "000000x", now));
        let url = totp_url("ana@bank.example", &secret).unwrap();
        assert!(url.starts_with("otpauth://totp/handoff:ana%40bank.example?secret="), "{url}");
        assert_eq!(secret_of_url(&url), Some(secret));
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(parse_time_zone(" Europe/Madrid ").unwrap().name(), "Europe/Madrid");
        assert!(parse_time_zone("UTC").is_ok());
        assert!(parse_time_zone("Mars/Olympus").is_err());
        assert!(parse_time_zone("+01:00").is_err());
    }

    #[test]
    fn roles_grant_what_they_say() {
        let reviewer = ReviewerRole::Reviewer.grant();
        assert!(reviewer.allows(Scope { resource: Resource::Reviews, access: Access::Write }));
        assert!(reviewer.allows(Scope { resource: Resource::Sessions, access: Access::Read }));
        assert!(!reviewer.allows(Scope { resource: Resource::Shares, access: Access::Write }));
        assert!(
            ReviewerRole::Admin
                .grant()
                .allows(Scope { resource: Resource::Shares, access: Access::Write })
        );
        assert_eq!(ReviewerRole::parse("admin"), Some(ReviewerRole::Admin));
        assert_eq!(ReviewerRole::parse("Admin"), None);
    }
}
