-- Catalog: the whole catalog's live-product count under its own key (-1), kept by the same
-- triggers as the per-category keys, so that the unfiltered listing's `total` sums at most
-- 16 slots instead of every category's (16 per category: thousands of rows per listing in
-- a shop with hundreds of categories).
INSERT INTO product_counts (category_key, slot, live)
SELECT -1, 0, count(*) FROM products WHERE deleted_at IS NULL;

-- Inserts are counted once per statement, so a bulk load adds one row per category, and the
-- total first (keys in order, as every writer takes them).
CREATE OR REPLACE FUNCTION product_counts_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM product_counts_add(key, n)
    FROM (SELECT -1 AS key, count(*) AS n FROM inserted WHERE deleted_at IS NULL
          HAVING count(*) > 0
          UNION ALL
          SELECT coalesce(category_id, 0), count(*)
          FROM inserted WHERE deleted_at IS NULL
          GROUP BY 1 ORDER BY 1) AS per_category;
    RETURN NULL;
END
$$;

-- A product leaving the catalog, or moving between categories (the total changes only when
-- it leaves). The changes are made in key order, so two writers cannot deadlock on the slots.
CREATE OR REPLACE FUNCTION product_counts_after_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM product_counts_add(key, delta)
    FROM (SELECT key, sum(delta) AS delta
          FROM (SELECT coalesce(OLD.category_id, 0) AS key, -1 AS delta
                WHERE OLD.deleted_at IS NULL
                UNION ALL
                SELECT -1, -1 WHERE OLD.deleted_at IS NULL
                UNION ALL
                SELECT coalesce(NEW.category_id, 0), 1
                WHERE TG_OP = 'UPDATE' AND NEW.deleted_at IS NULL
                UNION ALL
                SELECT -1, 1 WHERE TG_OP = 'UPDATE' AND NEW.deleted_at IS NULL) AS changes
          GROUP BY key HAVING sum(delta) <> 0 ORDER BY key) AS net;
    RETURN NULL;
END
$$;
