-- A write of many variants in one statement (a bulk restock in SQL, a product's variants
-- deleted at once) must cost what its rows cost. The stock-only test asked "does any row
-- change more than its stock?" with NOT EXISTS over a join of the transition tables;
-- PostgreSQL planned that for the first row (a nested loop, which has no statistics
-- to refuse) and so compared every old row with every new one when none differed:
-- 9 million comparisons for 3,000 rows, 2.6 s. Counting needs every row, so the join is
-- hashed: linear in the rows, the same for one row.
CREATE OR REPLACE FUNCTION product_variants_after_write() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM product_variants_sync(ARRAY(SELECT DISTINCT product_id FROM old_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        -- (A separate IF: old_rows exists only in UPDATE and DELETE triggers.)
        IF (SELECT count(*) FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE (o.product_id, o.sku, o.price, o.options, o.is_default, o.deleted_at)
                  IS DISTINCT FROM (n.product_id, n.sku, n.price, n.options, n.is_default, n.deleted_at)) = 0 THEN
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
