-- The outbox: every domain event, written in the transaction of the change it describes.
--
-- Ids grow in commit order. A writer inserts a draft (a negative id from
-- `events_draft_id_seq`, no sequence), visible to nobody else; at COMMIT a deferred trigger
-- takes a transaction-level advisory lock, draws the real id and the aggregate's next
-- sequence, and the lock is released only after the transaction is visible. So no
-- transaction draws an id while one holding a smaller id is still uncommitted, whatever
-- else it does (a payment provider's call) before it commits: a reader that sees id n sees
-- every id below n, and "everything after n" never skips one that commits late.
CREATE SEQUENCE events_draft_id_seq;
CREATE SEQUENCE events_id_seq;

CREATE TABLE events (
    id BIGINT PRIMARY KEY DEFAULT -nextval('events_draft_id_seq'),
    event_type TEXT NOT NULL CHECK (event_type ~ '^[a-z_]+\.[a-z_]+$'),
    aggregate_type TEXT NOT NULL,
    aggregate_id BIGINT NOT NULL,
    -- 1, 2, 3, ... per aggregate, no gaps; drawn at commit (NULL only in a draft).
    sequence BIGINT CHECK (sequence > 0),
    -- The user whose order or payment this is: what GET /users/me/events shows.
    owner_id BIGINT,
    data JSONB NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (aggregate_type, aggregate_id, sequence)
);
ALTER SEQUENCE events_id_seq OWNED BY events.id;
ALTER SEQUENCE events_draft_id_seq OWNED BY events.id;
CREATE INDEX events_owner_idx ON events (owner_id, id) WHERE owner_id IS NOT NULL;
CREATE INDEX events_occurred_idx ON events (occurred_at);

-- Runs at COMMIT, once per draft, in insertion order. The lock key is
-- ecom_core::events::OUTBOX_LOCK. Each statement of a volatile PL/pgSQL function takes a
-- fresh snapshot under READ COMMITTED, so the max() below, run after the lock, sees every
-- earlier commit.
CREATE FUNCTION events_commit_draft() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7305805536337163362);
    UPDATE events SET
        id = nextval('events_id_seq'),
        sequence = coalesce((
            SELECT max(e.sequence) FROM events e
            WHERE e.aggregate_type = NEW.aggregate_type AND e.aggregate_id = NEW.aggregate_id
        ), 0) + 1
    WHERE id = NEW.id;
    PERFORM pg_notify('ecom_events', '');
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER events_commit_draft AFTER INSERT ON events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION events_commit_draft();

-- How far each outbox consumer (webhook fan-out, NATS bridge, order mails) has got. One
-- replica at a time moves a cursor (`FOR UPDATE SKIP LOCKED` on its row).
CREATE TABLE event_cursors (
    consumer TEXT PRIMARY KEY,
    last_event_id BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
