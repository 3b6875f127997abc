//! Sharing across deployments over the network: partners' published keys (fetched when a
//! partner is added, again when a token or proof names a key not known yet, at most every
//! [`KEY_REFRESH_INTERVAL`]), and the exchange with an issuing partner, authenticated by a
//! proof this deployment signs. Partners are reached by the webhook worker's client: their
//! addresses checked where the connection is made, no redirect followed, answers capped.
//! The protocol and its threat model: `docs/federation.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use handoff_domain::address::AddressPolicy;
use handoff_domain::federation::{ExchangeError, Partner, PartnerSession, Redemption};
use handoff_domain::ports::{PartnerDirectory, PartnerRepository};
use handoff_domain::share::ImportCheck;
use handoff_domain::{ShareClaims, ShareToken, TokenError};
use handoff_http::federation::{
    MAX_ANSWER_BYTES, REDEMPTIONS_PATH, RedemptionAnswer, RedemptionRequest, gunzip,
};
use handoff_store::Store;
use handoff_token::{
    JwtShareTokens, PROOF_LIFETIME_SECONDS, jwks_names, unverified_issuer, verify_partner_token,
    verify_proof,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The shortest time between two fetches of one partner's keys.
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// How long a partner read from the database is used before it is read again: an operator's
/// change reaches running servers within this.
pub const PARTNER_CACHE: Duration = Duration::from_secs(1);
/// How long a partner may take to answer.
pub const PARTNER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest key set read, in bytes.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Why a partner's keys could not be fetched.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(String);

/// A client that reaches partners under `allow_private` (`HANDOFF_FEDERATION_ALLOW_PRIVATE`).
pub fn partner_client(allow_private: bool) -> Result<(reqwest::Client, AddressPolicy), String> {
    let policy =
        if allow_private { AddressPolicy::AllowPrivate } else { AddressPolicy::PublicOnly };
    let client = handoff_webhooks::client::client(policy, PARTNER_TIMEOUT, "handoff-federation")
        .map_err(|e| format!("the federation client: {e}"))?;
    Ok((client, policy))
}

/// The body of an answer, at most `limit` bytes of it.
async fn capped_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > limit {
            return Err(format!("the answer is larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A request to `url`, refused before sending when it names a refused IP address.
fn checked_url(url: &str, policy: AddressPolicy) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    handoff_webhooks::client::check_literal(&url, policy)
        .map_err(|_| format!("{url} is an address partners may not be reached at"))?;
    Ok(url)
}

/// A partner's published key set, from `<url>/.well-known/jwks.json`.
pub async fn fetch_keys(
    client: &reqwest::Client, policy: AddressPolicy, url: &str,
) -> Result<Value, FetchError> {
    let jwks_url =
        checked_url(&format!("{url}/.well-known/jwks.json"), policy).map_err(FetchError)?;
    let response = client
        .get(jwks_url)
        .send()
        .await
        .map_err(|e| FetchError(format!("{url} cannot be reached: {e}")))?;
    if !response.status().is_success() {
        return Err(FetchError(format!("{url} answered {} for its keys", response.status())));
    }
    let body = capped_body(response, MAX_JWKS_BYTES).await.map_err(FetchError)?;
    let keys: Value = serde_json::from_slice(&body)
        .map_err(|_| FetchError(format!("{url} published no JSON key set")))?;
    let public: Vec<Value> = keys
        .get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter(|key| key.get("kty").and_then(Value::as_str) == Some("OKP"))
                .map(|key| {
                    // Public members only, whatever else was published.
                    let field = |name: &str| key.get(name).cloned().unwrap_or(Value::Null);
                    json!({"kty": "OKP", "crv": field("crv"), "x": field("x"), "kid": field("kid")})
                })
                .collect()
        })
        .unwrap_or_default();
    if public.is_empty() {
        return Err(FetchError(format!(
            "{url} publishes no Ed25519 key: it must sign with HANDOFF_TOKEN_ALG=EdDSA"
        )));
    }
    Ok(json!({ "keys": public }))
}

/// The partners as seen over the network.
pub struct Directory {
    partners: Arc<dyn PartnerRepository>,
    tokens: Arc<JwtShareTokens>,
    /// This deployment's URL: the `iss` of its proofs, the `aud` of those it accepts.
    own_url: String,
    client: reqwest::Client,
    policy: AddressPolicy,
    fetched: Mutex<HashMap<String, Instant>>,
    /// Partners by URL, with when they were read (`None`: no partner there).
    read: Mutex<HashMap<String, (Instant, Option<Partner>)>>,
}

impl Directory {
    /// The directory of `store`'s partners, for the deployment at `own_url` signing with
    /// `tokens`' keys.
    pub fn new(
        store: &Store, tokens: Arc<JwtShareTokens>, own_url: String, allow_private: bool,
    ) -> Result<Self, String> {
        let (client, policy) = partner_client(allow_private)?;
        Ok(Self {
            partners: Arc::new(store.clone()),
            tokens,
            own_url,
            client,
            policy,
            fetched: Mutex::new(HashMap::new()),
            read: Mutex::new(HashMap::new()),
        })
    }

    /// The partner at `url`, read from the database at most every [`PARTNER_CACHE`].
    async fn partner_at(&self, url: &str) -> Option<Partner> {
        let now = Instant::now();
        {
            let read = self.read.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, partner)) = read.get(url)
                && now.duration_since(*at) < PARTNER_CACHE
            {
                return partner.clone();
            }
        }
        let partner = self.partners.partner_at(url).await.ok()?;
        let mut read = self.read.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded: the URLs named by tokens and proofs that are not partners' are dropped.
        read.retain(|_, (at, partner)| {
            partner.is_some() && now.duration_since(*at) < PARTNER_CACHE
        });
        read.insert(url.to_owned(), (now, partner.clone()));
        partner
    }

    /// The partner at `url` with keys that name the key `signed` names: fetched again when
    /// they do not, unless they were fetched within [`KEY_REFRESH_INTERVAL`].
    async fn partner_for(&self, url: &str, signed: &str) -> Option<Partner> {
        let mut partner = self.partner_at(url).await?;
        if jwks_names(&partner.keys, signed) {
            return Some(partner);
        }
        {
            let mut fetched =
                self.fetched.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            if fetched.get(url).is_some_and(|at| now.duration_since(*at) < KEY_REFRESH_INTERVAL) {
                return Some(partner);
            }
            fetched.insert(url.to_owned(), now);
        }
        match fetch_keys(&self.client, self.policy, url).await {
            Ok(keys) => {
                let at = Utc::now();
                if let Err(error) = self.partners.replace_partner_keys(url, &keys, at).await {
                    tracing::warn!(partner = %partner.name, %error, "partner keys not stored");
                }
                partner.keys = keys;
                partner.keys_fetched_at = at;
                let mut read = self.read.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                read.insert(url.to_owned(), (Instant::now(), Some(partner.clone())));
            }
            Err(error) => {
                tracing::warn!(partner = %partner.name, %error, "partner keys not fetched")
            }
        }
        Some(partner)
    }
}

/// The hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The check an issuer's error code answers, as the contract's table names them.
fn refused_check(code: &str) -> Option<ImportCheck> {
    Some(match code {
        "share_token_invalid" => ImportCheck::TokenIssuedHere,
        "share_token_expired" => ImportCheck::TokenNotExpired,
        "share_token_revoked" => ImportCheck::TokenNotRevoked,
        "share_token_wrong_application" => ImportCheck::AddressedToCaller,
        "source_session_not_found" => ImportCheck::SourceExists,
        "already_imported" => ImportCheck::NotImported,
        "source_too_old" => ImportCheck::SourceRecentEnough,
        _ => return None,
    })
}

#[async_trait]
impl PartnerDirectory for Directory {
    async fn verify(
        &self, issuer: &str, token: &ShareToken,
    ) -> Result<(Partner, ShareClaims), TokenError> {
        let partner = self.partner_for(issuer, token.expose()).await.ok_or(TokenError::Invalid)?;
        let claims = verify_partner_token(token.expose(), &partner.keys, &partner.url)?;
        Ok((partner, claims))
    }

    async fn redeem(
        &self, partner: &Partner, redemption: &Redemption,
    ) -> Result<PartnerSession, ExchangeError> {
        let unavailable =
            |why: String| ExchangeError::Unavailable(format!("{}: {why}", partner.name));
        let body = serde_json::to_vec(&RedemptionRequest {
            share_token: redemption.share_token.expose().to_owned(),
            application_id: redemption.application_id.as_uuid(),
            redeem: redemption.redeem,
            source_created_after: redemption.source_created_after,
        })
        .map_err(|e| unavailable(e.to_string()))?;
        let now = Utc::now().timestamp();
        let proof = self
            .tokens
            .sign_proof(&json!({
                "iss": self.own_url,
                "aud": partner.url,
                "iat": now,
                "exp": now + PROOF_LIFETIME_SECONDS,
                "body_sha256": sha256_hex(&body),
            }))
            .map_err(|e| unavailable(e.to_string()))?;
        let url = checked_url(&format!("{}{REDEMPTIONS_PATH}", partner.url), self.policy)
            .map_err(unavailable)?;
        let response = self
            .client
            .post(url)
            .bearer_auth(proof)
            .header("Content-Type", "application/json")
            .header("Accept-Encoding", "gzip")
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable(format!("cannot be reached: {e}")))?;
        let status = response.status();
        let gzipped = response
            .headers()
            .get("Content-Encoding")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let body = capped_body(response, MAX_ANSWER_BYTES).await.map_err(unavailable)?;
        if !status.is_success() {
            let code = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|error| error.get("code").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            return Err(match refused_check(&code) {
                Some(check) => ExchangeError::Refused(check),
                None => unavailable(format!("answered {status} {code}")),
            });
        }
        let body =
            if gzipped { gunzip(&body).map_err(|e| unavailable(e.to_string()))? } else { body };
        let answer: RedemptionAnswer = serde_json::from_slice(&body)
            .map_err(|e| unavailable(format!("answered out of protocol: {e}")))?;
        answer.session.into_domain().map_err(|e| unavailable(format!("handed over {e}")))
    }

    async fn authenticate(&self, proof: &str, body: &[u8]) -> Option<Partner> {
        let issuer = unverified_issuer(proof)?;
        let partner = self.partner_for(&issuer, proof).await?;
        let claims = verify_proof(proof, &partner.keys).ok()?;
        let says = |name: &str| claims.get(name).and_then(Value::as_str);
        let expected_hash = sha256_hex(body);
        let addressed = says("aud").map(|aud| aud.trim_end_matches('/')) == Some(&self.own_url);
        let bound = says("body_sha256").is_some_and(|hash| {
            subtle::ConstantTimeEq::ct_eq(hash.as_bytes(), expected_hash.as_bytes()).into()
        });
        (addressed && bound).then_some(partner)
    }
}
