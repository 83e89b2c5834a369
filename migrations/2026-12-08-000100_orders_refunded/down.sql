-- The old schema has no `refunded`. A refunded order kept no money, as a cancelled one,
-- and no status leads out of either, so refunded orders become `cancelled` (their history
-- entries too; the reason `refunded` still says what happened). Their stock stays where
-- it is: a refund never returned it, and nothing cancels them again. The day rollups of
-- those orders are only a cache and stay right: both statuses are left out of the sales.
UPDATE orders SET status = 'cancelled', updated_at = now() WHERE status = 'refunded';
UPDATE order_status_history SET to_status = 'cancelled' WHERE to_status = 'refunded';
UPDATE order_status_history SET from_status = 'cancelled' WHERE from_status = 'refunded';

ALTER TABLE order_status_history
    DROP CONSTRAINT order_status_history_to_status_check,
    ADD CONSTRAINT order_status_history_to_status_check
        CHECK (to_status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    DROP CONSTRAINT order_status_history_from_status_check,
    ADD CONSTRAINT order_status_history_from_status_check
        CHECK (from_status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled'));

ALTER TABLE orders
    DROP CONSTRAINT orders_status_check,
    ADD CONSTRAINT orders_status_check
        CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled'));
