CREATE OR REPLACE FUNCTION product_counts_after_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM product_counts_add(key, delta)
    FROM (SELECT coalesce(OLD.category_id, 0) AS key, -1 AS delta
          WHERE OLD.deleted_at IS NULL
          UNION ALL
          SELECT coalesce(NEW.category_id, 0), 1
          WHERE TG_OP = 'UPDATE' AND NEW.deleted_at IS NULL
          ORDER BY 1, 2) AS changes;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION product_counts_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM product_counts_add(key, n)
    FROM (SELECT coalesce(category_id, 0) AS key, count(*) AS n
          FROM inserted WHERE deleted_at IS NULL
          GROUP BY 1 ORDER BY 1) AS per_category;
    RETURN NULL;
END
$$;

DELETE FROM product_counts WHERE category_key = -1;
