//! Password hashing: bounded memory whatever the load, and hashes compatible both ways.
//!
//! What the burst test counts is process-wide; its bounds hold whatever else hashes meanwhile.

use ecom_auth::service::password;

const PASSWORD: &str = "plum-orbit-candle-42";

/// argon2 PHC strings made by the reference implementation (Debian's `argon2` command,
/// `echo -n plum-orbit-candle-42 | argon2 <salt> <options> -e`) and by the service's
/// earlier code (`Argon2::hash_password`), for PASSWORD.
const REFERENCE_HASHES: &[&str] = &[
    // -id -t 2 -k 19456 -p 1: the service's parameters
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$cphAzkTAuwixCgLPOWgDWbKVjKK2zAgGNGmNZQGnZCk",
    // -id -t 2 -m 12 -p 1 / -p 2 (two lanes)
    "$argon2id$v=19$m=4096,t=2,p=1$c2FsdC1vZi0xNi1ieXRlcw$6XzCxRcqSYin7bUDKmLUIdkIv7OlL802Zc88WJwjMrg",
    "$argon2id$v=19$m=4096,t=2,p=2$c2FsdC1vZi0xNi1ieXRlcw$vloxqguiPih0oZ5rqmt9uhd6ssnATYw8Gkc3+MMl5fA",
    // -i -t 3 -m 11 -p 1, -d -t 1 -m 10 -p 1
    "$argon2i$v=19$m=2048,t=3,p=1$c2FsdC1vZi0xNi1ieXRlcw$Bt8XTTa0ublvm0AUV3DYmWy5mHUUj7mMgCWol8XSfDk",
    "$argon2d$v=19$m=1024,t=1,p=1$c2FsdC1vZi0xNi1ieXRlcw$+2OICq2I98uRT0RtFYrB9mup18tbUsA+YG2v2Rl5zK8",
    // the service before hashing moved to its own threads (`ecom create-admin`)
    OLD_SERVICE_HASH,
];

const OLD_SERVICE_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$QY2sY2BkqPKPajXOcDG6FA$KM/BCij/I7OZyTt2UEMP2fxO99Kp01LKyfDyc+BaxKI";

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// 32 hashes and verifications asked for at once from eight single-threaded runtimes,
/// as eight actix workers would ask them (registrations, logins with the right and a
/// wrong password, logins of unknown emails). They must all run on the fixed hashing
/// threads, each reusing the one argon2 memory area (19 MiB) it allocated: hashing on
/// each runtime's blocking pool used a new thread and a new area per hash, which the
/// allocator kept (1.3 GiB after a burst of registrations).
#[test]
fn a_burst_of_hashes_stays_on_the_fixed_threads_and_their_memory() {
    let stored = current_thread_runtime()
        .block_on(password::hash(PASSWORD.to_string()))
        .expect("hash");
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let stored = stored.clone();
            std::thread::spawn(move || {
                current_thread_runtime().block_on(futures_util::future::join_all((0..4).map(
                    |kind| {
                        let stored = stored.clone();
                        async move {
                            match kind {
                                0 => password::hash(PASSWORD.to_string())
                                    .await
                                    .is_ok_and(|phc| phc.starts_with("$argon2id$")),
                                1 => password::verify(PASSWORD.to_string(), Some(stored)).await,
                                2 => {
                                    !password::verify("not-the-password".into(), Some(stored)).await
                                }
                                _ => !password::verify(PASSWORD.to_string(), None).await,
                            }
                        }
                    },
                )))
            })
        })
        .collect();
    for worker in workers {
        let answers = worker.join().expect("runtime thread");
        assert_eq!(answers, [true; 4], "hash, match, mismatch, unknown email");
    }
    let stats = password::stats();
    assert!(stats.computed >= 33, "every request hashed: {stats:?}");
    assert!(
        stats.threads_used <= stats.workers,
        "argon2 ran on more threads than the hashing workers: {stats:?}"
    );
    assert!(
        stats.memory_areas_allocated <= stats.workers,
        "argon2 memory was allocated more than once per worker: {stats:?}"
    );
}

/// Hashes made elsewhere (other parameters, variants, lanes, the earlier code) verify;
/// new hashes have the PHC shape the earlier code wrote, with a fresh salt each time.
#[tokio::test]
async fn hashes_stay_compatible_both_ways() {
    for phc in REFERENCE_HASHES {
        assert!(
            password::verify(PASSWORD.to_string(), Some(phc.to_string())).await,
            "{phc} verifies"
        );
        assert!(
            !password::verify("plum-orbit-candle-43".into(), Some(phc.to_string())).await,
            "{phc} refuses another password"
        );
    }
    let first = password::hash(PASSWORD.to_string()).await.expect("hash");
    let second = password::hash(PASSWORD.to_string()).await.expect("hash");
    for phc in [&first, &second] {
        let fields: Vec<&str> = phc.split('$').collect();
        assert_eq!(
            fields[..4],
            ["", "argon2id", "v=19", "m=19456,t=2,p=1"],
            "{phc}"
        );
        assert_eq!(
            (fields[4].len(), fields[5].len()),
            (22, 43),
            "16-byte salt, 32-byte hash: {phc}"
        );
        assert!(password::verify(PASSWORD.to_string(), Some(phc.clone())).await);
    }
    assert_ne!(first, second, "a fresh salt per hash");
}

/// What cannot be verified answers false: a malformed string, a hash without output,
/// and a stored hash asking for more memory than a worker may take (128 MiB here).
#[tokio::test]
async fn unverifiable_hashes_answer_false() {
    for phc in [
        "",
        "not a hash",
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA",
        "$scrypt$ln=15,r=8,p=1$c29tZXNhbHRzb21lc2FsdA$cphAzkTAuwixCgLPOWgDWbKVjKK2zAgGNGmNZQGnZCk",
        // -id -t 2 -m 17 -p 1 (correct for PASSWORD, but 128 MiB)
        "$argon2id$v=19$m=131072,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$xHVb97JIHxNWDLzP9kMy4al+0cfopwZ5MVDBBgmrZQI",
    ] {
        assert!(
            !password::verify(PASSWORD.to_string(), Some(phc.to_string())).await,
            "{phc:?}"
        );
    }
}
