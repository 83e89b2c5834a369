//! Stripe's webhook signature: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`,
//! HMAC-SHA256 keyed with the endpoint's secret over `{t}.{raw body}`. Checked on the raw
//! bytes before anything parses them, so an unsigned body never reaches the JSON parser.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far the signed timestamp may be from now, either way (Stripe's default).
pub const TOLERANCE_SECS: i64 = 300;

/// Why a webhook's signature is refused. All of them answer 400 `invalid_signature`;
/// the variant is for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("the signed timestamp is more than {TOLERANCE_SECS} s away from now")]
    Stale,
    #[error("no v1 signature matches")]
    Mismatch,
}

/// The parts of a `Stripe-Signature` header that matter.
struct SignatureHeader<'a> {
    timestamp: i64,
    timestamp_text: &'a str,
    /// Every `v1` signature, decoded; one of them must match.
    signatures: Vec<Vec<u8>>,
}

fn parse(header: &str) -> Result<SignatureHeader<'_>, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let (key, value) = item
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed);
                }
                let parsed: i64 = value.parse().map_err(|_| SignatureError::Malformed)?;
                timestamp = Some((parsed, value));
            }
            // A v1 that is not hex cannot match; other schemes (v0) are ignored, as Stripe does.
            "v1" => {
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let (timestamp, timestamp_text) = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    Ok(SignatureHeader {
        timestamp,
        timestamp_text,
        signatures,
    })
}

/// HMAC-SHA256 of `{t}.{body}` with `secret`, as Stripe computes it.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// A `Stripe-Signature` header value for `body` signed at `timestamp` (for tests and tools
/// that post events the way Stripe does).
pub fn header_for(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    format!("t={t},v1={}", hex::encode(sign(secret, &t, body)))
}

/// Checks `header` against `body` at `now` (unix seconds): any `v1` may match, compared in
/// constant time, and the timestamp must be within [`TOLERANCE_SECS`] of `now`.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secret: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let header = parse(header.ok_or(SignatureError::Missing)?)?;
    if now.abs_diff(header.timestamp) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let expected = sign(secret, header.timestamp_text, body);
    let mut matched = subtle::Choice::from(0);
    for candidate in &header.signatures {
        // `ct_eq` on slices of different lengths is false without looking at the bytes.
        matched |= expected.as_slice().ct_eq(candidate.as_slice());
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
    const NOW: i64 = 1_780_000_000;

    #[test]
    fn a_fresh_signature_of_the_body_verifies() {
        let header = header_for(SECRET, NOW, BODY);
        assert_eq!(verify(Some(&header), BODY, SECRET, NOW), Ok(()));
        assert_eq!(verify(Some(&header), BODY, SECRET, NOW + 300), Ok(()));
        assert_eq!(verify(Some(&header), BODY, SECRET, NOW - 300), Ok(()));
    }

    #[test]
    fn a_known_vector_matches() {
        // Computed independently (Python's hmac): HMAC-SHA256(secret, "1780000000.{BODY}").
        let expected = "ec91baef515b76d132cffcff38a05932c6e1f9facad958f0166227c62878b2b1";
        assert_eq!(hex::encode(sign(SECRET, "1780000000", BODY)), expected);
        let header = format!("t=1780000000,v1={expected}");
        assert_eq!(verify(Some(&header), BODY, SECRET, NOW), Ok(()));
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let old = header_for(SECRET, NOW - 301, BODY);
        assert_eq!(
            verify(Some(&old), BODY, SECRET, NOW),
            Err(SignatureError::Stale)
        );
        let future = header_for(SECRET, NOW + 301, BODY);
        assert_eq!(
            verify(Some(&future), BODY, SECRET, NOW),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn a_wrong_secret_or_a_changed_body_does_not_match() {
        let header = header_for(b"whsec_other", NOW, BODY);
        assert_eq!(
            verify(Some(&header), BODY, SECRET, NOW),
            Err(SignatureError::Mismatch)
        );
        let header = header_for(SECRET, NOW, BODY);
        let changed = br#"{"id":"evt_1","type":"payment_intent.succeeded" }"#;
        assert_eq!(
            verify(Some(&header), changed, SECRET, NOW),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed too: moving it breaks the signature.
        let sig = hex::encode(sign(SECRET, &NOW.to_string(), BODY));
        let moved = format!("t={},v1={sig}", NOW + 1);
        assert_eq!(
            verify(Some(&moved), BODY, SECRET, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_of_several_v1_signatures_may_match() {
        let good = hex::encode(sign(SECRET, &NOW.to_string(), BODY));
        let bad = hex::encode(sign(b"whsec_rolled", &NOW.to_string(), BODY));
        for header in [
            format!("t={NOW},v1={bad},v1={good}"),
            format!("t={NOW},v1={good},v1={bad}"),
            format!("t={NOW}, v0=abc, v1={bad}, v1={good}"),
        ] {
            assert_eq!(verify(Some(&header), BODY, SECRET, NOW), Ok(()), "{header}");
        }
        let only_bad = format!("t={NOW},v1={bad},v1={bad}");
        assert_eq!(
            verify(Some(&only_bad), BODY, SECRET, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let good = hex::encode(sign(SECRET, &NOW.to_string(), BODY));
        assert_eq!(
            verify(None, BODY, SECRET, NOW),
            Err(SignatureError::Missing)
        );
        for header in [
            String::new(),
            "garbage".to_string(),
            format!("v1={good}"),
            format!("t={NOW}"),
            format!("t=soon,v1={good}"),
            format!("t={NOW},t={NOW},v1={good}"),
            format!("t={NOW},v0={good}"),
            format!("t={NOW};v1={good}"),
        ] {
            assert!(
                verify(Some(&header), BODY, SECRET, NOW).is_err(),
                "{header:?} is refused"
            );
        }
        // A v1 that is not hex, or truncated, never matches.
        for header in [
            format!("t={NOW},v1=zz{}", &good[2..]),
            format!("t={NOW},v1={}", &good[..62]),
        ] {
            assert!(
                verify(Some(&header), BODY, SECRET, NOW).is_err(),
                "{header}"
            );
        }
    }
}
