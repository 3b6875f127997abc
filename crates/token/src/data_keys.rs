//! Identity data at rest: each session's data is sealed (XChaCha20-Poly1305) under a data key
//! of its own; the data key is kept wrapped by its application's key, and the application's key
//! sealed under the key-encryption key. Destroying a session's wrapped data key, or an
//! application's key, leaves its ciphertext unreadable. A clone holds its source's data key,
//! wrapped by its own application's key, so an import copies ciphertext as it is. A long text
//! is compressed (raw DEFLATE, with libdeflate) before it is sealed when that makes it shorter:
//! a large upload then holds SQLite's one writer for fewer pages.

use std::cell::RefCell;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use libdeflater::{CompressionLvl, Compressor, DecompressionError, Decompressor};
use uuid::Uuid;

use crate::seal::{KeyEncryptionKey, SealError};

const NONCE_BYTES: usize = 24;
const KEY_BYTES: usize = 32;
/// How a sealed text begins: no JSON text begins so, which tells it from a value kept in clear.
const SEALED_PREFIX: &str = "s1:";
/// How a sealed text begins whose clear text was compressed before it was sealed.
const COMPRESSED_PREFIX: &str = "s2:";
/// How every sealed text begins, in either form.
pub const SEALED_PREFIXES: [&str; 2] = [SEALED_PREFIX, COMPRESSED_PREFIX];
/// Texts from this many bytes are compressed before they are sealed, if that makes them
/// shorter; shorter ones gain too little for the work.
pub const COMPRESS_FROM_BYTES: usize = 1024;

/// A key of 32 random bytes.
fn random_key() -> Result<[u8; KEY_BYTES], SealError> {
    let mut key = [0u8; KEY_BYTES];
    getrandom::fill(&mut key).map_err(|_| SealError::Random)?;
    Ok(key)
}

fn seal_with(cipher: &XChaCha20Poly1305, aad: &[u8], bytes: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
    let sealed = cipher
        .encrypt(&XNonce::from(nonce), Payload { msg: bytes, aad })
        .map_err(|_| SealError::WrongKey)?;
    Ok([nonce.as_slice(), &sealed].concat())
}

fn open_with(cipher: &XChaCha20Poly1305, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() < NONCE_BYTES {
        return Err(SealError::WrongKey);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::WrongKey)?;
    cipher
        .decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad })
        .map_err(|_| SealError::WrongKey)
}

/// `text` sealed with `cipher` for `field`, as text: `s1:` and the base64 of a fresh nonce and
/// the ciphertext; or, for a long text that compresses, `s2:` and the same of its compressed
/// bytes, sealed for the field marked as compressed, so that neither form opens as the other.
fn seal_text(cipher: &XChaCha20Poly1305, field: &str, text: &str) -> Result<String, SealError> {
    let compressed = (text.len() >= COMPRESS_FROM_BYTES)
        .then(|| compress(text.as_bytes()))
        .flatten()
        .filter(|compressed| compressed.len() < text.len());
    let (prefix, sealed) = match compressed {
        Some(bytes) => (COMPRESSED_PREFIX, seal_with(cipher, &compressed_aad(field), &bytes)?),
        None => (SEALED_PREFIX, seal_with(cipher, field.as_bytes(), text.as_bytes())?),
    };
    Ok(format!("{prefix}{}", STANDARD_NO_PAD.encode(sealed)))
}

/// The text [`seal_text`] sealed for `field`.
fn open_text(cipher: &XChaCha20Poly1305, field: &str, sealed: &str) -> Result<String, SealError> {
    let decode = |encoded: &str| STANDARD_NO_PAD.decode(encoded).map_err(|_| SealError::WrongKey);
    let text = if let Some(encoded) = sealed.strip_prefix(SEALED_PREFIX) {
        open_with(cipher, field.as_bytes(), &decode(encoded)?)?
    } else if let Some(encoded) = sealed.strip_prefix(COMPRESSED_PREFIX) {
        decompress(&open_with(cipher, &compressed_aad(field), &decode(encoded)?)?)?
    } else {
        return Err(SealError::WrongKey);
    };
    String::from_utf8(text).map_err(|_| SealError::WrongKey)
}

/// What a compressed text is sealed for: its field, marked.
fn compressed_aad(field: &str) -> Vec<u8> {
    [field.as_bytes(), b"\0deflate"].concat()
}

thread_local! {
    /// libdeflate's states, one per thread: allocating one costs more than a text of a few KB.
    /// Level 1, the fastest that compresses (level 1 is valid: the default is never taken).
    static COMPRESSOR: RefCell<Compressor> =
        RefCell::new(Compressor::new(CompressionLvl::new(1).unwrap_or_default()));
    static DECOMPRESSOR: RefCell<Decompressor> = RefCell::new(Decompressor::new());
}

/// The most an opened text may grow to: larger than any text this server seals.
const MAX_DECOMPRESSED_BYTES: usize = 1 << 30;

/// `bytes` as raw DEFLATE at level 1, in one call; `None` if that fails.
fn compress(bytes: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|compressor| {
        let mut out = vec![0; compressor.deflate_compress_bound(bytes.len())];
        let written = compressor.deflate_compress(bytes, &mut out).ok()?;
        out.truncate(written);
        Some(out)
    })
}

/// Bytes [`compress`] compressed; they were sealed, so they are this process's own. In one call
/// into a buffer of four times their length (JSON compresses about threefold), doubled while
/// it is too short.
fn decompress(bytes: &[u8]) -> Result<Vec<u8>, SealError> {
    DECOMPRESSOR.with_borrow_mut(|decompressor| {
        let mut out = vec![0; bytes.len().saturating_mul(4).max(1024)];
        loop {
            match decompressor.deflate_decompress(bytes, &mut out) {
                Ok(written) => {
                    out.truncate(written);
                    return Ok(out);
                }
                Err(DecompressionError::InsufficientSpace)
                    if out.len() < MAX_DECOMPRESSED_BYTES =>
                {
                    out.resize(out.len() * 2, 0);
                }
                Err(_) => return Err(SealError::Compression),
            }
        }
    })
}

fn application_context(application: Uuid) -> String {
    format!("application key\0{application}")
}

impl KeyEncryptionKey {
    /// A new key for `application`, and it sealed for the `applications` row.
    pub fn new_application_key(
        &self, application: Uuid,
    ) -> Result<(ApplicationKey, Vec<u8>), SealError> {
        let key = random_key()?;
        let sealed = self.seal_for(&application_context(application), &key)?;
        Ok((ApplicationKey::from_bytes(application, key), sealed))
    }

    /// `key` sealed under this KEK, for the `applications` row: another KEK's key moved to
    /// this one.
    pub fn seal_application_key(
        &self, application: Uuid, key: &ApplicationKey,
    ) -> Result<Vec<u8>, SealError> {
        self.seal_for(&application_context(application), &key.bytes)
    }

    /// The key of `application` that [`Self::new_application_key`] sealed.
    pub fn open_application_key(
        &self, application: Uuid, sealed: &[u8],
    ) -> Result<ApplicationKey, SealError> {
        let key = self.open_for(&application_context(application), sealed)?;
        let key: [u8; KEY_BYTES] = key.try_into().map_err(|_| SealError::WrongKey)?;
        Ok(ApplicationKey::from_bytes(application, key))
    }

    /// The blind index of a name's words (normalised by the caller): a keyed hash of each,
    /// 16 hex digits. Equal words hash equally on every server given the KEK; a copy of the
    /// database alone cannot test guesses against them.
    pub fn word_hashes<'a>(&self, words: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        words
            .into_iter()
            .map(|word| {
                let mut hash = self.fingerprint("name word", word.as_bytes());
                hash.truncate(16);
                hash
            })
            .collect()
    }
}

/// An application's key: it wraps the data keys of the application's sessions.
pub struct ApplicationKey {
    cipher: XChaCha20Poly1305,
    bytes: [u8; KEY_BYTES],
    application: Uuid,
}

impl std::fmt::Debug for ApplicationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationKey").field("application", &self.application).finish()
    }
}

impl ApplicationKey {
    fn from_bytes(application: Uuid, key: [u8; KEY_BYTES]) -> Self {
        Self { cipher: XChaCha20Poly1305::new(&Key::from(key)), bytes: key, application }
    }

    fn wrap_context(&self) -> Vec<u8> {
        format!("handoff session data key\0{}", self.application).into_bytes()
    }

    /// A new data key, and it wrapped by this key.
    pub fn new_data_key(&self) -> Result<(DataKey, Vec<u8>), SealError> {
        let key = DataKey { bytes: random_key()? };
        let wrapped = self.wrap(&key)?;
        Ok((key, wrapped))
    }

    /// `key` wrapped by this application's key: for a session of this application.
    pub fn wrap(&self, key: &DataKey) -> Result<Vec<u8>, SealError> {
        seal_with(&self.cipher, &self.wrap_context(), &key.bytes)
    }

    /// `text` of the application's own (not a session's: a recorded answer, a rendered
    /// webhook payload) sealed for `field`, as [`DataKey::seal`] seals.
    pub fn seal(&self, field: &str, text: &str) -> Result<String, SealError> {
        seal_text(&self.cipher, &format!("application\0{field}"), text)
    }

    /// The text [`Self::seal`] sealed for `field`.
    pub fn open(&self, field: &str, sealed: &str) -> Result<String, SealError> {
        open_text(&self.cipher, &format!("application\0{field}"), sealed)
    }

    /// The data key [`Self::wrap`] wrapped.
    pub fn unwrap(&self, wrapped: &[u8]) -> Result<DataKey, SealError> {
        let bytes = open_with(&self.cipher, &self.wrap_context(), wrapped)?;
        let bytes: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| SealError::WrongKey)?;
        Ok(DataKey { bytes })
    }
}

/// A session's data key. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct DataKey {
    bytes: [u8; KEY_BYTES],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey")
    }
}

impl DataKey {
    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(self.bytes))
    }

    /// `text` sealed for `field` (what it is: a block's name, a column's), as text: `s1:` and
    /// the base64 of a fresh nonce and the ciphertext (`s2:` when compressed first, from
    /// [`COMPRESS_FROM_BYTES`]). It opens only for the same field.
    pub fn seal(&self, field: &str, text: &str) -> Result<String, SealError> {
        seal_text(&self.cipher(), field, text)
    }

    /// The text [`Self::seal`] sealed for `field`.
    pub fn open(&self, field: &str, sealed: &str) -> Result<String, SealError> {
        open_text(&self.cipher(), field, sealed)
    }
}

/// Whether a stored text is sealed ([`DataKey::seal`]) rather than kept in clear.
pub fn is_sealed(text: &str) -> bool {
    SEALED_PREFIXES.iter().any(|prefix| text.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> KeyEncryptionKey {
        KeyEncryptionKey::from_secret(b"an operator's key-encryption key, 32+ bytes").unwrap()
    }

    #[test]
    fn data_sealed_under_a_session_key_opens_through_its_application_key_only() {
        let kek = kek();
        let a = Uuid::new_v4();
        let (app, sealed_app) = kek.new_application_key(a).unwrap();
        let (key, wrapped) = app.new_data_key().unwrap();
        let sealed = key.seal("id_verifications", r#"{"full_name":"Ana"}"#).unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("Ana"));
        let reopened = kek.open_application_key(a, &sealed_app).unwrap();
        let key = reopened.unwrap(&wrapped).unwrap();
        assert_eq!(key.open("id_verifications", &sealed).unwrap(), r#"{"full_name":"Ana"}"#);
        // Another field, another application's key, another KEK: nothing opens.
        assert_eq!(key.open("aml_screenings", &sealed), Err(SealError::WrongKey));
        let (other, _) = kek.new_application_key(a).unwrap();
        assert!(other.unwrap(&wrapped).is_err());
        assert!(kek.open_application_key(Uuid::new_v4(), &sealed_app).is_err());
        let other_kek =
            KeyEncryptionKey::from_secret(b"another key-encryption key, 32+ bytes").unwrap();
        assert!(other_kek.open_application_key(a, &sealed_app).is_err());
    }

    #[test]
    fn an_application_s_own_text_opens_with_its_key_for_its_field() {
        let kek = kek();
        let (app, _) = kek.new_application_key(Uuid::new_v4()).unwrap();
        let (other, _) = kek.new_application_key(Uuid::new_v4()).unwrap();
        let sealed = app.seal("response_body", r#"{"full_name":"Ana"}"#).unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("Ana"));
        assert_eq!(app.open("response_body", &sealed).unwrap(), r#"{"full_name":"Ana"}"#);
        assert!(app.open("payload", &sealed).is_err());
        assert!(other.open("response_body", &sealed).is_err());
    }

    #[test]
    fn a_data_key_rewrapped_for_another_application_opens_the_same_ciphertext() {
        let kek = kek();
        let (source, _) = kek.new_application_key(Uuid::new_v4()).unwrap();
        let (receiver, _) = kek.new_application_key(Uuid::new_v4()).unwrap();
        let (key, _) = source.new_data_key().unwrap();
        let sealed = key.seal("metadata", "{}").unwrap();
        let for_receiver = receiver.wrap(&key).unwrap();
        assert!(source.unwrap(&for_receiver).is_err(), "bound to the wrapping application");
        assert_eq!(
            receiver.unwrap(&for_receiver).unwrap().open("metadata", &sealed).unwrap(),
            "{}"
        );
    }

    #[test]
    fn a_long_text_is_compressed_before_it_is_sealed_and_opens_as_it_was() {
        let kek = kek();
        let (app, _) = kek.new_application_key(Uuid::new_v4()).unwrap();
        let (key, _) = app.new_data_key().unwrap();
        let hits: Vec<String> =
            (0..40).map(|i| format!(r#"{{"name":"Ana {i}","score":0.{i}}}"#)).collect();
        let long = format!(r#"{{"hits":[{}]}}"#, hits.join(","));
        assert!(long.len() >= COMPRESS_FROM_BYTES);
        let sealed = key.seal("aml_screenings", &long).unwrap();
        assert!(sealed.starts_with(COMPRESSED_PREFIX) && is_sealed(&sealed), "{sealed}");
        assert!(sealed.len() < long.len() / 2, "{} of {}", sealed.len(), long.len());
        assert_eq!(key.open("aml_screenings", &sealed).unwrap(), long);
        assert_eq!(key.open("id_verifications", &sealed), Err(SealError::WrongKey));
        // Marked as compressed in what it is sealed for: as the other form, it opens nothing.
        let relabelled = sealed.replacen(COMPRESSED_PREFIX, SEALED_PREFIX, 1);
        assert_eq!(key.open("aml_screenings", &relabelled), Err(SealError::WrongKey));
        // A short text, or one that does not compress, is sealed as it is.
        assert!(key.seal("aml_screenings", r#"{"hits":[]}"#).unwrap().starts_with(SEALED_PREFIX));
        let noise: String = (0..COMPRESS_FROM_BYTES * 2)
            .map(|i| char::from(b'!' + (i.wrapping_mul(7919) % 9973 % 90) as u8))
            .collect();
        let sealed = app.seal("response_body", &noise).unwrap();
        assert_eq!(app.open("response_body", &sealed).unwrap(), noise);
    }

    #[test]
    fn texts_compressed_by_the_earlier_encoders_rows_hold_still_open() {
        let text =
            r#"{"hits":[{"name":"Ana 1"},{"name":"Ana 2"},{"name":"Ana 3"},{"name":"Ana 4"}]}"#;
        // Raw DEFLATE of `text` as miniz_oxide at level 1 wrote it, alone or in flate2's
        // `DeflateEncoder` (fast): the same bytes.
        let streamed: [u8; 51] = [
            93, 200, 169, 13, 0, 32, 12, 5, 208, 85, 200, 215, 24, 14, 133, 99, 14, 130, 168, 32,
            1, 65, 13, 184, 166, 187, 163, 169, 125, 130, 185, 238, 65, 105, 2, 166, 61, 80, 80,
            153, 92, 128, 250, 15, 162, 133, 100, 33, 67, 187, 62,
        ];
        assert_eq!(decompress(&streamed).unwrap(), text.as_bytes());
        assert_eq!(decompress(&compress(text.as_bytes()).unwrap()).unwrap(), text.as_bytes());
        assert_eq!(decompress(&streamed[..20]), Err(SealError::Compression));
    }

    #[test]
    fn a_text_that_compresses_far_more_than_json_opens_whole() {
        let text = r#"{"name":"Ana"},"#.repeat(20_000);
        let compressed = compress(text.as_bytes()).unwrap();
        assert!(compressed.len() * 64 < text.len(), "{} of {}", compressed.len(), text.len());
        assert_eq!(decompress(&compressed).unwrap(), text.as_bytes());
    }

    #[test]
    fn word_hashes_are_keyed_and_short() {
        let kek = kek();
        let hashes = kek.word_hashes(["ana", "garcía", "ana"]);
        assert_eq!(hashes.len(), 3);
        assert!(hashes.iter().all(|w| w.len() == 16 && w.chars().all(|c| c.is_ascii_hexdigit())));
        assert_eq!(hashes[0], hashes[2]);
        assert_ne!(hashes[0], hashes[1]);
        let other =
            KeyEncryptionKey::from_secret(b"another key-encryption key, 32+ bytes").unwrap();
        assert_ne!(other.word_hashes(["ana"]), kek.word_hashes(["ana"]));
    }
}
