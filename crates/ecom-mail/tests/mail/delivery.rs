use ecom_testkit::smtp::{Mode, ReceivedMail, SmtpPeer, read_mails};
use ecom_testkit::test_app;
use serde_json::json;

use crate::{
    FROM, PASSWORD, STOREFRONT, mail_context, mail_settings, queued, quick_options, start_delivery,
    wait_for_status,
};

#[actix_web::test]
async fn a_new_shopper_follows_the_mailed_link_and_is_verified() {
    let peer = SmtpPeer::start();
    let db = ecom_testkit::TestDb::new().await;
    let extra = [("SMTP_URL", peer.url())];
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let worker = start_delivery(&db, &mail_settings(&db, &extra), quick_options());
    let app = test_app(mail_context(&db, &extra)).await;

    let shopper = app.anonymous().sign_up("lea@example.com", PASSWORD).await;
    let mails = peer.wait_for("lea@example.com", 1).await;
    let mail = &mails[0];
    assert_eq!(mail.header("From"), Some(FROM));
    assert_eq!(mail.header("Subject"), Some("Confirm your email address"));
    let row = &queued(&db, "lea@example.com").await[0];
    assert_eq!(mail.header("Message-ID"), Some(row.message_id.as_str()));
    assert!(
        row.message_id.ends_with("@shop.example>"),
        "{}",
        row.message_id
    );
    let token = mail
        .link_token(STOREFRONT, "/verify-email")
        .expect("a verification link");

    let me = app.user(&shopper.tokens.access_token);
    assert_eq!(me.me().await.json()["email_verified"], false);
    app.anonymous()
        .post("/auth/verify-email", json!({ "token": token }))
        .await
        .assert_status(204);
    assert_eq!(me.me().await.json()["email_verified"], true);
    app.anonymous()
        .post("/auth/verify-email", json!({ "token": token }))
        .await
        .assert_problem(400, "invalid_or_expired_token");
    assert_eq!(wait_for_status(&db, row.id, "sent").await.attempts, 1);
    worker.abort();
}

#[actix_web::test]
async fn a_forgotten_password_is_reset_through_the_mailed_link() {
    let peer = SmtpPeer::start();
    let db = ecom_testkit::TestDb::new().await;
    let extra = [("SMTP_URL", peer.url())];
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let worker = start_delivery(&db, &mail_settings(&db, &extra), quick_options());
    let app = test_app(mail_context(&db, &extra)).await;
    let shopper = app.anonymous().sign_up("max@example.com", PASSWORD).await;

    app.anonymous()
        .post("/auth/password/forgot", json!({"email": "max@example.com"}))
        .await
        .assert_status(202);
    app.anonymous()
        .post(
            "/auth/password/forgot",
            json!({"email": "ghost@example.com"}),
        )
        .await
        .assert_status(202);
    let mails = peer.wait_for("max@example.com", 2).await;
    let reset: &ReceivedMail = mails
        .iter()
        .find(|m| m.header("Subject") == Some("Reset your password"))
        .expect("a reset mail");
    let token = reset
        .link_token(STOREFRONT, "/reset-password")
        .expect("a reset link");
    let new_password = "orchid-tundra-violin-31";
    app.anonymous()
        .post(
            "/auth/password/reset",
            json!({"token": token, "password": new_password}),
        )
        .await
        .assert_status(204);
    app.anonymous()
        .refresh(&shopper.tokens.refresh_token)
        .await
        .assert_status(401);
    let fresh = app
        .anonymous()
        .log_in("max@example.com", new_password)
        .await;
    assert_eq!(
        app.user(&fresh.access_token).me().await.json()["email_verified"],
        true
    );
    assert!(
        peer.mails_to("ghost@example.com").is_empty(),
        "nothing is mailed for an unknown address"
    );
    worker.abort();
}

#[actix_web::test]
async fn without_smtp_each_mail_is_a_complete_eml_file() {
    let data_dir = std::env::temp_dir().join(format!("ecom-mail-test-{}", uuid_like()));
    let db = ecom_testkit::TestDb::new().await;
    let data = data_dir.display().to_string();
    let extra = [("ECOM_DATA_DIR", data.as_str())];
    let worker = start_delivery(&db, &mail_settings(&db, &extra), quick_options());
    let app = test_app(mail_context(&db, &extra)).await;
    app.anonymous()
        .post(
            "/auth/register",
            json!({"email": "nia@example.com", "password": PASSWORD, "full_name": "Nia Ölund"}),
        )
        .await
        .assert_status(201);
    let row = queued(&db, "nia@example.com").await.remove(0);
    wait_for_status(&db, row.id, "sent").await;

    let folder = data_dir.join("mail");
    let names: Vec<String> = std::fs::read_dir(&folder)
        .expect("the mail folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec![format!("{}.eml", row.id)],
        "one file, no temporaries"
    );
    let bytes = std::fs::read(folder.join(&names[0])).expect("read the file");
    assert!(
        bytes.windows(2).any(|w| w == b"\r\n"),
        "RFC 5322 lines end in CRLF"
    );
    let mail = &read_mails(&folder, "eml")[0];
    assert_eq!(mail.header("From"), Some(FROM));
    assert_eq!(mail.header("To"), Some("nia@example.com"));
    assert_eq!(mail.header("Subject"), Some("Confirm your email address"));
    assert_eq!(mail.header("Message-ID"), Some(row.message_id.as_str()));
    assert_eq!(mail.header("MIME-Version"), Some("1.0"));
    assert!(mail.header("Date").is_some());
    assert!(
        mail.header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain") && t.contains("utf-8")),
        "{:?}",
        mail.header("Content-Type")
    );
    assert!(mail.body.contains("Hello Nia Ölund,"), "{}", mail.body);
    let token = mail
        .link_token(STOREFRONT, "/verify-email")
        .expect("a verification link");
    app.anonymous()
        .post("/auth/verify-email", json!({ "token": token }))
        .await
        .assert_status(204);
    worker.abort();
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// A sender that dies in the middle of a send (its SMTP server never answers the DATA, and
/// the worker is killed) leaves the mail leased; once the lease ends another worker sends
/// it again, with the same Message-ID, so the receiver can tell it is the same mail.
#[actix_web::test]
async fn a_mail_whose_sender_died_mid_send_is_sent_again_with_its_message_id() {
    let peer = SmtpPeer::start_in(Mode::StallFirst);
    let db = ecom_testkit::TestDb::new().await;
    let extra = [("SMTP_URL", peer.url())];
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let settings = mail_settings(&db, &extra);
    let first = start_delivery(&db, &settings, quick_options());
    let app = test_app(mail_context(&db, &extra)).await;
    app.anonymous().register("oli@example.com", PASSWORD).await;
    // The server has the whole mail but the sender never hears back: kill the sender.
    peer.wait_for("oli@example.com", 1).await;
    first.abort();
    let row = queued(&db, "oli@example.com").await.remove(0);
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));

    let second = start_delivery(&db, &settings, quick_options());
    let sent = wait_for_status(&db, row.id, "sent").await;
    assert_eq!(sent.attempts, 2);
    let mails = peer.wait_for("oli@example.com", 2).await;
    assert_eq!(mails.len(), 2);
    for mail in &mails {
        assert_eq!(mail.header("Message-ID"), Some(row.message_id.as_str()));
    }
    assert_eq!(mails[0].body, mails[1].body, "the same mail again");
    second.abort();
}

#[actix_web::test]
async fn temporary_refusals_are_retried_and_permanent_ones_give_up() {
    let flaky = SmtpPeer::start_in(Mode::TempfailFirst);
    let db = ecom_testkit::TestDb::new().await;
    let extra = [("SMTP_URL", flaky.url())];
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let worker = start_delivery(&db, &mail_settings(&db, &extra), quick_options());
    let app = test_app(mail_context(&db, &extra)).await;
    app.anonymous().register("pia@example.com", PASSWORD).await;
    let row = queued(&db, "pia@example.com").await.remove(0);
    let sent = wait_for_status(&db, row.id, "sent").await;
    assert_eq!((sent.attempts, sent.last_error), (2, None));
    assert_eq!(flaky.mails_to("pia@example.com").len(), 1);
    worker.abort();

    let refusing = SmtpPeer::start_in(Mode::Reject);
    let db = ecom_testkit::TestDb::new().await;
    let extra = [("SMTP_URL", refusing.url())];
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let worker = start_delivery(&db, &mail_settings(&db, &extra), quick_options());
    let app = test_app(mail_context(&db, &extra)).await;
    app.anonymous().register("quin@example.com", PASSWORD).await;
    let row = queued(&db, "quin@example.com").await.remove(0);
    let failed = wait_for_status(&db, row.id, "failed").await;
    assert_eq!(failed.attempts, 1, "a permanent refusal is not retried");
    assert!(
        failed
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("550")),
        "{:?}",
        failed.last_error
    );
    assert!(
        !failed
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("quin@"),
        "no address in the recorded error"
    );
    worker.abort();
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
}

/// User and password come from `SMTP_URL` (percent-encoded there); without them the same
/// server refuses the mail.
#[actix_web::test]
async fn smtp_credentials_come_from_the_url() {
    use ecom_testkit::smtp::{AUTH_PASSWORD, AUTH_USER};
    let peer = SmtpPeer::start_in(Mode::Auth);
    let db = ecom_testkit::TestDb::new().await;
    let with_login = peer.url().replace(
        "smtp://",
        &format!("smtp://{AUTH_USER}:{}@", AUTH_PASSWORD.replace(' ', "%20")),
    );
    let extra = [("SMTP_URL", with_login.as_str())];
    let worker = start_delivery(&db, &mail_settings(&db, &extra), quick_options());
    let app = test_app(mail_context(&db, &extra)).await;
    app.anonymous().register("ron@example.com", PASSWORD).await;
    let mails = peer.wait_for("ron@example.com", 1).await;
    assert!(mails[0].body.contains("/verify-email?token="));
    worker.abort();

    let db = ecom_testkit::TestDb::new().await;
    let anonymous = peer.url();
    let extra = [("SMTP_URL", anonymous.as_str())];
    let worker = start_delivery(&db, &mail_settings(&db, &extra), quick_options());
    let app = test_app(mail_context(&db, &extra)).await;
    app.anonymous().register("sam@example.com", PASSWORD).await;
    let row = queued(&db, "sam@example.com").await.remove(0);
    let failed = wait_for_status(&db, row.id, "failed").await;
    assert!(
        failed
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("530")),
        "{:?}",
        failed.last_error
    );
    assert!(peer.mails_to("sam@example.com").is_empty());
    worker.abort();
}
