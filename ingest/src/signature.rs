//! Authenticity checks: HMAC-SHA256 signatures of the exact raw body (GitHub's
//! `X-Hub-Signature-256`, Flux's `X-Signature`, PagerDuty's `X-PagerDuty-Signature`) and shared
//! tokens (GitLab's `X-Gitlab-Token`, `Authorization: Bearer` for Argo CD and CDEvents), each
//! compared in constant time against every configured secret so that secrets can be rotated.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No secret is configured for the source.
    #[error("no secret is configured for this source, so no delivery can be verified")]
    NotConfigured,
    /// The header is absent.
    #[error("the {0} header is missing")]
    Missing(&'static str),
    /// The header is not in the expected form.
    #[error("the {0} header is malformed")]
    Malformed(&'static str),
    /// No configured secret produced the given signature.
    #[error("the signature does not match any configured secret")]
    Mismatch,
}

fn hmac_sha256(secret: &[u8], body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Hex HMAC-SHA256 of `body` under `secret`: what senders put in their signature headers.
pub fn sign_hex(secret: &[u8], body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret, body))
}

fn any_secret_matches(secrets: &[String], body: &[u8], given: &[u8; 32]) -> bool {
    // Check every secret without stopping early, so timing does not tell which one matched.
    secrets.iter().fold(false, |found, secret| {
        let expected = hmac_sha256(secret.as_bytes(), body);
        found | doraflow_http::secrets_equal(given, &expected)
    })
}

fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut out).ok()?;
    Some(out)
}

/// Verifies GitHub's `X-Hub-Signature-256: sha256=<hex>`.
pub fn verify_github(
    secrets: &[String],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    verify_sha256_header(secrets, header, "X-Hub-Signature-256", body)
}

/// Verifies Flux's `generic-hmac` `X-Signature: sha256=<hex>`.
pub fn verify_flux(
    secrets: &[String],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    verify_sha256_header(secrets, header, "X-Signature", body)
}

/// Verifies a shared token (GitLab's `X-Gitlab-Token`, a bearer token) against every configured
/// one. Both sides are hashed first, so the comparison takes the same time whatever the lengths.
pub fn verify_token(
    tokens: &[String],
    given: Option<&str>,
    name: &'static str,
) -> Result<(), SignatureError> {
    use sha2::Digest;
    if tokens.is_empty() {
        return Err(SignatureError::NotConfigured);
    }
    let given = given
        .filter(|g| !g.is_empty())
        .ok_or(SignatureError::Missing(name))?;
    let given_hash = Sha256::digest(given.as_bytes());
    let matched = tokens.iter().fold(false, |found, token| {
        let expected = Sha256::digest(token.as_bytes());
        found | doraflow_http::secrets_equal(&given_hash, &expected)
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Verifies a `sha256=<hex>` header.
fn verify_sha256_header(
    secrets: &[String],
    header: Option<&str>,
    name: &'static str,
    body: &[u8],
) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NotConfigured);
    }
    let header = header.ok_or(SignatureError::Missing(name))?;
    let hex = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed(name))?;
    let given = decode_hex32(hex).ok_or(SignatureError::Malformed(name))?;
    if any_secret_matches(secrets, body, &given) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Verifies PagerDuty's `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`: at least one `v1`
/// value must match one configured secret. Other versions are skipped.
pub fn verify_pagerduty(
    secrets: &[String],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    const NAME: &str = "X-PagerDuty-Signature";
    if secrets.is_empty() {
        return Err(SignatureError::NotConfigured);
    }
    let header = header.ok_or(SignatureError::Missing(NAME))?;
    let mut candidates = Vec::new();
    for part in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(hex) = part.strip_prefix("v1=") {
            candidates.push(decode_hex32(hex).ok_or(SignatureError::Malformed(NAME))?);
        }
    }
    if candidates.is_empty() {
        return Err(SignatureError::Malformed(NAME));
    }
    let matched = candidates.iter().fold(false, |found, given| {
        found | any_secret_matches(secrets, body, given)
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of GitHub's "Validating webhook deliveries" documentation.
    #[test]
    fn github_documentation_vector_verifies() {
        let secrets = vec!["It's a Secret to Everybody".to_string()];
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            verify_github(&secrets, Some(header), b"Hello, World!"),
            Ok(())
        );
        assert_eq!(
            verify_github(&secrets, Some(header), b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tokens_match_any_configured_one_and_nothing_else() {
        let tokens = vec!["new-token".to_string(), "old-token".to_string()];
        assert_eq!(
            verify_token(&tokens, Some("old-token"), "X-Gitlab-Token"),
            Ok(())
        );
        assert_eq!(
            verify_token(&tokens, Some("old-token "), "X-Gitlab-Token"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_token(&tokens, Some("new"), "X-Gitlab-Token"),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_token(&tokens, None, "X-Gitlab-Token"),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            verify_token(&tokens, Some(""), "X-Gitlab-Token"),
            Err(SignatureError::Missing(_))
        ));
        assert_eq!(
            verify_token(&[], Some("x"), "X-Gitlab-Token"),
            Err(SignatureError::NotConfigured)
        );
    }

    #[test]
    fn flux_signatures_use_the_x_signature_header() {
        let body = b"{}";
        let header = format!("sha256={}", sign_hex(b"flux", body));
        assert_eq!(
            verify_flux(&["flux".to_string()], Some(&header), body),
            Ok(())
        );
        assert_eq!(
            verify_flux(&["other".to_string()], Some(&header), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_flux(&["flux".to_string()], None, body),
            Err(SignatureError::Missing("X-Signature"))
        );
    }

    #[test]
    fn github_rotation_accepts_any_configured_secret() {
        let body = b"{\"zen\":\"x\"}";
        let header = format!("sha256={}", sign_hex(b"old", body));
        let secrets = vec!["new".to_string(), "old".to_string()];
        assert_eq!(verify_github(&secrets, Some(&header), body), Ok(()));
        assert_eq!(
            verify_github(&["new".to_string()], Some(&header), body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn github_missing_and_malformed_headers_are_refused() {
        let secrets = vec!["s".to_string()];
        assert!(matches!(
            verify_github(&secrets, None, b"{}"),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            verify_github(&secrets, Some("sha1=abcd"), b"{}"),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify_github(&secrets, Some("sha256=zz"), b"{}"),
            Err(SignatureError::Malformed(_))
        ));
        assert_eq!(
            verify_github(&[], Some("sha256=00"), b"{}"),
            Err(SignatureError::NotConfigured)
        );
    }

    /// The vector of go-pagerduty's `webhookv3_test.go` (secret, body and signature upstream).
    #[test]
    fn pagerduty_go_pagerduty_vector_verifies() {
        let body = include_bytes!("../tests/fixtures/pagerduty/webhookv3_test.defaultBody.json");
        let secrets =
            vec!["lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK".to_string()];
        let valid = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd";
        let mismatch = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5";
        assert_eq!(verify_pagerduty(&secrets, Some(valid), body), Ok(()));
        assert_eq!(
            verify_pagerduty(&secrets, Some(mismatch), body),
            Err(SignatureError::Mismatch)
        );
        // Several signatures (PagerDuty's own rotation): one match is enough.
        let both = format!("{mismatch},{valid}");
        assert_eq!(verify_pagerduty(&secrets, Some(&both), body), Ok(()));
        assert!(matches!(
            verify_pagerduty(&secrets, Some(""), body),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify_pagerduty(&secrets, None, body),
            Err(SignatureError::Missing(_))
        ));
    }
}
