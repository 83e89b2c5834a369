-- Faster sales reports (issue 12): rollup revenue in integer cents (sums over NUMERIC
-- are slow; prices have two decimals, so cents are exact), each day's distinct
-- customers, and month and week rollups built from their day rollups.
-- Rollups are only a cache: they are emptied here and rebuilt by the next report.
TRUNCATE order_rollup_products, order_rollup_status, order_rollup_days;

ALTER TABLE order_rollup_status RENAME COLUMN revenue TO revenue_cents;
ALTER TABLE order_rollup_status ALTER COLUMN revenue_cents TYPE BIGINT;
ALTER TABLE order_rollup_products RENAME COLUMN revenue TO revenue_cents;
ALTER TABLE order_rollup_products ALTER COLUMN revenue_cents TYPE BIGINT;
-- A report reads a period's product rows by an index-only scan of the key; vacuumed
-- (so all-visible) soon after a few days are built rather than after a fifth of the table.
ALTER TABLE order_rollup_products DROP CONSTRAINT order_rollup_products_pkey,
    ADD PRIMARY KEY (day, product_id) INCLUDE (units, revenue_cents, last_order_id);
ALTER TABLE order_rollup_products SET (autovacuum_vacuum_insert_threshold = 20000,
                                       autovacuum_vacuum_insert_scale_factor = 0.01);

-- The sorted distinct ids of the users who placed an order (any status) on the day;
-- a rolled-up day without a row had no orders.
CREATE TABLE order_rollup_customers (
    day       DATE PRIMARY KEY REFERENCES order_rollup_days (day) ON DELETE CASCADE,
    customers BIGINT[] NOT NULL
);

-- Span rollups: a calendar month (UTC), or a week of one (its days 1-7, 8-14, 15-21,
-- 22-28), whose days are all closed and rolled up, summed from those day rollups. A
-- span exists only while all of its days' rollups do: deleting one deletes the spans
-- holding its day (trigger below).
CREATE TABLE order_rollup_spans (
    first    DATE NOT NULL,
    last     DATE NOT NULL CHECK (last > first AND last - first <= 30),
    built_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (first, last)
);

CREATE TABLE order_rollup_span_status (
    first         DATE NOT NULL,
    last          DATE NOT NULL,
    status        TEXT NOT NULL,
    orders        BIGINT NOT NULL,
    revenue_cents BIGINT NOT NULL,
    PRIMARY KEY (first, last, status),
    FOREIGN KEY (first, last) REFERENCES order_rollup_spans (first, last) ON DELETE CASCADE
);

CREATE TABLE order_rollup_span_products (
    first         DATE NOT NULL,
    last          DATE NOT NULL,
    product_id    BIGINT NOT NULL,
    units         BIGINT NOT NULL,
    revenue_cents BIGINT NOT NULL,
    last_order_id BIGINT NOT NULL,
    PRIMARY KEY (first, last, product_id) INCLUDE (units, revenue_cents, last_order_id),
    FOREIGN KEY (first, last) REFERENCES order_rollup_spans (first, last) ON DELETE CASCADE
) WITH (autovacuum_vacuum_insert_threshold = 20000, autovacuum_vacuum_insert_scale_factor = 0.01);

CREATE TABLE order_rollup_span_customers (
    first     DATE NOT NULL,
    last      DATE NOT NULL,
    customers BIGINT[] NOT NULL,
    PRIMARY KEY (first, last),
    FOREIGN KEY (first, last) REFERENCES order_rollup_spans (first, last) ON DELETE CASCADE
);

-- A day's rollup dropped (a status change of one of its orders) drops the spans holding
-- that day in the same transaction, so a snapshot never sees a span without its days.
CREATE FUNCTION order_rollup_drop_spans() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM order_rollup_spans
    WHERE first >= OLD.day - 30 AND first <= OLD.day AND last >= OLD.day;
    RETURN NULL;
END
$$;

CREATE TRIGGER order_rollup_days_drop_spans
    AFTER DELETE ON order_rollup_days
    FOR EACH ROW EXECUTE FUNCTION order_rollup_drop_spans();

-- The live days' top products read each live order's id: with it in the covering
-- index, every live read of the orders is an index-only range scan.
DROP INDEX orders_created_covering_idx;
CREATE INDEX orders_created_covering_idx ON orders (created_at) INCLUDE (id, user_id, status, total_price);
