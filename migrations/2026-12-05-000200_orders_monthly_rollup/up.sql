-- Faster sales reports (issue 12): rollup revenue in integer cents (sums over NUMERIC
-- are slow; prices have two decimals, so cents are exact), each day's distinct
-- customers, and monthly rollups built from a calendar month's day rollups.
-- Rollups are only a cache: they are emptied here and rebuilt by the next report.
TRUNCATE order_rollup_products, order_rollup_status, order_rollup_days;

ALTER TABLE order_rollup_status RENAME COLUMN revenue TO revenue_cents;
ALTER TABLE order_rollup_status ALTER COLUMN revenue_cents TYPE BIGINT;
ALTER TABLE order_rollup_products RENAME COLUMN revenue TO revenue_cents;
ALTER TABLE order_rollup_products ALTER COLUMN revenue_cents TYPE BIGINT;

-- The sorted distinct ids of the users who placed an order (any status) on the day;
-- a rolled-up day without a row had no orders.
CREATE TABLE order_rollup_customers (
    day       DATE PRIMARY KEY REFERENCES order_rollup_days (day) ON DELETE CASCADE,
    customers BIGINT[] NOT NULL
);

-- A calendar month (UTC) whose days all have a rollup, summed from them. It exists only
-- while all of its days' rollups do: deleting one deletes the month (trigger below).
CREATE TABLE order_rollup_months (
    month    DATE PRIMARY KEY CHECK (extract(day FROM month) = 1),
    built_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE order_rollup_month_status (
    month         DATE NOT NULL REFERENCES order_rollup_months (month) ON DELETE CASCADE,
    status        TEXT NOT NULL,
    orders        BIGINT NOT NULL,
    revenue_cents BIGINT NOT NULL,
    PRIMARY KEY (month, status)
);

CREATE TABLE order_rollup_month_products (
    month         DATE NOT NULL REFERENCES order_rollup_months (month) ON DELETE CASCADE,
    product_id    BIGINT NOT NULL,
    units         BIGINT NOT NULL,
    revenue_cents BIGINT NOT NULL,
    last_order_id BIGINT NOT NULL,
    name          TEXT NOT NULL,
    PRIMARY KEY (month, product_id)
);

CREATE TABLE order_rollup_month_customers (
    month     DATE PRIMARY KEY REFERENCES order_rollup_months (month) ON DELETE CASCADE,
    customers BIGINT[] NOT NULL
);

-- A day's rollup dropped (a status change of one of its orders) drops its month's
-- rollup in the same transaction, so a snapshot never sees a month without its days.
CREATE FUNCTION order_rollup_drop_month() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM order_rollup_months
    WHERE month = OLD.day - (extract(day FROM OLD.day)::int - 1);
    RETURN NULL;
END
$$;

CREATE TRIGGER order_rollup_days_drop_month
    AFTER DELETE ON order_rollup_days
    FOR EACH ROW EXECUTE FUNCTION order_rollup_drop_month();
