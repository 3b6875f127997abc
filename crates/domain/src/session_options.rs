//! How a created session is to be presented to the person verifying: Didit's `callback_method`,
//! `language` and `portrait_image`. Kept with the session and shown in its decision; an import
//! does not copy them, as it does not copy the callback.

use serde::{Deserialize, Serialize};

/// The languages Didit's verification pages offer (`language`).
pub const LANGUAGES: [&str; 54] = [
    "en", "ar", "bg", "bn", "bs", "ca", "cnr", "cs", "da", "de", "el", "es", "et", "fa", "fi",
    "fr", "he", "hi", "hr", "hu", "hy", "id", "it", "ja", "ka", "kk", "ko", "ky", "lt", "lv", "mk",
    "mn", "ms", "nl", "no", "pl", "pt-BR", "pt", "ro", "ru", "sk", "sl", "so", "sq", "sr", "sv",
    "th", "tr", "uk", "uz", "vi", "zh-CN", "zh-TW", "zh",
];

/// The largest decoded `portrait_image`, in bytes.
pub const PORTRAIT_IMAGE_MAX_BYTES: usize = 1024 * 1024;

/// Which device the callback applies to when the verification moves between devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallbackMethod {
    /// The device that opened the session.
    Initiator,
    /// The device that finished it.
    Completer,
    /// Both.
    Both,
}

impl CallbackMethod {
    /// Parses Didit's lowercase name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "initiator" => Some(Self::Initiator),
            "completer" => Some(Self::Completer),
            "both" => Some(Self::Both),
            _ => None,
        }
    }

    /// Didit's lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initiator => "initiator",
            Self::Completer => "completer",
            Self::Both => "both",
        }
    }
}

/// The presentation options of a session; all absent by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_method: Option<CallbackMethod>,
    /// One of [`LANGUAGES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// A reference portrait, base64, at most [`PORTRAIT_IMAGE_MAX_BYTES`] decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portrait_image: Option<String>,
}

impl SessionOptions {
    /// Whether no option is set (stored as NULL).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
