-- Idempotency records of POST /orders: one per user and Idempotency-Key. The row is
-- inserted first in the order's own transaction, so a racing request with the same key
-- waits on it and then sees the committed order (or owns the key if the first failed).
CREATE TABLE order_idempotency (
    user_id      BIGINT NOT NULL,
    key          TEXT NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    -- SHA-256 (hex) of the canonical request: the merged, sorted lines.
    fingerprint  TEXT NOT NULL,
    -- Set in the same transaction as the record; NULL only while it is being written.
    order_id     BIGINT REFERENCES orders (id) ON DELETE CASCADE,
    -- The 201 body as first sent, replayed verbatim.
    response     JSONB,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (user_id, key)
);

-- Clean-up of expired records.
CREATE INDEX order_idempotency_expires_idx ON order_idempotency (expires_at);
