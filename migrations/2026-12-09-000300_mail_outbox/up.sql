-- The mail queue: each mail complete, written in the transaction that makes it necessary
-- (`ecom_core::mail::enqueue`), delivered afterwards by ecom-mail's workers, at least once.
-- A worker leases due mails (FOR UPDATE SKIP LOCKED, then `next_attempt_at` pushed past the
-- send), sends outside any transaction, then marks the mail sent or schedules a retry; a
-- worker that dies mid-send leaves the lease to expire and another sends it again, with the
-- same Message-ID.
CREATE TABLE mail_outbox (
    id BIGSERIAL PRIMARY KEY,
    -- `<…@domain>`, chosen at enqueue; unique, so re-enqueueing the same mail is a no-op.
    message_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at TIMESTAMPTZ
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX mail_outbox_done_idx ON mail_outbox (created_at) WHERE status <> 'pending';
