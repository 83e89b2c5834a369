-- Unpaid orders expire: each pending order carries the moment its payment is due, and
-- the status history says who made each change (a user, an administrator, or the system
-- itself, with a reason such as `payment_timeout`).

-- NULL unless pending: moving an order out of `pending` clears it in the same UPDATE.
ALTER TABLE orders ADD COLUMN payment_due_at TIMESTAMPTZ;
-- Orders already pending get the default window (ORDER_PAYMENT_WINDOW_SECONDS, 1800 s)
-- from now rather than from their placing, so a deploy does not cancel them at once.
UPDATE orders SET payment_due_at = now() + interval '1800 seconds' WHERE status = 'pending';
ALTER TABLE orders ADD CONSTRAINT orders_payment_due_only_when_pending
    CHECK (payment_due_at IS NULL OR status = 'pending');
-- The expiry task: pending orders by due time, claimed a few at a time.
CREATE INDEX orders_pending_due_idx ON orders (payment_due_at, id) WHERE status = 'pending';

ALTER TABLE order_status_history
    ADD COLUMN actor TEXT CHECK (actor IN ('user', 'admin', 'system')),
    ADD COLUMN reason TEXT CHECK (reason <> ''),
    ALTER COLUMN actor_id DROP NOT NULL;
-- Until now every change was made by the order's owner or by an administrator.
UPDATE order_status_history h
    SET actor = CASE WHEN h.actor_id = o.user_id THEN 'user' ELSE 'admin' END
    FROM orders o
    WHERE o.id = h.order_id;
ALTER TABLE order_status_history
    ALTER COLUMN actor SET NOT NULL,
    -- The system acts as no one; users and administrators are always named.
    ADD CONSTRAINT order_status_history_actor_named
        CHECK ((actor = 'system') = (actor_id IS NULL));
