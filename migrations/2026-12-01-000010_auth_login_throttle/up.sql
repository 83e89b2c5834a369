-- Login attempts per key (`email:<address>` or `addr:<ip>`) in a fixed window, shared by
-- every replica. An attempt is counted before its password is verified, with one
-- INSERT … ON CONFLICT … RETURNING, so concurrent guesses each see their own count.
CREATE TABLE login_throttle (
    key               TEXT PRIMARY KEY CHECK (length(key) <= 300),
    attempts          INTEGER NOT NULL CHECK (attempts >= 0),
    window_started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at        TIMESTAMPTZ NOT NULL
);
-- The periodic clean-up takes expired rows by this index, a bounded batch at a time.
CREATE INDEX login_throttle_expires_idx ON login_throttle (expires_at);
