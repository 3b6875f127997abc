//! Fuzz target: share-token verification must refuse any input without panicking, and accept
//! nothing that the key ring did not sign.

#![no_main]

use std::sync::OnceLock;

use handoff_domain::ports::ShareTokens;
use handoff_token::{JwtShareTokens, Keyring, SigningKey};
use libfuzzer_sys::fuzz_target;

fn tokens() -> &'static JwtShareTokens {
    static TOKENS: OnceLock<JwtShareTokens> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let key = SigningKey::new("k1", b"fuzzing-secret-of-at-least-32-bytes!".to_vec(), None);
        JwtShareTokens::new(Keyring::new(key.into_iter().collect()))
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        // Random bytes cannot carry a valid HMAC-SHA256 signature.
        assert!(tokens().verify(token).is_err());
    }
});
