-- Bulk-loads :orders orders (default run: 1,000,000) with 1-3 lines each, spread over
-- the last 365 days, 50,000 customers and :products products (default 100,000), every
-- status represented. For benchmarks only (bench/run.sh runs it): on a migrated database,
--   psql "$DATABASE_URL" -v orders=1000000 -v products=100000 -f bench/load_orders.sql
\set ON_ERROR_STOP on
\if :{?products}
\else
  \set products 100000
\endif
BEGIN;
CREATE TEMP TABLE bench_lines ON COMMIT DROP AS
SELECT o AS order_id,
       1 + ((o * 31 + l * 7919) % :products) AS product_id,
       (1 + ((o + l) % 4))::int AS quantity,
       round((1 + ((o * 13 + l * 17) % 20000) / 100.0)::numeric, 2) AS unit_price
FROM generate_series(1::bigint, :orders) AS o,
     LATERAL generate_series(1::bigint, 1 + (o % 3)) AS l;

INSERT INTO orders (id, user_id, status, total_price, created_at, updated_at)
SELECT t.order_id,
       1 + (t.order_id * 7919 % 50000),
       (ARRAY['pending', 'paid', 'shipped', 'delivered', 'delivered', 'delivered', 'cancelled'])[1 + (t.order_id * 37 % 7)],
       t.total,
       c.at,
       c.at
FROM (SELECT order_id, sum(unit_price * quantity) AS total FROM bench_lines GROUP BY order_id) AS t,
     LATERAL (SELECT now() - ((t.order_id * 104729 % 31536000) * interval '1 second') AS at) AS c;

-- History names the product's id as the variant, as the variants migration does for lines
-- placed before variants (the reports read products, not variants). A database of a binary
-- from before variants (a before/after comparison) has no variant column yet.
SELECT EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'order_lines' AND column_name = 'variant_id') AS has_variants
\gset
\if :has_variants
INSERT INTO order_lines (order_id, product_id, variant_id, product_name, unit_price, quantity, line_total)
SELECT order_id, product_id, product_id, 'Product ' || product_id, unit_price, quantity, unit_price * quantity
FROM bench_lines;
\else
INSERT INTO order_lines (order_id, product_id, product_name, unit_price, quantity, line_total)
SELECT order_id, product_id, 'Product ' || product_id, unit_price, quantity, unit_price * quantity
FROM bench_lines;
\endif

SELECT setval(pg_get_serial_sequence('orders', 'id'), (SELECT max(id) FROM orders));
COMMIT;
ANALYZE orders;
ANALYZE order_lines;
