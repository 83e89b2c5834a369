-- Back to one line per product. An order holding two variants of one product at one price
-- keeps them as one line (quantities summed); at different prices the old schema cannot
-- hold the order, and the revert stops rather than change what a customer paid per unit.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM order_lines GROUP BY order_id, product_id
               HAVING count(DISTINCT unit_price) > 1) THEN
        RAISE EXCEPTION 'orders hold variants of one product at different prices; '
                        'the one-line-per-product schema cannot keep them';
    END IF;
END
$$;
WITH firsts AS (
    SELECT order_id, product_id, min(id) AS keep, sum(quantity) AS quantity
    FROM order_lines GROUP BY order_id, product_id HAVING count(*) > 1
), merged AS (
    UPDATE order_lines l SET quantity = f.quantity, line_total = l.unit_price * f.quantity
    FROM firsts f WHERE l.id = f.keep
    RETURNING l.id
)
DELETE FROM order_lines l USING firsts f
WHERE l.order_id = f.order_id AND l.product_id = f.product_id AND l.id <> f.keep;
ALTER TABLE order_lines DROP CONSTRAINT order_lines_one_per_variant;
ALTER TABLE order_lines ADD CONSTRAINT order_lines_one_per_product UNIQUE (order_id, product_id);
ALTER TABLE order_lines DROP COLUMN variant_id, DROP COLUMN sku, DROP COLUMN options;
