-- Orders can be refunded (issue 14): `paid`, `shipped` or `delivered` → `refunded` when
-- their payment's refunds reach the captured amount. Stock is not returned. The status
-- is CHECKed text, in the orders and in both ends of a history entry.
ALTER TABLE orders
    DROP CONSTRAINT orders_status_check,
    ADD CONSTRAINT orders_status_check
        CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'));

ALTER TABLE order_status_history
    DROP CONSTRAINT order_status_history_from_status_check,
    ADD CONSTRAINT order_status_history_from_status_check
        CHECK (from_status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded')),
    DROP CONSTRAINT order_status_history_to_status_check,
    ADD CONSTRAINT order_status_history_to_status_check
        CHECK (to_status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'));
