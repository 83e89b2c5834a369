-- Faster top products (issue 12): each rolled-up day's and span's product sums packed in
-- one value, 32 bytes per product ordered by id (product id, units, revenue in cents and
-- last order id, each as int8send's 8 big-endian bytes), summed by the report in Rust
-- instead of by a HashAggregate over tens of thousands of rows. Stored uncompressed
-- (EXTERNAL), so the report reads a pack in slices without decompressing all of it. A
-- day or span that sold nothing has no pack. The day rows stay: packs are built from them.
CREATE TABLE order_rollup_product_packs (
    day      DATE PRIMARY KEY REFERENCES order_rollup_days (day) ON DELETE CASCADE,
    products BYTEA NOT NULL
);
ALTER TABLE order_rollup_product_packs ALTER COLUMN products SET STORAGE EXTERNAL;

CREATE TABLE order_rollup_span_product_packs (
    first    DATE NOT NULL,
    last     DATE NOT NULL,
    products BYTEA NOT NULL,
    PRIMARY KEY (first, last),
    FOREIGN KEY (first, last) REFERENCES order_rollup_spans (first, last) ON DELETE CASCADE
);
ALTER TABLE order_rollup_span_product_packs ALTER COLUMN products SET STORAGE EXTERNAL;

-- The rollups already built are packed here rather than rebuilt.
INSERT INTO order_rollup_product_packs (day, products)
SELECT day, string_agg(int8send(product_id) || int8send(units) || int8send(revenue_cents)
                       || int8send(last_order_id), ''::bytea ORDER BY product_id)
FROM order_rollup_products GROUP BY day;

INSERT INTO order_rollup_span_product_packs (first, last, products)
SELECT first, last, string_agg(int8send(product_id) || int8send(units) || int8send(revenue_cents)
                               || int8send(last_order_id), ''::bytea ORDER BY product_id)
FROM order_rollup_span_products GROUP BY first, last;

DROP TABLE order_rollup_span_products;
