//! `ApiConfig` from the `api:` section of winchester.yaml.

use std::time::Duration;

use tach_api::ApiConfig;

#[test]
fn defaults_are_local_and_capped() {
    let c = ApiConfig::default();
    assert_eq!(c.bind.to_string(), "127.0.0.1:8000");
    assert_eq!(c.auth_token, None);
    assert!(!c.auth_reads);
    assert_eq!(c.max_limit, 1000);
    assert_eq!(c.query_timeout, Duration::from_secs(10));
    let empty: ApiConfig = serde_saphyr::from_str("{}").expect("empty section");
    assert_eq!(empty, c);
}

#[test]
fn every_key_reads_from_yaml() {
    let c: ApiConfig = serde_saphyr::from_str(
        "bind: 0.0.0.0:9000\nauth_token: abc\nauth_reads: true\nmax_limit: 50\n\
         query_timeout: 2.5\nmax_body_bytes: 100\n",
    )
    .expect("valid");
    assert_eq!(c.bind.to_string(), "0.0.0.0:9000");
    assert_eq!(c.auth_token.as_deref(), Some("abc"));
    assert!(c.auth_reads);
    assert_eq!(c.max_limit, 50);
    assert_eq!(c.query_timeout, Duration::from_millis(2500));
    assert_eq!(c.max_body_bytes, 100);
}

#[test]
fn unknown_keys_and_bad_values_are_rejected() {
    let err = serde_saphyr::from_str::<ApiConfig>("auth_tokn: abc\n").unwrap_err();
    assert!(err.to_string().contains("auth_tokn"), "{err}");
    let err = serde_saphyr::from_str::<ApiConfig>("query_timeout: 0\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("query_timeout must be a positive number of seconds, got 0"),
        "{err}"
    );
    assert!(serde_saphyr::from_str::<ApiConfig>("bind: localhost\n").is_err());
}
