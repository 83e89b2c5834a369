-- Orders: one line per variant. A line copies the variant's id, SKU and options at order
-- time, as it already copies the product's name and the unit price, so order history never
-- reads the catalog.
--
-- Lines placed before variants existed bought their product's only variant, which the
-- catalog's variants migration gave the product's own id: their variant id is their
-- product id, with no SKU and no options.
ALTER TABLE order_lines
    ADD COLUMN variant_id BIGINT,
    ADD COLUMN sku        TEXT,
    ADD COLUMN options    JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(options) = 'object');
UPDATE order_lines SET variant_id = product_id;
ALTER TABLE order_lines ALTER COLUMN variant_id SET NOT NULL;

-- Duplicate lines are merged per variant: two sizes of one product are two lines.
ALTER TABLE order_lines DROP CONSTRAINT order_lines_one_per_product;
ALTER TABLE order_lines ADD CONSTRAINT order_lines_one_per_variant UNIQUE (order_id, variant_id);
