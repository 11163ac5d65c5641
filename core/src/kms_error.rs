//! What a KMS refusal means, and what the user should do about it.
//!
//! libmongocrypt reports a KMS's answer only as text: its error message carries the
//! KMS's own error name (AWS `AccessDeniedException`, Azure `Forbidden`, GCP
//! `PERMISSION_DENIED`, OAuth `invalid_client`, ...). This module is the one place that
//! reads that text; the native shell matches on [`KmsRefusal`]. A refusal here is
//! permanent: retrying cannot help, so a run stops at once and says what to fix.
//! Anything else (throttling, 5xx, resets) is transient and retried by the shell.

/// How the native shell marks a KMS endpoint whose TLS certificate did not verify, in
/// the text it hands libmongocrypt (which passes it back inside its own error).
pub const CERTIFICATE_MARK: &str = "the TLS certificate of KMS";

/// A permanent KMS refusal, by what must change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmsRefusal {
    /// The KMS's TLS certificate did not verify (expired, wrong host, unknown issuer).
    Certificate,
    /// The credentials were rejected (bad signature, unknown key id, expired token).
    Credentials,
    /// The key is disabled, pending deletion or missing.
    KeyState,
    /// The credentials lack a permission on the key.
    Permission,
}

const CREDENTIALS: &[&str] = &[
    "InvalidSignatureException",
    "UnrecognizedClientException",
    "IncompleteSignature",
    "ExpiredTokenException",
    "invalid_client",
    "unauthorized_client",
    "invalid_grant",
];
const KEY_STATE: &[&str] = &[
    "DisabledException",
    "KMSInvalidStateException",
    "NotFoundException",
    "KeyUnavailableException",
    "is disabled",
    "disabled key",
];
const PERMISSION: &[&str] = &["AccessDeniedException", "PERMISSION_DENIED", "Forbidden"];

/// Reads a KMS error as libmongocrypt reports it. `None`: not a known permanent
/// refusal (retry it, or report it as it is).
pub fn classify(error: &str) -> Option<KmsRefusal> {
    let any = |names: &[&str]| names.iter().any(|n| error.contains(n));
    if error.contains(CERTIFICATE_MARK) {
        Some(KmsRefusal::Certificate)
    } else if any(CREDENTIALS) {
        Some(KmsRefusal::Credentials)
    } else if any(KEY_STATE) {
        Some(KmsRefusal::KeyState)
    } else if any(PERMISSION) {
        Some(KmsRefusal::Permission)
    } else {
        None
    }
}

/// What a whole HTTP reply from a KMS means for its request, judged before
/// libmongocrypt reads it (the native shell frames the reply and asks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyVerdict {
    /// libmongocrypt's to read: a success, or an error it reports (a refusal above,
    /// or anything else it will describe).
    Final,
    /// Throttled (HTTP 429; AWS says `ThrottlingException` with HTTP 400): send it
    /// again, at a slower pace.
    Throttled,
    /// A server error (5xx): send it again.
    ServerError,
}

/// The verdict on a complete reply with HTTP `status` and `body`.
pub fn reply_verdict(status: u16, body: &[u8]) -> ReplyVerdict {
    const AWS_THROTTLING: &[u8] = b"ThrottlingException";
    if status == 429
        || (status == 400
            && body
                .windows(AWS_THROTTLING.len())
                .any(|w| w == AWS_THROTTLING))
    {
        ReplyVerdict::Throttled
    } else if (500..600).contains(&status) {
        ReplyVerdict::ServerError
    } else {
        ReplyVerdict::Final
    }
}

impl KmsRefusal {
    /// What to do, for a rewrap or rotate that met this refusal.
    pub fn hint(self) -> &'static str {
        match self {
            KmsRefusal::Certificate => {
                "Fix the TLS setup named above and check with `keyshift preflight`"
            }
            KmsRefusal::Credentials => {
                "The KMS rejected the credentials keyshift sent (the target's, or the \
                 source's in a KMS-to-KMS move): fix them in kmsProviders (or the \
                 environment they refer to) and check with `keyshift preflight`"
            }
            KmsRefusal::KeyState => {
                "The KMS key is disabled, pending deletion or missing (the target key, or \
                 the source key in a KMS-to-KMS move): enable it (or name another key) and \
                 check with `keyshift preflight`"
            }
            KmsRefusal::Permission => {
                "The credentials lack a permission on the KMS key: grant what \
                 `keyshift policy` prints and check with `keyshift preflight`"
            }
        }
    }
}

#[cfg(test)]
mod reply_tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_go_again_and_everything_else_is_final() {
        let aws = br#"{"__type": "ThrottlingException", "message": "Rate exceeded"}"#;
        assert_eq!(reply_verdict(400, aws), ReplyVerdict::Throttled);
        assert_eq!(reply_verdict(429, b"{}"), ReplyVerdict::Throttled);
        assert_eq!(reply_verdict(503, b""), ReplyVerdict::ServerError);
        assert_eq!(reply_verdict(500, b"{}"), ReplyVerdict::ServerError);
        let denied = br#"{"__type": "AccessDeniedException"}"#;
        assert_eq!(reply_verdict(400, denied), ReplyVerdict::Final);
        assert_eq!(reply_verdict(200, b"{}"), ReplyVerdict::Final);
        assert_eq!(reply_verdict(404, b""), ReplyVerdict::Final);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_providers_refusals_are_read_as_what_must_change() {
        let cases = [
            (
                "Error in KMS response. HTTP status=400. Error: InvalidSignatureException",
                Some(KmsRefusal::Credentials),
            ),
            (
                "UnrecognizedClientException: The security token included in the request is invalid",
                Some(KmsRefusal::Credentials),
            ),
            (
                r#"{"error":"invalid_client","error_description":"AADSTS7000215"}"#,
                Some(KmsRefusal::Credentials),
            ),
            (
                "DisabledException: arn:aws:kms:...:key/x is disabled.",
                Some(KmsRefusal::KeyState),
            ),
            (
                "KMSInvalidStateException: pending deletion",
                Some(KmsRefusal::KeyState),
            ),
            (
                "AccessDeniedException: not authorized to perform kms:Encrypt",
                Some(KmsRefusal::Permission),
            ),
            (
                r#"{"error":{"code":"Forbidden","message":"does not have keys wrapKey"}}"#,
                Some(KmsRefusal::Permission),
            ),
            (
                r#"{"error": {"status": "PERMISSION_DENIED"}}"#,
                Some(KmsRefusal::Permission),
            ),
            (
                "the TLS certificate of KMS kms.example:443 has expired",
                Some(KmsRefusal::Certificate),
            ),
            ("ThrottlingException: Rate exceeded", None),
            ("HTTP status=503", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(classify(text), want, "{text}");
        }
    }

    #[test]
    fn every_hint_says_how_to_check_the_fix() {
        for r in [
            KmsRefusal::Certificate,
            KmsRefusal::Credentials,
            KmsRefusal::KeyState,
            KmsRefusal::Permission,
        ] {
            assert!(r.hint().contains("keyshift preflight"), "{r:?}");
        }
    }
}
