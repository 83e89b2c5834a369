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
    let err = SettingsLoader::isolated()
        .set("DATABASE_URL", "postgres://db/ecom")
        .load()
        .expect_err("no SECRET_KEY outside DEBUG");
    assert!(err.to_string().contains("SECRET_KEY"), "{err}");

    let err = SettingsLoader::isolated()
        .set("DATABASE_URL", "postgres://db/ecom")
        .set("SECRET_KEY", "too-short")
        .load()
        .expect_err("short SECRET_KEY");
    assert!(err.to_string().contains("at least 32 bytes"), "{err}");

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
