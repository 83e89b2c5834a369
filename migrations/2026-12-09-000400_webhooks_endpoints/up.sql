-- Outgoing webhooks (issue 15): the endpoints administrators register, and one delivery
-- per (endpoint, event) that the `webhooks` outbox consumer fans out.
CREATE TABLE webhook_endpoints (
    id BIGSERIAL PRIMARY KEY,
    url TEXT NOT NULL CHECK (url ~ '^https?://'),
    -- Subscription patterns: a type (`order.created`), a prefix (`order.*`) or `*`.
    events TEXT[] NOT NULL CHECK (cardinality(events) > 0),
    description TEXT,
    -- `whsec_<base64>`: kept to sign deliveries; shown once, at creation.
    secret TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT true,
    -- `too_many_failures` when the store disabled it; null otherwise.
    disabled_reason TEXT,
    -- `failed` deliveries in a row; a success resets it.
    consecutive_failures INT NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    endpoint_id BIGINT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- No foreign key: events are kept EVENT_RETENTION_DAYS, deliveries keep their body.
    event_id BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    -- The exact bytes sent at every attempt (the event envelope as JSON).
    body BYTEA NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    -- Attempts made since the delivery was queued (a manual retry starts again at 0).
    attempts INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    response_code INT,
    last_error TEXT,
    -- Pending: when the next attempt is due. A worker that claims the delivery moves it
    -- forward by its lease, so a delivery whose worker died is retried when that expires.
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Each event is fanned out once per endpoint.
    UNIQUE (endpoint_id, event_id)
);
-- The workers' claim and wake-up time: per endpoint, its earliest due pending deliveries.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_created_idx ON webhook_deliveries (created_at);
