//! The review console's cookies, sealed with the deployment's key-encryption key: every server
//! of a deployment opens the cookies of the others, and no one else can read or forge one.

use handoff_http::console::CookieSealer;
use handoff_token::KeyEncryptionKey;

/// What the console's cookies are sealed for.
const CONTEXT: &str = "review console session";

/// Seals the console's cookies with the key-encryption key.
pub struct ConsoleCookies(pub KeyEncryptionKey);

impl CookieSealer for ConsoleCookies {
    fn seal(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.0.seal_for(CONTEXT, bytes).ok()
    }

    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        self.0.open_for(CONTEXT, sealed).ok()
    }
}
