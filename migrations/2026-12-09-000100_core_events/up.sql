-- The outbox: every domain event, written in the transaction of the change it describes.
-- `id` grows in commit order: `ecom_core::events::record` takes a transaction-level
-- advisory lock before it draws an id, held until commit, so no transaction draws an id
-- while another one holding a smaller id is still open.
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    event_type TEXT NOT NULL CHECK (event_type ~ '^[a-z_]+\.[a-z_]+$'),
    aggregate_type TEXT NOT NULL,
    aggregate_id BIGINT NOT NULL,
    -- 1, 2, 3, ... per aggregate, no gaps (drawn under the same lock).
    sequence BIGINT NOT NULL CHECK (sequence > 0),
    -- The user whose order or payment this is: what GET /users/me/events shows.
    owner_id BIGINT,
    data JSONB NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (aggregate_type, aggregate_id, sequence)
);
CREATE INDEX events_owner_idx ON events (owner_id, id) WHERE owner_id IS NOT NULL;
CREATE INDEX events_occurred_idx ON events (occurred_at);

-- How far each outbox consumer (webhook fan-out, NATS bridge, order mails) has got. One
-- replica at a time moves a cursor (`FOR UPDATE SKIP LOCKED` on its row).
CREATE TABLE event_cursors (
    consumer TEXT PRIMARY KEY,
    last_event_id BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
