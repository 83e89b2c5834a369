-- Daily rollups of closed UTC days for the sales report, built lazily by the report
-- itself and dropped for a day whenever an order of that day changes status, so a
-- report reads a few rows per day instead of every order. Days not rolled up yet (today,
-- and yesterday during its first hour) are read from the orders themselves.
CREATE TABLE order_rollup_days (
    day      DATE PRIMARY KEY,
    built_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Orders and revenue per day and status.
CREATE TABLE order_rollup_status (
    day     DATE NOT NULL REFERENCES order_rollup_days (day) ON DELETE CASCADE,
    status  TEXT NOT NULL,
    orders  BIGINT NOT NULL,
    revenue NUMERIC(16,2) NOT NULL,
    PRIMARY KEY (day, status)
);

-- Units and revenue per day and product, cancelled orders left out; `name` is the one
-- on the day's latest line (`last_order_id`).
CREATE TABLE order_rollup_products (
    day           DATE NOT NULL REFERENCES order_rollup_days (day) ON DELETE CASCADE,
    product_id    BIGINT NOT NULL,
    units         BIGINT NOT NULL,
    revenue       NUMERIC(16,2) NOT NULL,
    last_order_id BIGINT NOT NULL,
    name          TEXT NOT NULL,
    PRIMARY KEY (day, product_id)
);

-- Index-only scans for the live days and for distinct customers over a period.
CREATE INDEX orders_created_covering_idx ON orders (created_at) INCLUDE (user_id, status, total_price);
-- The live days' top products: lines of an order without visiting the heap.
CREATE INDEX order_lines_order_covering_idx ON order_lines (order_id) INCLUDE (product_id, product_name, quantity, line_total);
