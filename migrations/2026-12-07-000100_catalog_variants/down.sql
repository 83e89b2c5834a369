-- Back to one price and one stock per product: the product keeps its default variant's
-- (which it already mirrors); other variants are lost, as the old schema cannot hold them.
DROP TRIGGER product_variants_after_insert ON product_variants;
DROP TRIGGER product_variants_after_update ON product_variants;
DROP TRIGGER product_variants_after_delete ON product_variants;
DROP FUNCTION product_variants_after_write();
DROP FUNCTION product_variants_sync(BIGINT[]);
DROP FUNCTION product_variants_sync_stock(BIGINT[]);
DROP INDEX products_min_price_idx;
DROP INDEX products_max_price_idx;
CREATE INDEX products_price_idx ON products (price, id) WHERE deleted_at IS NULL;
ALTER TABLE products
    DROP COLUMN min_price,
    DROP COLUMN max_price,
    DROP COLUMN in_stock,
    DROP COLUMN variants,
    DROP COLUMN options;
DROP TABLE product_variants;
