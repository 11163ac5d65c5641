//! Key vault analysis: key documents in, an [`Inventory`] out.
//!
//! The native shell reads the key vault and hands over each document as MongoDB
//! extended JSON (canonical or relaxed; binaries as `{"$binary": {"base64", "subType"}}`
//! or the legacy `{"$binary": "...", "$type": "..."}`). Nothing here sees a DEK in the
//! clear: `keyMaterial` is the DEK wrapped by its master key, and only its length is
//! looked at.
//!
//! keyMaterial sizes checked (a DEK is 96 bytes before wrapping):
//! - `local`, and `kmip` without `delegated`: exactly 160 bytes. libmongocrypt wraps the
//!   DEK itself with AES-256-CBC and HMAC-SHA-512/256 under the 96-byte key (IV 16 +
//!   ciphertext 112 + tag 32); for KMIP the wrapping key is a 96-byte KMIP secret.
//! - `azure`: 256, 384 or 512 bytes: Key Vault wrapKey with RSA-OAEP-256 returns one
//!   RSA block, the size of the 2048-, 3072- or 4096-bit key.
//! - `aws`, `gcp`, delegated `kmip`: the KMS's ciphertext format carries headers we do
//!   not parse, so only bounds: more than 96 bytes (a wrapping cannot be shorter than
//!   the DEK) and at most 6144 (AWS's CiphertextBlob maximum; far above what any of them
//!   produce for 96 bytes).
//!
//! Fields libmongocrypt accepts (its key document parser refuses anything else, and
//! with it the whole rewrap context the document is fed to): top level `_id` (a UUID),
//! `keyMaterial` (binary subtype 0), `creationDate` and `updateDate` (dates), `status`,
//! `masterKey`, `keyAltNames` (unique strings) and `version` (an integer, 0); all but
//! the last two are required. In `masterKey`, each provider allows only its own fields
//! ([`MASTER_KEY_FIELDS`]) and requires some of them as strings.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{Config, ProviderKind, Target};
use crate::diagnostic::codes;

/// The size of a DEK before wrapping.
pub const DEK_LEN: usize = 96;
/// keyMaterial size of a locally wrapped DEK.
pub const LOCAL_WRAPPED_LEN: usize = 160;

/// Top-level fields of a key document that libmongocrypt accepts.
pub const KEY_DOCUMENT_FIELDS: [&str; 8] = [
    "_id",
    "keyMaterial",
    "creationDate",
    "updateDate",
    "status",
    "masterKey",
    "keyAltNames",
    "version",
];

/// The top-level fields libmongocrypt requires (`masterKey` and `keyMaterial` have their
/// own anomalies).
const REQUIRED_FIELDS: [&str; 4] = ["_id", "status", "creationDate", "updateDate"];

/// Per provider type: the masterKey fields libmongocrypt allows, and which of them it
/// requires (as strings).
pub const MASTER_KEY_FIELDS: [(ProviderKind, &[&str], &[&str]); 5] = [
    (ProviderKind::Local, &["provider"], &[]),
    (
        ProviderKind::Aws,
        &["provider", "key", "region", "endpoint"],
        &["key", "region"],
    ),
    (
        ProviderKind::Azure,
        &["provider", "keyVaultEndpoint", "keyName", "keyVersion"],
        &["keyVaultEndpoint", "keyName"],
    ),
    (
        ProviderKind::Gcp,
        &[
            "provider",
            "endpoint",
            "projectId",
            "location",
            "keyRing",
            "keyName",
            "keyVersion",
        ],
        &["projectId", "location", "keyRing", "keyName"],
    ),
    (
        ProviderKind::Kmip,
        &["provider", "endpoint", "keyId", "delegated"],
        &[],
    ),
];

/// What is unusual about a key document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AnomalyKind {
    /// The item is not a document.
    NotADocument,
    /// No `masterKey`, or no `masterKey.provider`.
    NoMasterKey,
    /// `masterKey.provider` is not a known provider type.
    UnknownProvider,
    /// The provider is not in the configuration's kmsProviders: keyshift cannot open it.
    UnconfiguredProvider,
    /// No binary `keyMaterial`.
    NoKeyMaterial,
    /// `keyMaterial` has a size its provider cannot produce.
    KeyMaterialSize,
    /// A keyAltName used by more than one key.
    DuplicateAltName,
    /// A top-level field libmongocrypt does not know: it refuses the document.
    UnknownField,
    /// A field libmongocrypt requires is missing or has a type it refuses (`_id` not a
    /// UUID, dates not dates, `version` not 0, `keyMaterial` not subtype 0, repeated
    /// keyAltNames, a `masterKey` field its provider does not allow or lacks).
    MalformedField,
}

impl AnomalyKind {
    /// The stable code (`KS-INV-NNN`, listed in docs/config.md).
    pub fn code(self) -> &'static str {
        match self {
            AnomalyKind::NotADocument => codes::INV_NOT_A_DOCUMENT,
            AnomalyKind::NoMasterKey => codes::INV_NO_MASTER_KEY,
            AnomalyKind::UnknownProvider => codes::INV_UNKNOWN_PROVIDER,
            AnomalyKind::UnconfiguredProvider => codes::INV_UNCONFIGURED_PROVIDER,
            AnomalyKind::NoKeyMaterial => codes::INV_NO_KEY_MATERIAL,
            AnomalyKind::KeyMaterialSize => codes::INV_KEY_MATERIAL_SIZE,
            AnomalyKind::DuplicateAltName => codes::INV_DUPLICATE_ALT_NAME,
            AnomalyKind::UnknownField => codes::INV_UNKNOWN_FIELD,
            AnomalyKind::MalformedField => codes::INV_MALFORMED_FIELD,
        }
    }

    /// What to do about an anomaly of this kind.
    pub fn hint(self) -> &'static str {
        match self {
            AnomalyKind::NotADocument => {
                "Remove it from the key vault collection: no driver can use it."
            }
            AnomalyKind::NoMasterKey | AnomalyKind::NoKeyMaterial => {
                "Restore the key document from a backup (keyshift rollback, or your database backup); no master key can unwrap it as it is."
            }
            AnomalyKind::UnknownProvider => {
                "Find out which tool wrote this key; until then leave it out of the move with [rewrap] filter."
            }
            AnomalyKind::UnconfiguredProvider => {
                "Add that provider to [kmsProviders] with its credentials (the applications need it too until these keys move), or leave the keys out of the move with [rewrap] filter."
            }
            AnomalyKind::KeyMaterialSize => {
                "Restore keyMaterial from a backup: libmongocrypt cannot unwrap what this master key cannot have produced."
            }
            AnomalyKind::DuplicateAltName => {
                "Give each key its own keyAltNames ($pull the name from all but one key): encryption by that name is ambiguous."
            }
            AnomalyKind::UnknownField => {
                "$unset the field: libmongocrypt refuses the whole document, so rewrap reports the key instead of moving it."
            }
            AnomalyKind::MalformedField => {
                "Fix the field as the message says, or restore the document from a backup; rewrap reports the key instead of moving it."
            }
        }
    }
}

/// One anomaly found in the key vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Anomaly {
    /// What kind.
    pub kind: AnomalyKind,
    /// The stable code of the kind ([`AnomalyKind::code`]).
    pub code: &'static str,
    /// The key's `_id` (UUID text for subtype 4), or its position when it has none.
    pub key_id: String,
    /// What was found, for people.
    pub message: String,
    /// What to do ([`AnomalyKind::hint`]).
    pub hint: &'static str,
}

impl Anomaly {
    /// An anomaly of `kind` in the key `key_id`, with the kind's code and hint.
    pub fn new(kind: AnomalyKind, key_id: String, message: String) -> Self {
        Anomaly {
            kind,
            code: kind.code(),
            key_id,
            message,
            hint: kind.hint(),
        }
    }
}

/// A finding about every key under one master key: a setup that works today and fails
/// later (a key version that will rotate away, a local key that will be destroyed, a KMS
/// key that is disabled or scheduled for deletion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lint {
    /// Stable code (`KS-INV-NNN`, listed in docs/config.md).
    pub code: &'static str,
    /// The master key concerned, provider included.
    pub master_key: Value,
    /// How many keys are under it.
    pub keys: usize,
    /// What is wrong, for people.
    pub message: String,
    /// What to do.
    pub hint: String,
}

/// How many keys share one exact masterKey.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MasterKeyCount {
    /// The masterKey document, provider included.
    pub master_key: Value,
    /// Number of keys under it.
    pub count: usize,
}

/// What a key vault holds.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Number of documents analysed.
    pub total: usize,
    /// Keys per `masterKey.provider` (named providers counted by full name).
    pub by_provider: BTreeMap<String, usize>,
    /// Keys per exact masterKey, most common first.
    pub by_master_key: Vec<MasterKeyCount>,
    /// Keys that have at least one keyAltName.
    pub with_alt_names: usize,
    /// Keys whose `status` is not 0 (libmongocrypt writes 0; anything else was set by
    /// hand or another tool and deserves a look before rewrapping).
    pub disabled: usize,
    /// Keys already under the target (when a target was given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub under_target: Option<usize>,
    /// Everything unusual, in document order.
    pub anomalies: Vec<Anomaly>,
    /// Findings per master key ([`Lint`]), in the order of `by_master_key`.
    pub lints: Vec<Lint>,
}

impl Inventory {
    /// Keys not yet under the target (0 without a target).
    pub fn not_under_target(&self) -> usize {
        self.under_target.map_or(0, |u| self.total - u)
    }

    /// Whether any anomaly of `kind` was found.
    pub fn has(&self, kind: AnomalyKind) -> bool {
        self.anomalies.iter().any(|a| a.kind == kind)
    }
}

/// Decodes an extended JSON binary (canonical or legacy form) to bytes and subtype.
pub fn decode_binary(v: &Value) -> Option<(Vec<u8>, u8)> {
    let bin = v.get("$binary")?;
    let (b64, sub) = match bin {
        Value::Object(m) => (m.get("base64")?.as_str()?, m.get("subType")?.as_str()?),
        Value::String(s) => (s.as_str(), v.get("$type")?.as_str()?),
        _ => return None,
    };
    let bytes = STANDARD.decode(b64).ok()?;
    let sub = u8::from_str_radix(sub, 16).ok()?;
    Some((bytes, sub))
}

/// A key's `_id` for people: UUID text for a subtype-4 binary, else compact JSON.
pub fn key_id_text(doc: &Value) -> Option<String> {
    let id = doc.get("_id")?;
    match decode_binary(id) {
        Some((b, 4)) if b.len() == 16 => {
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Some(format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            ))
        }
        _ => Some(id.to_string()),
    }
}

/// An integer in relaxed (`1`) or canonical (`{"$numberInt": "1"}`) extended JSON.
fn int_value(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.get("$numberInt")
            .or_else(|| v.get("$numberLong"))
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
    })
}

/// Whether a masterKey document is the target's (DESIGN.md, "under the target"): the
/// same provider, and every field the same, no more and no fewer, in any order.
///
/// One exception, because a KMIP server names its keys: when keyshift creates a KMIP
/// key without a `keyId`, the server assigns one and libmongocrypt stores it, so a KMIP
/// key may carry a `keyId` the target leaves out. `delegated` absent means false.
/// (`[rewrap] kmipReplaceKeyIds` takes keys under listed objects back out:
/// [`crate::config::Rewrap::replaces`].)
pub fn is_under_target(master_key: &Value, target: &Target) -> bool {
    master_key_matches(master_key, &target.master_key.to_document(&target.provider))
}

/// [`is_under_target`] against a masterKey document (with `provider`), as the native
/// shell holds the target.
pub fn master_key_matches(master_key: &Value, target: &Map<String, Value>) -> bool {
    let Some(key) = master_key.as_object() else {
        return false;
    };
    let Some(provider) = target.get("provider").and_then(Value::as_str) else {
        return false;
    };
    if key.get("provider").and_then(Value::as_str) != Some(provider) {
        return false;
    }
    let kmip = ProviderKind::of_name(provider) == Some(ProviderKind::Kmip);
    let delegated = |d: &Map<String, Value>| d.get("delegated") == Some(&Value::Bool(true));
    if kmip && delegated(key) != delegated(target) {
        return false;
    }
    let ignored = |k: &str| kmip && k == "delegated";
    let same = target
        .iter()
        .filter(|(k, _)| !ignored(k))
        .all(|(k, v)| key.get(k) == Some(v));
    let no_extra = key
        .keys()
        .all(|k| target.contains_key(k) || ignored(k) || (kmip && k == "keyId"));
    same && no_extra
}

/// Whether an extended JSON value is a date (`{"$date": ...}`).
fn is_date(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.len() == 1 && m.contains_key("$date"))
}

/// Whether an extended JSON value is a UUID (binary subtype 4 of 16 bytes, or `$uuid`).
fn is_uuid(v: &Value) -> bool {
    matches!(decode_binary(v), Some((b, 4)) if b.len() == 16)
        || v.get("$uuid").and_then(Value::as_str).is_some_and(|s| {
            s.len() == 36 && s.chars().filter(|c| c.is_ascii_hexdigit()).count() == 32
        })
}

/// What libmongocrypt's key document parser would refuse in `doc`, beyond what the other
/// anomalies cover: (kind, message) pairs, in field order.
pub fn refused_fields(doc: &Map<String, Value>) -> Vec<(AnomalyKind, String)> {
    let mut out = Vec::new();
    let mut malformed = |m: String| out.push((AnomalyKind::MalformedField, m));
    for field in REQUIRED_FIELDS {
        if !doc.contains_key(field) {
            malformed(format!(
                "no `{field}`, which libmongocrypt requires: it refuses this key document"
            ));
        }
    }
    for (field, value) in doc {
        let wrong = match field.as_str() {
            "_id" => (!is_uuid(value)).then_some("is not a UUID"),
            "creationDate" | "updateDate" => (!is_date(value)).then_some("is not a date"),
            "version" => (int_value(value) != Some(0)).then_some("is not the integer 0"),
            "keyMaterial" => match decode_binary(value) {
                Some((_, sub)) if sub != 0 => Some("is not binary subtype 0"),
                _ => None,
            },
            "keyAltNames" => match value.as_array() {
                None => Some("is not an array"),
                Some(names) if names.iter().any(|n| !n.is_string()) => {
                    Some("holds a name that is not a string")
                }
                Some(names) => {
                    let unique: BTreeSet<&str> = names.iter().filter_map(Value::as_str).collect();
                    (unique.len() != names.len()).then_some("repeats a name")
                }
            },
            "status" | "masterKey" => None,
            _ => {
                out.push((
                    AnomalyKind::UnknownField,
                    format!(
                        "field `{field}` is not one libmongocrypt knows (it accepts {}): it refuses this key document, so rewrap reports the key instead of moving it",
                        KEY_DOCUMENT_FIELDS.join(", ")
                    ),
                ));
                continue;
            }
        };
        if let Some(wrong) = wrong {
            out.push((
                AnomalyKind::MalformedField,
                format!("`{field}` {wrong}: libmongocrypt refuses this key document"),
            ));
        }
    }
    let master_key = doc.get("masterKey").and_then(Value::as_object);
    let provider = master_key
        .and_then(|m| m.get("provider"))
        .and_then(Value::as_str);
    let kind = provider.and_then(ProviderKind::of_name);
    let rules = MASTER_KEY_FIELDS.iter().find(|(k, _, _)| Some(*k) == kind);
    if let (Some(mk), Some((kind, allowed, required))) = (master_key, rules) {
        for field in mk.keys().filter(|f| !allowed.contains(&f.as_str())) {
            out.push((
                    AnomalyKind::MalformedField,
                    format!(
                        "`masterKey.{field}` is not a {} masterKey field (allowed: {}): libmongocrypt refuses this key document",
                        kind.as_str(),
                        allowed.join(", ")
                    ),
                ));
        }
        for field in required
            .iter()
            .filter(|f| !mk.get(**f).is_some_and(Value::is_string))
        {
            out.push((
                    AnomalyKind::MalformedField,
                    format!(
                        "`masterKey.{field}` is missing or not a string; a {} masterKey requires it: libmongocrypt refuses this key document",
                        kind.as_str()
                    ),
                ));
        }
    }
    out
}

/// The keyMaterial sizes a provider can produce, as (min, max) inclusive, or the exact
/// set for Azure. See the module documentation for why.
fn size_ok(kind: ProviderKind, master_key: &Value, len: usize) -> bool {
    match kind {
        ProviderKind::Local => len == LOCAL_WRAPPED_LEN,
        ProviderKind::Kmip if master_key.get("delegated") != Some(&Value::Bool(true)) => {
            len == LOCAL_WRAPPED_LEN
        }
        ProviderKind::Azure => [256, 384, 512].contains(&len),
        ProviderKind::Aws | ProviderKind::Gcp | ProviderKind::Kmip => len > DEK_LEN && len <= 6144,
    }
}

/// Analyses key documents; with a config, also counts keys under its target and flags
/// providers it cannot open.
pub fn analyze(docs: &[Value], config: Option<&Config>) -> Inventory {
    let mut inv = Inventory {
        total: docs.len(),
        under_target: config.and_then(|c| c.target.as_ref()).map(|_| 0),
        ..Inventory::default()
    };
    let mut per_mk: BTreeMap<String, (Value, usize)> = BTreeMap::new();
    let mut alt_owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, doc) in docs.iter().enumerate() {
        let id = key_id_text(doc).unwrap_or_else(|| format!("#{i}"));
        let mut flag =
            |kind, message: String| inv.anomalies.push(Anomaly::new(kind, id.clone(), message));
        let Some(fields) = doc.as_object() else {
            flag(AnomalyKind::NotADocument, "not a key document".into());
            continue;
        };
        for (kind, message) in refused_fields(fields) {
            flag(kind, message);
        }
        if let Some(Value::Array(names)) = doc.get("keyAltNames") {
            if !names.is_empty() {
                inv.with_alt_names += 1;
            }
            let unique: BTreeSet<&str> = names.iter().filter_map(Value::as_str).collect();
            for n in unique {
                alt_owners
                    .entry(n.to_string())
                    .or_default()
                    .push(id.clone());
            }
        }
        if doc
            .get("status")
            .and_then(int_value)
            .is_some_and(|s| s != 0)
        {
            inv.disabled += 1;
        }
        let mk = doc.get("masterKey").filter(|m| m.is_object());
        let provider = mk.and_then(|m| m.get("provider")).and_then(Value::as_str);
        let (Some(mk), Some(provider)) = (mk, provider) else {
            flag(
                AnomalyKind::NoMasterKey,
                "no masterKey.provider: libmongocrypt cannot unwrap this key".into(),
            );
            continue;
        };
        *inv.by_provider.entry(provider.to_string()).or_default() += 1;
        let entry = per_mk.entry(mk.to_string()).or_insert((mk.clone(), 0));
        entry.1 += 1;
        if let Some(c) = config
            && let Some(t) = &c.target
            && is_under_target(mk, t)
            && !c.rewrap_or_default().replaces(mk)
        {
            *inv.under_target.get_or_insert(0) += 1;
        }
        let kind = ProviderKind::of_name(provider);
        if kind.is_none() {
            flag(
                AnomalyKind::UnknownProvider,
                format!("masterKey.provider `{provider}` is not aws, azure, gcp, kmip or local"),
            );
        }
        if let Some(c) = config
            && kind.is_some()
            && !c.kms_providers.contains_key(provider)
        {
            flag(
                AnomalyKind::UnconfiguredProvider,
                format!("the key is under `{provider}`, which kmsProviders does not configure"),
            );
        }
        match doc.get("keyMaterial").and_then(decode_binary) {
            None => flag(AnomalyKind::NoKeyMaterial, "no binary keyMaterial".into()),
            Some((bytes, _)) => {
                if let Some(k) = kind
                    && !size_ok(k, mk, bytes.len())
                {
                    flag(
                        AnomalyKind::KeyMaterialSize,
                        format!(
                            "keyMaterial is {} bytes, which a {} master key cannot produce",
                            bytes.len(),
                            k.as_str()
                        ),
                    );
                }
            }
        }
    }
    for (name, owners) in alt_owners {
        if owners.len() > 1 {
            for owner in &owners {
                inv.anomalies.push(Anomaly::new(
                    AnomalyKind::DuplicateAltName,
                    owner.clone(),
                    format!(
                        "keyAltName `{name}` is shared by {} keys; lookups by that name are ambiguous",
                        owners.len()
                    ),
                ));
            }
        }
    }
    let mut counts: Vec<MasterKeyCount> = per_mk
        .into_values()
        .map(|(master_key, count)| MasterKeyCount { master_key, count })
        .collect();
    // Most common first; ties in a stable order (the document's JSON text).
    counts.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.master_key.to_string().cmp(&b.master_key.to_string()))
    });
    inv.by_master_key = counts;
    inv.lints = lints(&inv, config);
    inv
}

/// The provider type of a masterKey document (`None` for an unknown or missing one).
fn kind_of(master_key: &Value) -> Option<ProviderKind> {
    master_key
        .get("provider")
        .and_then(Value::as_str)
        .and_then(ProviderKind::of_name)
}

/// The provider name of a masterKey document, for messages.
fn provider_of(master_key: &Value) -> &str {
    master_key
        .get("provider")
        .and_then(Value::as_str)
        .unwrap_or("?")
}

/// Whether an Azure masterKey names the key version that wrapped its DEKs.
fn azure_pinned(master_key: &Value) -> bool {
    master_key
        .get("keyVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| !v.trim().is_empty())
}

/// Per master key: Azure keys without a version (KS-INV-010) and, once keys have moved
/// off local master keys, the keys left behind (KS-INV-011).
fn lints(inv: &Inventory, config: Option<&Config>) -> Vec<Lint> {
    let target = config.and_then(|c| c.target.as_ref());
    let under_target = |mk: &Value| {
        config
            .zip(target)
            .is_some_and(|(c, t)| is_under_target(mk, t) && !c.rewrap_or_default().replaces(mk))
    };
    // A move has happened when some key is under the target or under a KMS.
    let moved = inv.by_master_key.iter().any(|m| {
        under_target(&m.master_key) || kind_of(&m.master_key).is_some_and(ProviderKind::is_remote)
    });
    let mut out = Vec::new();
    for m in &inv.by_master_key {
        let mk = &m.master_key;
        match kind_of(mk) {
            Some(ProviderKind::Azure) if !azure_pinned(mk) => out.push(Lint {
                code: codes::INV_AZURE_UNPINNED,
                master_key: mk.clone(),
                keys: m.count,
                message: format!(
                    "{} key(s) under Azure key `{}` without keyVersion: Azure Key Vault does not record which key version wrapped a DEK, so every unwrap uses the key's current version. Once the key rotates, these DEKs become unreadable.",
                    m.count,
                    mk.get("keyName").and_then(Value::as_str).unwrap_or("?"),
                ),
                hint: format!(
                    "Pin the version before the key rotates: with this key as the target, set target.masterKey.keyVersion to its current version (the last path segment of what `{}` prints) and run keyshift rewrap: it rewraps these keys under that exact version. Until then, do not rotate the key.",
                    crate::validate::azure::current_version_command(
                        mk.get("keyVaultEndpoint").and_then(Value::as_str),
                        mk.get("keyName").and_then(Value::as_str),
                    )
                ),
            }),
            Some(ProviderKind::Local) if target.is_some() && moved && !under_target(mk) => {
                let rerun = if config.is_some_and(Config::source_exposed) {
                    "Rerun `keyshift rotate` and `keyshift retire`"
                } else {
                    "Rerun `keyshift rewrap` (check that [rewrap] filter selects these keys), then `keyshift verify`"
                };
                out.push(Lint {
                    code: codes::INV_LOCAL_LEFT_BEHIND,
                    master_key: mk.clone(),
                    keys: m.count,
                    message: format!(
                        "{} key(s) are still under the local master key `{}` although keys have moved off it: once that key is destroyed (the plan's last step), these DEKs and the data they encrypt are lost.",
                        m.count,
                        provider_of(mk),
                    ),
                    hint: format!(
                        "{rerun}; keep the local key until inspect no longer reports this."
                    ),
                });
            }
            _ => {}
        }
    }
    out
}

/// What `keyshift inspect --kms` learnt about one master key from its KMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KmsCheck {
    /// The master key, provider included.
    pub master_key: Value,
    /// How many keys are under it.
    pub keys: usize,
    /// What the KMS says.
    pub status: KmsStatus,
    /// One line for people (no secret).
    pub detail: String,
}

/// The state of a master key in its KMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KmsStatus {
    /// Enabled: the keys under it can be unwrapped.
    Enabled,
    /// Disabled (or another state that refuses Decrypt): KS-INV-012.
    Disabled,
    /// Scheduled for deletion: KS-INV-013.
    PendingDeletion,
    /// Not asked: a provider keyshift does not query, or the question failed.
    NotChecked,
}

/// Judges what AWS KMS `DescribeKey` said about the master key of `keys` keys: the
/// check, and the lint when the key refuses Decrypt now or will once deleted.
pub fn judge_aws_key(
    master_key: &Value,
    keys: usize,
    facts: &crate::aws_key::KeyFacts<'_>,
) -> (KmsCheck, Option<Lint>) {
    let key = master_key.get("key").and_then(Value::as_str).unwrap_or("?");
    let state = facts.state.unwrap_or("unknown");
    let region = master_key
        .get("region")
        .and_then(Value::as_str)
        .unwrap_or("REGION");
    let (status, lint) = match state {
        "Enabled" if facts.enabled => (KmsStatus::Enabled, None),
        "PendingDeletion" | "PendingReplicaDeletion" => (
            KmsStatus::PendingDeletion,
            Some(Lint {
                code: codes::INV_KMS_KEY_PENDING_DELETION,
                master_key: master_key.clone(),
                keys,
                message: format!(
                    "AWS KMS key {key} is scheduled for deletion ({state}): it refuses Decrypt now, and once deleted the {keys} DEK(s) under it and the data they encrypt are lost for good."
                ),
                hint: format!(
                    "Cancel the deletion now (`aws kms cancel-key-deletion --region {region} --key-id {key}`, then `aws kms enable-key`), and move the keys to a key you keep with keyshift rewrap."
                ),
            }),
        ),
        _ => (
            KmsStatus::Disabled,
            Some(Lint {
                code: codes::INV_KMS_KEY_DISABLED,
                master_key: master_key.clone(),
                keys,
                message: format!(
                    "AWS KMS key {key} is not enabled ({state}): it refuses Decrypt, so the {keys} DEK(s) under it cannot be unwrapped by keyshift or the applications."
                ),
                hint: format!(
                    "Enable it (`aws kms enable-key --region {region} --key-id {key}`) if anything still needs these keys, then move them to the target with keyshift rewrap; if it was disabled on purpose, the keys under it are retired."
                ),
            }),
        ),
    };
    let detail = match status {
        KmsStatus::Enabled => "DescribeKey: Enabled".to_string(),
        _ => format!("DescribeKey: {state}"),
    };
    (
        KmsCheck {
            master_key: master_key.clone(),
            keys,
            status,
            detail,
        },
        lint,
    )
}

/// A master key `inspect --kms` did not ask its KMS about, and why.
pub fn not_checked(master_key: &Value, keys: usize, why: impl Into<String>) -> KmsCheck {
    KmsCheck {
        master_key: master_key.clone(),
        keys,
        status: KmsStatus::NotChecked,
        detail: why.into(),
    }
}

/// Why `inspect --kms` does not ask a provider type about its keys (None: it does, or
/// there is no KMS to ask).
pub fn unchecked_reason(kind: ProviderKind) -> Option<&'static str> {
    match kind {
        ProviderKind::Aws | ProviderKind::Local => None,
        ProviderKind::Azure => Some(
            "not checked: keyshift does not read Azure key attributes yet (run `az keyvault key show` and look at attributes.enabled)",
        ),
        ProviderKind::Gcp => Some(
            "not checked: keyshift does not read GCP key version states yet (run `gcloud kms keys versions list` and look at state)",
        ),
        ProviderKind::Kmip => Some(
            "not checked: KMIP servers report object state in their own ways (ask the server for the object's State attribute)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bin(len: usize, sub: &str) -> Value {
        json!({"$binary": {"base64": STANDARD.encode(vec![7u8; len]), "subType": sub}})
    }

    #[test]
    fn decodes_both_binary_forms() {
        assert_eq!(decode_binary(&bin(3, "00")), Some((vec![7, 7, 7], 0)));
        let legacy = json!({"$binary": STANDARD.encode([1u8, 2]), "$type": "04"});
        assert_eq!(decode_binary(&legacy), Some((vec![1, 2], 4)));
        assert_eq!(decode_binary(&json!("x")), None);
    }

    #[test]
    fn uuid_ids_print_as_uuids() {
        let doc =
            json!({"_id": {"$binary": {"base64": "EjRWeJASNFZ4kBI0VniQEg==", "subType": "04"}}});
        assert_eq!(
            key_id_text(&doc).unwrap(),
            "12345678-9012-3456-7890-123456789012"
        );
    }

    #[test]
    fn sizes_per_provider() {
        let mk = json!({});
        assert!(size_ok(ProviderKind::Local, &mk, 160));
        assert!(!size_ok(ProviderKind::Local, &mk, 96));
        assert!(size_ok(ProviderKind::Azure, &mk, 256));
        assert!(!size_ok(ProviderKind::Azure, &mk, 160));
        assert!(size_ok(ProviderKind::Aws, &mk, 184));
        assert!(!size_ok(ProviderKind::Aws, &mk, 96));
        assert!(size_ok(ProviderKind::Kmip, &mk, 160));
        assert!(size_ok(
            ProviderKind::Kmip,
            &json!({"delegated": true}),
            200
        ));
    }
}
