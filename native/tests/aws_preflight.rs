//! AWS specifics through the CLI: preflight's DescribeKey and its naming of which
//! operation (Encrypt or Decrypt) the key refused, and on-demand credentials from the
//! AWS credential chain (the ECS container credentials stand-in).

mod common;
mod stress;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};

struct Setup {
    dir: PathBuf,
    env: HashMap<String, String>,
    world: HashMap<String, String>,
}

fn seed() -> Setup {
    let world = common::world();
    let stress::Seeded { dir, mut env, .. } = stress::seed("awspre", 3, 3, "aws", false);
    // Never let the credential chain reach for a real instance metadata address.
    env.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
    Setup { dir, env, world }
}

impl Setup {
    /// The AWS stand-in's control API (HTTPS with the test CA).
    fn control(&self, action: &str, body: &str) -> serde_json::Value {
        let url = format!(
            "{}/{action}",
            common::world_var(&self.world, "KS_AWS_CONTROL_URL")
        );
        serde_json::from_str(&stress::https_control(&url, body)).unwrap_or(serde_json::Value::Null)
    }

    fn config_with(&self, name: &str, edit: impl Fn(String) -> String) -> String {
        let toml = std::fs::read_to_string(self.dir.join("keyshift.toml")).unwrap();
        std::fs::write(self.dir.join(name), edit(toml)).unwrap();
        name.to_string()
    }

    fn keyshift(&self, args: &[&str], env: &HashMap<String, String>) -> Output {
        Command::new(env!("CARGO_BIN_EXE_keyshift"))
            .args(args)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .output()
            .unwrap()
    }

    fn preflight(&self, config: &str) -> (i32, serde_json::Value) {
        let out = self.keyshift(&["preflight", "-c", config, "--json"], &self.env);
        let json = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("no JSON: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap(), json)
    }
}

fn detail_of(report: &serde_json::Value, check: &str) -> String {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .map(|c| format!("{} {}", c["ok"], c["detail"]))
        .unwrap_or_else(|| panic!("no check {check} in {report}"))
}

#[test]
fn preflight_describes_the_key_and_names_the_refused_operation() {
    let s = seed();
    // A key of this test's own, so denying it disturbs no other test.
    let made = s.control("create", "{}");
    let arn = made["arn"].as_str().unwrap().to_string();
    let seeded_arn = common::world_var(&s.world, "KS_AWS_KEY_ARN");
    let config = s.config_with("own-key.toml", |t| t.replace(&seeded_arn, &arn));

    let (code, report) = s.preflight(&config);
    assert_eq!(code, 0, "{report}");
    assert!(
        detail_of(&report, "target aws key").contains("SYMMETRIC_DEFAULT"),
        "{report}"
    );

    s.control(
        "deny",
        &format!(r#"{{"keyId": "{arn}", "action": "Encrypt"}}"#),
    );
    let (code, report) = s.preflight(&config);
    assert_eq!(code, 1);
    let wrap = detail_of(&report, "target aws");
    assert!(
        wrap.starts_with("false") && wrap.contains("refused Encrypt"),
        "{wrap}"
    );
    s.control(
        "allow",
        &format!(r#"{{"keyId": "{arn}", "action": "Encrypt"}}"#),
    );

    s.control(
        "deny",
        &format!(r#"{{"keyId": "{arn}", "action": "Decrypt"}}"#),
    );
    let (code, report) = s.preflight(&config);
    assert_eq!(code, 1);
    let unwrap = detail_of(&report, "target aws");
    assert!(unwrap.contains("refused Decrypt"), "{unwrap}");
    s.control(
        "allow",
        &format!(r#"{{"keyId": "{arn}", "action": "Decrypt"}}"#),
    );

    s.control("disable", &format!(r#"{{"keyId": "{arn}"}}"#));
    let (code, report) = s.preflight(&config);
    assert_eq!(code, 1);
    assert!(
        detail_of(&report, "target aws key").contains("not enabled"),
        "{report}"
    );
}

#[test]
fn aws_credentials_on_demand_come_from_the_credential_chain() {
    let s = seed();
    let config = s.config_with("on-demand.toml", |t| {
        t.replace("accessKeyId = \"env:AWS_ACCESS_KEY_ID\"\n", "")
            .replace("secretAccessKey = \"env:AWS_SECRET_ACCESS_KEY\"\n", "")
    });
    let mut env = s.env.clone();
    env.remove("AWS_ACCESS_KEY_ID");
    env.remove("AWS_SECRET_ACCESS_KEY");
    env.insert(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
        common::world_var(&s.world, "KS_AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    );
    env.insert(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN".into(),
        common::world_var(&s.world, "KS_AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    );
    let out = s.keyshift(&["rewrap", "-c", &config, "--yes", "--json"], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rewrapped"], 3, "{report}");
    let verify = s.keyshift(&["verify", "-c", &config], &env);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // Without any source of credentials, the error says where it looked and what to do.
    let mut none = s.env.clone();
    none.remove("AWS_ACCESS_KEY_ID");
    none.remove("AWS_SECRET_ACCESS_KEY");
    let out = s.keyshift(&["verify", "-c", &config], &none);
    assert_eq!(
        out.status.code(),
        Some(3),
        "no key is readable without credentials"
    );
    // the report (stdout) names each unreadable key with the reason
    let err = String::from_utf8_lossy(&out.stdout);
    assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
}
