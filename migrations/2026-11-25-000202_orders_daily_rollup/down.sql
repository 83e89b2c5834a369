DROP INDEX order_lines_order_covering_idx;
DROP INDEX orders_created_covering_idx;
DROP TABLE order_rollup_products;
DROP TABLE order_rollup_status;
DROP TABLE order_rollup_days;
