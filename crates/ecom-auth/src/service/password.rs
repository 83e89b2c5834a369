//! Password hashing (argon2id, OWASP parameters) and the password policy.
//!
//! Every argon2 computation of the service (registration, login, the dummy hash of
//! unknown emails, an administrator's or a command's new password, and any password
//! endpoint to come) goes through [`hash`] and [`verify`], which run it on a small,
//! fixed set of dedicated threads: one per CPU, each owning one argon2 memory area
//! (19 MiB) allocated on its first hash and reused by every later one. Hashing memory
//! is therefore bounded by `workers × 19 MiB` whatever the number and mix of requests.
//! One thread per CPU also keeps a login storm from crowding out the async workers:
//! other requests still answer promptly, and waiting for a free thread is asynchronous.
//!
//! Why not `spawn_blocking`: each actix worker runs its own tokio runtime, each with
//! its own blocking pool, so hashes ran on ever new threads, and every hash allocated
//! and freed its 19 MiB. After the first free, glibc raises its mmap threshold above
//! that size and serves the next areas from per-thread arenas, which keep them: eight
//! parallel registrations left the server at 1.2 GiB for good.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::password_hash::try_generate_salt;
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::error::{AuthError, AuthResult};

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 128;

/// argon2 memory cost of new hashes, in KiB (19 MiB, OWASP).
const M_COST: u32 = 19 * 1024;
/// Stored hashes asking for more memory than this (KiB) are refused rather than
/// verified: a worker's memory area grows to fit a stored hash, up to this.
const MAX_VERIFY_M_COST: u32 = 4 * M_COST;

/// argon2id with m = 19 MiB, t = 2, p = 1.
fn params() -> Params {
    Params::new(M_COST, 2, 1, None).expect("OWASP argon2 parameters are valid")
}

/// What the hashing threads have done since the process started (for tests and
/// diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingStats {
    /// The dedicated hashing threads (one per CPU).
    pub workers: usize,
    /// Distinct threads that ever ran argon2.
    pub threads_used: usize,
    /// argon2 memory areas ever allocated (at most one per worker, unless a stored
    /// hash needed a larger one).
    pub memory_areas_allocated: usize,
    /// Hashes and verifications computed.
    pub computed: usize,
}

/// A hash or a verification, run by a worker with its memory area.
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// The pool: a slot per worker (waited for asynchronously, so a waiting request can
/// be cancelled and no job queues behind a busy worker) and the jobs' channel.
struct Pool {
    slots: Arc<tokio::sync::Semaphore>,
    jobs: mpsc::Sender<(Job, tokio::sync::OwnedSemaphorePermit)>,
    workers: usize,
}

static THREADS_USED: OnceLock<Mutex<HashSet<ThreadId>>> = OnceLock::new();
static AREAS_ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static COMPUTED: AtomicUsize = AtomicUsize::new(0);

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (jobs, queue) = mpsc::channel::<(Job, tokio::sync::OwnedSemaphorePermit)>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..workers {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&queue))
                .expect("a password hashing thread starts");
        }
        Pool {
            slots: Arc::new(tokio::sync::Semaphore::new(workers)),
            jobs,
            workers,
        }
    })
}

/// A worker's loop: takes the next job and runs it with its own memory area. A
/// panicking job drops its answer (the caller sees an error) and the worker goes on.
fn work(queue: &Mutex<mpsc::Receiver<(Job, tokio::sync::OwnedSemaphorePermit)>>) {
    let mut memory = Memory::default();
    loop {
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok((job, slot)) = next else { return };
        if catch_unwind(AssertUnwindSafe(|| job(&mut memory))).is_err() {
            tracing::error!("a password hashing job panicked");
        }
        drop(slot);
    }
}

/// Runs `job` on a hashing thread, waiting (asynchronously) for a free one.
async fn run<T: Send + 'static>(
    job: impl FnOnce(&mut Memory) -> T + Send + 'static,
) -> AuthResult<T> {
    let pool = pool();
    let slot = pool
        .slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| AuthError::Internal(e.to_string()))?;
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move |memory| {
        let _ = answer.send(job(memory));
    });
    pool.jobs
        .send((job, slot))
        .map_err(|_| AuthError::Internal("the password hashing threads are gone".into()))?;
    answered
        .await
        .map_err(|_| AuthError::Internal("a password hashing job failed".into()))
}

/// One worker's argon2 memory area, allocated on first use and then reused.
#[derive(Default)]
struct Memory {
    blocks: Vec<Block>,
}

impl Memory {
    /// Computes argon2 into `out` with this area, growing it first if `argon` needs
    /// more than it has. Records which thread ran it.
    fn compute(
        &mut self,
        argon: &Argon2<'_>,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> argon2::Result<()> {
        let needed = argon.params().block_count();
        if self.blocks.len() < needed {
            self.blocks = Vec::new();
            self.blocks.resize(needed, Block::new());
            AREAS_ALLOCATED.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut threads) = THREADS_USED.get_or_init(Default::default).lock() {
            threads.insert(std::thread::current().id());
        }
        COMPUTED.fetch_add(1, Ordering::Relaxed);
        argon.hash_password_into_with_memory(password, salt, out, &mut self.blocks[..needed])
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) for the password, with a
    /// fresh random salt: what `Argon2::hash_password` gives.
    fn hash(&mut self, password: &[u8]) -> AuthResult<String> {
        let failed = |e: &dyn std::fmt::Display| {
            AuthError::Internal(format!("password hashing failed: {e}"))
        };
        let params = params();
        let salt = try_generate_salt().map_err(|e| failed(&e))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.compute(&argon, password, &salt, &mut out)
            .map_err(|e| failed(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
            salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
            hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Whether the password matches the PHC string (any argon2 variant, version and
    /// parameters it names, as `PasswordVerifier::verify_password` would check it).
    fn verify(&mut self, password: &[u8], phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
            return false;
        };
        let Ok(version) = parsed
            .version
            .map_or(Ok(Version::default()), Version::try_from)
        else {
            return false;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        if params.m_cost() > MAX_VERIFY_M_COST {
            tracing::warn!(
                m_cost = params.m_cost(),
                "a stored password hash asks for more argon2 memory than allowed; refused"
            );
            return false;
        }
        let argon = Argon2::new(algorithm, version, params);
        let mut out = vec![0u8; expected.len()];
        if self
            .compute(&argon, password, salt.as_ref(), &mut out)
            .is_err()
        {
            return false;
        }
        // `Output`'s equality is constant-time.
        Output::new(&out).is_ok_and(|computed| computed == *expected)
    }

    /// The work of a verification against no stored hash: the same parameters as a
    /// real one, so a login takes as long whether or not the account exists.
    fn verify_nothing(&mut self, password: &[u8]) -> bool {
        static SALT: OnceLock<[u8; 16]> = OnceLock::new();
        let salt = SALT.get_or_init(|| try_generate_salt().unwrap_or([7; 16]));
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let _ = self.compute(&argon, password, salt, &mut out);
        false
    }
}

/// What the hashing threads have done so far.
pub fn stats() -> HashingStats {
    HashingStats {
        workers: pool().workers,
        threads_used: THREADS_USED
            .get()
            .and_then(|t| t.lock().ok().map(|t| t.len()))
            .unwrap_or(0),
        memory_areas_allocated: AREAS_ALLOCATED.load(Ordering::Relaxed),
        computed: COMPUTED.load(Ordering::Relaxed),
    }
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) for the password, computed on a
/// hashing thread.
pub async fn hash(password: String) -> AuthResult<String> {
    run(move |memory| memory.hash(password.as_bytes())).await?
}

/// Whether the password matches the PHC string, computed on a hashing thread; with no
/// stored hash, does the same work and answers false.
pub async fn verify(password: String, phc: Option<String>) -> bool {
    run(move |memory| match phc {
        Some(phc) => memory.verify(password.as_bytes(), &phc),
        None => memory.verify_nothing(password.as_bytes()),
    })
    .await
    .unwrap_or(false)
}

/// 8..=128 characters and not a common or easily guessed password (zxcvbn score ≥ 2,
/// which refuses the well-known lists of most common passwords).
pub fn check_policy(password: &str, email: &str) -> AuthResult<()> {
    let length = password.chars().count();
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
        return Err(AuthError::field(
            "password",
            format!("must be between {MIN_LENGTH} and {MAX_LENGTH} characters"),
        ));
    }
    let local_part = email.split('@').next().unwrap_or_default();
    let estimate = zxcvbn::zxcvbn(password, &[email, local_part]);
    if (estimate.score() as u8) < 2 {
        return Err(AuthError::field(
            "password",
            "is too common or too easy to guess; use a longer passphrase",
        ));
    }
    Ok(())
}
