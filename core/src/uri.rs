//! MongoDB connection strings, read far enough to judge them offline: the scheme, the
//! hosts, whether credentials are present, and the options (names are case-insensitive,
//! as in the connection string specification).
//!
//! keyshift never sends the URI through here to connect (the `mongodb` driver parses it
//! for that); this is what `keyshift check` and the browser guide use to say, before any
//! network, what the driver would refuse (a `mongodb+srv://` with a port) and what
//! would weaken a key vault (a secondary read preference, `w=1`, `journal=false`) and
//! what keyshift does about it. Messages quote option names and values, never the
//! userinfo (it may hold a password).

use crate::diagnostic::{Diagnostic, codes};

/// A connection string, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// `mongodb+srv://` (a DNS seedlist).
    pub srv: bool,
    /// The host list as written (`host`, `host:port`, `[v6]:port`).
    pub hosts: Vec<String>,
    /// A user name is present.
    pub has_user: bool,
    /// A password is present (a secret: the URI must then be a reference).
    pub has_password: bool,
    /// Options in order: (lower-cased name, percent-decoded value).
    pub options: Vec<(String, String)>,
}

impl ConnectionString {
    /// The last value given for an option (case-insensitive name).
    pub fn option(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.options
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes `%XX` escapes; a malformed escape is an error (the driver refuses it too).
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a `%` is not followed by two hex digits".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a percent-escape is not UTF-8".to_string())
}

/// Parses a connection string; `Err` says what is malformed (never quoting userinfo).
pub fn parse(uri: &str) -> Result<ConnectionString, String> {
    let (srv, rest) = if let Some(r) = uri.strip_prefix("mongodb+srv://") {
        (true, r)
    } else if let Some(r) = uri.strip_prefix("mongodb://") {
        (false, r)
    } else {
        return Err("it does not start with mongodb:// or mongodb+srv://".into());
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, hostlist) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (has_user, has_password) = match userinfo {
        None => (false, false),
        Some(u) => match u.split_once(':') {
            Some((user, _)) => (!user.is_empty(), true),
            None => (!u.is_empty(), false),
        },
    };
    if hostlist.is_empty() {
        return Err("it names no host".into());
    }
    let hosts: Vec<String> = hostlist.split(',').map(str::to_string).collect();
    if hosts.iter().any(|h| h.is_empty()) {
        return Err("its host list has an empty entry".into());
    }
    for h in &hosts {
        let port = if let Some(v6) = h.strip_prefix('[') {
            let (_, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("host `{h}` opens `[` without closing it"))?;
            after.strip_prefix(':')
        } else {
            h.split_once(':').map(|(_, p)| p)
        };
        if let Some(p) = port
            && !p.parse::<u16>().is_ok_and(|p| p > 0)
        {
            return Err(format!("host `{h}` has a port that is not 1-65535"));
        }
    }
    let query = match tail.split_once('?') {
        Some((_, q)) => q,
        None => "",
    };
    let mut options = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("option `{pair}` has no `=value`"))?;
        options.push((k.to_ascii_lowercase(), percent_decode(v)?));
    }
    Ok(ConnectionString {
        srv,
        hosts,
        has_user,
        has_password,
        options,
    })
}

/// What keyshift does whatever the URI says (DESIGN.md promise 9), for hints.
const KEYSHIFT_READS: &str = "keyshift reads the key vault (and rotate's and retire's \
     scans read data) from the primary with readConcern \"majority\" whatever the URI says";
const KEYSHIFT_WRITES: &str = "keyshift writes to the key vault with writeConcern \
     {w: \"majority\", j: true} whatever the URI says";

/// Judges a literal connection string (after a reference is resolved, or as typed in
/// the guide) and appends what it finds; `path` is the field's JSON pointer.
pub fn check(out: &mut Vec<Diagnostic>, path: &str, uri: &str) {
    let cs = match parse(uri.trim()) {
        Ok(cs) => cs,
        Err(why) => {
            out.push(Diagnostic::error(
                codes::KV_URI_MALFORMED,
                path,
                format!("the MongoDB connection string is malformed: {why}"),
                "Copy the connection string again from Atlas (Connect > Drivers) or your \
                 deployment's documentation; percent-encode special characters in the user \
                 name and password.",
            ));
            return;
        }
    };
    if cs.srv {
        if cs.hosts.len() != 1 {
            out.push(srv_error(path, "names more than one host"));
        } else if has_port(&cs.hosts[0]) {
            out.push(srv_error(path, "gives a port"));
        } else if cs.hosts[0].split('.').count() < 2 {
            out.push(srv_error(path, "names a host without a domain"));
        }
        if cs
            .option("directConnection")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            out.push(srv_error(path, "sets directConnection=true"));
        }
    }
    if let Some(mode) = cs.option("readPreference")
        && !mode.eq_ignore_ascii_case("primary")
    {
        out.push(Diagnostic::warning(
            codes::KV_URI_WEAK_READ,
            path,
            format!(
                "the connection string sets readPreference={mode}: a secondary may return key \
                 documents that are not yet (or no longer) current"
            ),
            format!("{KEYSHIFT_READS}. Applications may keep it."),
        ));
    }
    if let Some(level) = cs.option("readConcernLevel")
        && !level.eq_ignore_ascii_case("majority")
    {
        out.push(Diagnostic::warning(
            codes::KV_URI_WEAK_READ,
            path,
            format!(
                "the connection string sets readConcernLevel={level}: such reads may return \
                 writes that a failover later rolls back"
            ),
            format!("{KEYSHIFT_READS}."),
        ));
    }
    let weak_w = cs
        .option("w")
        .filter(|w| !w.eq_ignore_ascii_case("majority"));
    if let Some(w) = weak_w {
        out.push(Diagnostic::warning(
            codes::KV_URI_WEAK_WRITE,
            path,
            format!(
                "the connection string sets w={w}: a key vault write acknowledged by fewer \
                 than a majority can be rolled back after a failover, and a DEK lost that way \
                 is lost for good once the old master key is gone"
            ),
            format!(
                "{KEYSHIFT_WRITES}. Remove w={w} (or write w=majority) for applications \
                 that create data keys."
            ),
        ));
    }
    for name in ["journal", "j"] {
        if cs
            .option(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("false"))
        {
            out.push(Diagnostic::warning(
                codes::KV_URI_WEAK_WRITE,
                path,
                format!(
                    "the connection string sets {name}=false: writes may be acknowledged \
                     before they are on disk"
                ),
                format!("{KEYSHIFT_WRITES}."),
            ));
        }
    }
    if let Some(mech) = cs.option("authMechanism")
        && mech.eq_ignore_ascii_case("GSSAPI")
    {
        out.push(Diagnostic::error(
            codes::KV_URI_UNSUPPORTED,
            path,
            "authMechanism=GSSAPI (Kerberos) is not supported by this keyshift build",
            "Run keyshift with a user that authenticates with SCRAM, X.509, LDAP (PLAIN) or \
             MONGODB-AWS.",
        ));
    }
    if let Some(list) = cs.option("compressors") {
        for c in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if !["zstd", "snappy", "zlib", "noop"].contains(&c.to_ascii_lowercase().as_str()) {
                out.push(Diagnostic::error(
                    codes::KV_URI_UNSUPPORTED,
                    path,
                    format!("compressors names `{c}`, which MongoDB does not know"),
                    "Use zstd, snappy or zlib (comma-separated), or leave compressors out.",
                ));
            }
        }
    }
}

fn has_port(host: &str) -> bool {
    match host.strip_prefix('[') {
        Some(v6) => v6.split_once(']').is_some_and(|(_, a)| a.starts_with(':')),
        None => host.contains(':'),
    }
}

fn srv_error(path: &str, what: &str) -> Diagnostic {
    Diagnostic::error(
        codes::KV_URI_MALFORMED,
        path,
        format!("the mongodb+srv:// connection string {what}"),
        "A mongodb+srv:// string names exactly one DNS name (e.g. \
         cluster0.abcde.mongodb.net) without a port; DNS then gives the hosts. Copy it \
         again from Atlas, or use mongodb://host1:port,host2:port/?replicaSet=NAME.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes_of(uri: &str) -> Vec<(String, crate::Severity)> {
        let mut out = Vec::new();
        check(&mut out, "/keyVault/uri", uri);
        out.into_iter().map(|d| (d.code, d.severity)).collect()
    }

    #[test]
    fn an_atlas_string_parses_with_its_options() {
        let cs = parse(
            "mongodb+srv://app:p%40ss@cluster0.abcde.mongodb.net/?retryWrites=true&w=majority&appName=Cluster0",
        )
        .unwrap();
        assert!(cs.srv && cs.has_user && cs.has_password);
        assert_eq!(cs.hosts, ["cluster0.abcde.mongodb.net"]);
        assert_eq!(cs.option("W"), Some("majority"));
        assert_eq!(cs.option("appname"), Some("Cluster0"));
        assert!(codes_of("mongodb+srv://cluster0.abcde.mongodb.net/?w=majority").is_empty());
    }

    #[test]
    fn replica_set_hosts_and_ipv6_parse() {
        let cs = parse("mongodb://a:27017,b,[::1]:27018/db?replicaSet=rs0").unwrap();
        assert_eq!(cs.hosts, ["a:27017", "b", "[::1]:27018"]);
        assert!(!cs.has_user);
        assert_eq!(cs.option("replicaset"), Some("rs0"));
    }

    #[test]
    fn malformed_strings_are_errors_that_do_not_quote_the_password() {
        for bad in [
            "postgres://x",
            "mongodb://",
            "mongodb://a,,b",
            "mongodb://h:99999",
            "mongodb://h/?w",
            "mongodb://u:s3cret@h/?x=%zz",
            "mongodb+srv://a.example.com:27017",
            "mongodb+srv://a.example.com,b.example.com",
            "mongodb+srv://localhost",
            "mongodb+srv://c.example.com/?directConnection=true",
        ] {
            let mut out = Vec::new();
            check(&mut out, "/keyVault/uri", bad);
            assert!(out.iter().any(|d| d.is_error()), "{bad}: {out:?}");
            assert!(out.iter().all(|d| !d.message.contains("s3cret")), "{out:?}");
        }
    }

    #[test]
    fn weakening_options_warn_and_say_what_keyshift_does() {
        let mut out = Vec::new();
        check(
            &mut out,
            "/keyVault/uri",
            "mongodb://h/?readPreference=secondaryPreferred&w=1&journal=false&readConcernLevel=local",
        );
        let found: Vec<&str> = out.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(
            found,
            [
                codes::KV_URI_WEAK_READ,
                codes::KV_URI_WEAK_READ,
                codes::KV_URI_WEAK_WRITE,
                codes::KV_URI_WEAK_WRITE
            ]
        );
        assert!(out.iter().all(|d| !d.is_error()));
        assert!(out[2].hint.contains("w: \"majority\", j: true"));
        assert!(out[0].hint.contains("primary"));
        assert!(codes_of("mongodb://h/?readPreference=primary&w=majority&journal=true").is_empty());
    }

    #[test]
    fn unsupported_mechanisms_and_compressors_are_errors() {
        assert_eq!(
            codes_of("mongodb://h/?authMechanism=GSSAPI"),
            [(codes::KV_URI_UNSUPPORTED.into(), crate::Severity::Error)]
        );
        assert!(
            codes_of("mongodb://h/?authMechanism=MONGODB-AWS&compressors=zstd,snappy,zlib")
                .is_empty()
        );
        assert_eq!(codes_of("mongodb://h/?compressors=lz4").len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let mut out = Vec::new();
            check(&mut out, "/keyVault/uri", &s);
            let _ = parse(&format!("mongodb://{s}"));
            let _ = parse(&format!("mongodb+srv://{s}"));
        }
    }
}
