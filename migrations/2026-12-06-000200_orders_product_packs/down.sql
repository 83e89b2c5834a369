-- Back to a row per span and product. Span rollups are only a cache: they are dropped
-- here and rebuilt from the day rows (which stayed) by the next report.
DELETE FROM order_rollup_spans;
DROP TABLE order_rollup_span_product_packs;
DROP TABLE order_rollup_product_packs;

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
