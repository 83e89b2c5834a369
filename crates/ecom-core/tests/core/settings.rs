use ecom_core::settings::{LogFormat, SettingsLoader, resolve_secret_key};

#[test]
fn defaults_mean_development_mode_on_the_private_database() {
    let s = SettingsLoader::isolated()
        .load()
        .expect("defaults are valid");
    assert!(s.uses_private_database());
    assert!(
        s.debug(),
        "DEBUG defaults to true on the private PostgreSQL"
    );
    assert_eq!(s.port, 8080);
    assert_eq!(s.host, "127.0.0.1");
    assert_eq!(s.access_token_expire_minutes, 30);
    assert_eq!(s.refresh_token_expire_days, 7);
    assert_eq!(s.log_format, LogFormat::Text);
}

#[test]
fn debug_defaults_to_false_with_a_database_url_and_then_a_secret_is_required() {
    for (settings, message) in [
        (&[("DATABASE_URL", "postgres://db/ecom")][..], "SECRET_KEY"),
        (
            &[
                ("DATABASE_URL", "postgres://db/ecom"),
                ("SECRET_KEY", "too-short"),
            ],
            "at least 32 bytes",
        ),
    ] {
        let loader = settings
            .iter()
            .fold(SettingsLoader::isolated(), |l, (k, v)| l.set(k, *v));
        let err = loader.load().expect_err(message);
        assert!(err.to_string().contains(message), "{err}");
    }

    let s = SettingsLoader::isolated()
        .set("DATABASE_URL", "postgres://db/ecom")
        .set("SECRET_KEY", "x".repeat(32))
        .load()
        .expect("32 bytes suffice");
    assert!(!s.debug());

    let err = SettingsLoader::isolated()
        .set("DEBUG", "false")
        .load()
        .expect_err("DEBUG=false on the private database still needs a key");
    assert!(err.to_string().contains("SECRET_KEY"), "{err}");
}

#[test]
fn bad_values_name_the_setting() {
    for (name, value) in [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("DATABASE_POOL_SIZE", "0"),
        ("ACCESS_TOKEN_EXPIRE_MINUTES", "0"),
        ("REFRESH_TOKEN_EXPIRE_DAYS", "-1"),
        ("LOG_FORMAT", "xml"),
        ("DATABASE_URL", "mysql://db"),
        ("DEBUG", "perhaps"),
    ] {
        let err = SettingsLoader::isolated()
            .set(name, value)
            .set("SECRET_KEY", "k".repeat(40))
            .load()
            .expect_err(name);
        assert!(err.to_string().contains(name), "{name}={value} gave: {err}");
    }
}

#[test]
fn cors_origins_and_secret_redaction() {
    let s = SettingsLoader::isolated()
        .set(
            "CORS_ALLOWED_ORIGINS",
            "https://a.example, https://b.example",
        )
        .set("SECRET_KEY", "super-secret-value-that-is-long-enough")
        .load()
        .expect("valid");
    assert_eq!(
        s.cors_origins(),
        vec!["https://a.example", "https://b.example"]
    );
    let printed = format!("{s:?}");
    assert!(
        !printed.contains("super-secret"),
        "Debug must not print secrets: {printed}"
    );
}

#[test]
fn development_secret_is_generated_once_and_kept() {
    let dir = std::env::temp_dir().join(format!("ecom-secret-{}", uuid::Uuid::new_v4().simple()));
    let s = SettingsLoader::isolated()
        .set("ECOM_DATA_DIR", dir.to_string_lossy())
        .load()
        .expect("valid");
    let first = resolve_secret_key(&s).expect("generated");
    assert!(first.expose().len() >= 32);
    let second = resolve_secret_key(&s).expect("read back");
    assert_eq!(first, second, "the key survives restarts");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn nothing_that_holds_a_secret_prints_it_in_debug() {
    let loader = SettingsLoader::isolated()
        .set(
            "DATABASE_URL",
            "postgres://shop:hunter2-db@db.internal/ecom",
        )
        .set("SECRET_KEY", "k".repeat(40))
        .set("METRICS_TOKEN", "scrape-token-xyz");
    let shown = format!("{loader:?}");
    for secret in ["hunter2-db", &"k".repeat(40), "scrape-token-xyz"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains("METRICS_TOKEN"), "names are shown: {shown}");
    let settings = loader.load().expect("valid");
    let shown = format!("{settings:?}");
    for secret in ["hunter2-db", &"k".repeat(40), "scrape-token-xyz"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let tokens = ecom_core::access_token::AccessTokens::new(
        &ecom_core::settings::SecretString::new("s".repeat(40)),
        30,
    );
    let issued = tokens.issue(1, 2).expect("sign");
    assert!(!format!("{issued:?}").contains(&issued.token));
}

#[test]
fn new_settings_are_validated_with_their_names() {
    for (name, value) in [
        ("TRUSTED_PROXIES", "10.0.0.0/8, not-a-network"),
        ("LOGIN_MAX_FAILURES_PER_EMAIL", "0"),
        ("LOGIN_THROTTLE_WINDOW_SECONDS", "0"),
        ("DATABASE_LOCK_TIMEOUT_MS", "0"),
        ("METRICS_TOKEN", " "),
        ("SHUTDOWN_GRACE_MS", "600001"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "0"),
        ("ORDER_PAYMENT_WINDOW_SECONDS", "0"),
        ("ORDER_PAYMENT_WINDOW_SECONDS", "604801"),
        ("MANUAL_PAYMENT_WINDOW_HOURS", "0"),
        ("MANUAL_PAYMENT_WINDOW_HOURS", "721"),
        ("CART_TTL_DAYS", "0"),
        ("CART_TTL_DAYS", "366"),
    ] {
        let err = SettingsLoader::isolated()
            .set(name, value)
            .load()
            .expect_err(name);
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
    let ok = SettingsLoader::isolated()
        .set("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7, ::1")
        .load()
        .expect("valid");
    assert_eq!(ok.trusted_proxy_networks().expect("parsed").len(), 3);
    assert_eq!(ok.order_payment_window_seconds, 1800, "the default window");
    assert_eq!(ok.cart_ttl_days, 30, "the default cart lifetime");
    assert_eq!(
        ok.manual_payment_window_hours(),
        72,
        "the default manual payment window"
    );
    for hours in ["1", "720"] {
        let bound = SettingsLoader::isolated()
            .set("MANUAL_PAYMENT_WINDOW_HOURS", hours)
            .load()
            .expect("a window at a bound is valid");
        assert_eq!(bound.manual_payment_window_hours().to_string(), hours);
    }
    let short = SettingsLoader::isolated()
        .set("ORDER_PAYMENT_WINDOW_SECONDS", "1")
        .load()
        .expect("a one-second window is valid");
    assert_eq!(
        short.order_payment_window(),
        std::time::Duration::from_secs(1)
    );
}
