DROP INDEX orders_created_covering_idx;
CREATE INDEX orders_created_covering_idx ON orders (created_at) INCLUDE (user_id, status, total_price);
DROP TRIGGER order_rollup_days_drop_spans ON order_rollup_days;
DROP FUNCTION order_rollup_drop_spans();
DROP TABLE order_rollup_span_customers;
DROP TABLE order_rollup_span_products;
DROP TABLE order_rollup_span_status;
DROP TABLE order_rollup_spans;
DROP TABLE order_rollup_customers;

-- The day rollups stay, their revenue back in NUMERIC.
ALTER TABLE order_rollup_products RESET (autovacuum_vacuum_insert_threshold,
                                         autovacuum_vacuum_insert_scale_factor);
ALTER TABLE order_rollup_products DROP CONSTRAINT order_rollup_products_pkey,
    ADD PRIMARY KEY (day, product_id);
ALTER TABLE order_rollup_products ALTER COLUMN revenue_cents TYPE NUMERIC(16,2)
    USING revenue_cents::numeric / 100;
ALTER TABLE order_rollup_products RENAME COLUMN revenue_cents TO revenue;
ALTER TABLE order_rollup_status ALTER COLUMN revenue_cents TYPE NUMERIC(16,2)
    USING revenue_cents::numeric / 100;
ALTER TABLE order_rollup_status RENAME COLUMN revenue_cents TO revenue;
