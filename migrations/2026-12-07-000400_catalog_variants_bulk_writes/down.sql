-- The function as 2026-12-07-000100_catalog_variants made it.
CREATE OR REPLACE FUNCTION product_variants_after_write() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM product_variants_sync(ARRAY(SELECT DISTINCT product_id FROM old_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        -- (A separate IF: old_rows exists only in UPDATE and DELETE triggers.)
        IF NOT EXISTS (
            SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE (o.product_id, o.sku, o.price, o.options, o.is_default, o.deleted_at)
                  IS DISTINCT FROM (n.product_id, n.sku, n.price, n.options, n.is_default, n.deleted_at)) THEN
            PERFORM product_variants_sync_stock(ARRAY(SELECT DISTINCT product_id FROM new_rows));
        ELSE
            PERFORM product_variants_sync(ARRAY(
                SELECT product_id FROM new_rows UNION SELECT product_id FROM old_rows));
        END IF;
    ELSE
        PERFORM product_variants_sync(ARRAY(SELECT DISTINCT product_id FROM new_rows));
    END IF;
    RETURN NULL;
END
$$;
