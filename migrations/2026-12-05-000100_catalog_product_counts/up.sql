-- Catalog: live-product counts per category, so that the unfiltered and per-category
-- listings give an exact `total` without counting the catalog. `category_key` is the
-- category id, 0 for products without one. Each key is spread over 16 slots (a writer uses
-- the slot of its backend) so that concurrent product writes do not queue on one hot row;
-- a total is the sum of a key's slots. Triggers keep the counts in the writing transaction.
CREATE TABLE product_counts (
    category_key BIGINT NOT NULL,
    slot         SMALLINT NOT NULL CHECK (slot BETWEEN 0 AND 15),
    live         BIGINT NOT NULL,
    PRIMARY KEY (category_key, slot)
);

INSERT INTO product_counts (category_key, slot, live)
SELECT coalesce(category_id, 0), 0, count(*)
FROM products
WHERE deleted_at IS NULL
GROUP BY 1;

-- Adds `delta` to a category's count, in this backend's slot.
CREATE FUNCTION product_counts_add(key BIGINT, delta BIGINT) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO product_counts AS c (category_key, slot, live)
    VALUES (key, (pg_backend_pid() % 16)::smallint, delta)
    ON CONFLICT (category_key, slot) DO UPDATE SET live = c.live + EXCLUDED.live;
$$;

-- Inserts are counted once per statement, so a bulk load adds one row per category.
CREATE FUNCTION product_counts_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM product_counts_add(key, n)
    FROM (SELECT coalesce(category_id, 0) AS key, count(*) AS n
          FROM inserted WHERE deleted_at IS NULL
          GROUP BY 1 ORDER BY 1) AS per_category;
    RETURN NULL;
END
$$;

-- A product leaving the catalog, or moving between categories. The two changes are made in
-- key order, so two moves in opposite directions cannot deadlock on the slots.
CREATE FUNCTION product_counts_after_change() RETURNS trigger
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

CREATE TRIGGER products_counted_insert
    AFTER INSERT ON products
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION product_counts_after_insert();

-- Stock and price updates name neither column, so checkouts never reach this trigger.
CREATE TRIGGER products_counted_update
    AFTER UPDATE OF category_id, deleted_at ON products
    FOR EACH ROW
    WHEN (OLD.category_id IS DISTINCT FROM NEW.category_id
          OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION product_counts_after_change();

CREATE TRIGGER products_counted_delete
    AFTER DELETE ON products
    FOR EACH ROW EXECUTE FUNCTION product_counts_after_change();
