DROP TRIGGER products_counted_delete ON products;
DROP TRIGGER products_counted_update ON products;
DROP TRIGGER products_counted_insert ON products;
DROP FUNCTION product_counts_after_change();
DROP FUNCTION product_counts_after_insert();
DROP FUNCTION product_counts_add(BIGINT, BIGINT);
DROP TABLE product_counts;
