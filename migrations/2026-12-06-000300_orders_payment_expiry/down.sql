-- The old history cannot say "the system": its changes (expired orders) lose their
-- entries, the order rows keep their status.
DELETE FROM order_status_history WHERE actor = 'system';
ALTER TABLE order_status_history
    DROP CONSTRAINT order_status_history_actor_named,
    ALTER COLUMN actor_id SET NOT NULL,
    DROP COLUMN reason,
    DROP COLUMN actor;

DROP INDEX orders_pending_due_idx;
ALTER TABLE orders
    DROP CONSTRAINT orders_payment_due_only_when_pending,
    DROP COLUMN payment_due_at;
