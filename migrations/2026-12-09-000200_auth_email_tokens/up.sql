-- Whether the account's owner has shown they read its mailbox (a verification or reset link).
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT false,
    -- The last `POST /auth/verify-email/request` (not the mail at register): one per 60 s.
    ADD COLUMN verification_requested_at TIMESTAMPTZ;

-- Single-use tokens mailed to a user: 256 random bits, stored only as their SHA-256.
-- A token is good while unused, not voided (by a newer one of the same kind) and not expired;
-- using it is one conditional UPDATE, so of concurrent uses exactly one wins.
CREATE TABLE email_tokens (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('verify_email', 'reset_password')),
    token_hash BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    voided_at TIMESTAMPTZ
);
-- Voiding the older tokens of a kind finds them by this.
CREATE INDEX email_tokens_user_kind_idx ON email_tokens (user_id, kind) WHERE used_at IS NULL AND voided_at IS NULL;
-- The retention chore finds old tokens by this.
CREATE INDEX email_tokens_expires_idx ON email_tokens (expires_at);
