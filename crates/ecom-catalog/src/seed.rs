//! A realistic demo catalog, loaded in bulk (`INSERT … SELECT FROM generate_series`) so
//! that 100,000 products take seconds: categories, products with varied names, prices,
//! stock and ages, their variants (apparel in sizes and colours, shoes in sizes, the rest
//! one variant), and reviews by the given users with the rating aggregates set.

use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Integer};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::error::CatalogError;
use crate::model::SeedSummary;

/// Category, the nouns of its products, and its price range.
const CATEGORIES: &str = "
    ('Electronics', ARRAY['Headphones','Bluetooth Speaker','Mechanical Keyboard','Wireless Mouse','4K Monitor','USB-C Charger','Webcam','Wi-Fi Router','Smartwatch','Tablet'], 9.99, 1499.99),
    ('Books', ARRAY['Cookbook','Mystery Novel','Travel Guide','Science Fiction Novel','Biography','Poetry Collection','History Book','Graphic Novel'], 4.99, 79.99),
    ('Home & Kitchen', ARRAY['Chef Knife','Cast Iron Skillet','Coffee Grinder','Blender','Cutting Board','Dutch Oven','Kettle','Toaster','Stand Mixer'], 7.99, 499.99),
    ('Garden', ARRAY['Garden Hose','Pruning Shears','Planter','Watering Can','Lawn Mower','Bird Feeder','Compost Bin'], 5.99, 699.99),
    ('Toys & Games', ARRAY['Board Game','Puzzle','Building Blocks','Plush Bear','Remote Control Car','Card Game','Kite'], 3.99, 149.99),
    ('Sports & Outdoors', ARRAY['Yoga Mat','Running Shoes','Tent','Sleeping Bag','Water Bottle','Bicycle Helmet','Dumbbell Set','Backpack'], 6.99, 899.99),
    ('Clothing', ARRAY['T-Shirt','Hoodie','Rain Jacket','Jeans','Wool Socks','Sneakers','Scarf','Baseball Cap'], 4.99, 249.99),
    ('Beauty', ARRAY['Face Cream','Shampoo','Lip Balm','Sunscreen','Perfume','Hair Dryer'], 2.99, 199.99),
    ('Grocery', ARRAY['Espresso Beans','Green Tea','Olive Oil','Dark Chocolate','Honey','Pasta','Granola'], 1.99, 49.99),
    ('Office', ARRAY['Notebook','Fountain Pen','Desk Lamp','Office Chair','Stapler','Whiteboard','Monitor Stand'], 1.99, 599.99),
    ('Pet Supplies', ARRAY['Dog Bed','Cat Tree','Leash','Pet Bowl','Chew Toy','Aquarium'], 3.99, 299.99),
    ('Automotive', ARRAY['Car Vacuum','Jump Starter','Tire Inflator','Dash Cam','Floor Mats','Phone Mount'], 9.99, 399.99)
";

const ADJECTIVES: &str = "(ARRAY['Classic','Compact','Deluxe','Eco','Ergonomic','Essential','Everyday','Heavy-Duty',\
    'Lightweight','Modern','Portable','Premium','Rugged','Smart','Sleek','Vintage','Wireless','Organic','Handmade','Ultra'])";

const SERIES: &str = "(ARRAY['Pro','Max','Mini','Lite','Plus','One','Air','X','S','Go'])";

const SENTENCES: &str = "(ARRAY[\
    'Built to last, with a two-year warranty.',\
    'A customer favourite for everyday use.',\
    'Designed with care and tested by our team.',\
    'Great value for money and easy to clean.',\
    'Ships in recyclable packaging.',\
    'Perfect as a gift for friends and family.',\
    'Made from durable, responsibly sourced materials.',\
    'Compact enough for small spaces.'])";

const COMMENTS: &str = "(ARRAY[\
    'Exactly as described, very happy with it.',\
    'Good quality for the price.',\
    'Arrived quickly and works well.',\
    'Decent, but I expected a bit more.',\
    'Would buy again.',\
    'Not great: it stopped working after a month.',\
    'My family loves it.',\
    'Solid product, fair price.'])";

/// The nouns sold in several variants, one row per variant (`n` 1 is the default; `extra`
/// is added to the product's price): apparel in sizes and colours, shoes in sizes. Other
/// products have one variant without options.
const SHAPES: &str = "
    SELECT noun, ((size_at - 1) * 2 + colour_at)::int AS n,
           jsonb_build_object('Size', size, 'Colour', colour) AS options,
           CASE WHEN size = 'XL' THEN 2.00 ELSE 0 END AS extra
    FROM unnest(ARRAY['T-Shirt','Hoodie','Rain Jacket','Jeans']) AS a(noun)
    CROSS JOIN unnest(ARRAY['S','M','L','XL']) WITH ORDINALITY AS s(size, size_at)
    CROSS JOIN unnest(ARRAY['Black','Navy']) WITH ORDINALITY AS c(colour, colour_at)
    UNION ALL
    SELECT noun, size_at::int, jsonb_build_object('Size', size), 0
    FROM unnest(ARRAY['Running Shoes','Sneakers']) AS b(noun)
    CROSS JOIN unnest(ARRAY['39','40','41','42','43','44']) WITH ORDINALITY AS s(size, size_at)";

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = BigInt)]
    first_id: i64,
    #[diesel(sql_type = BigInt)]
    last_id: i64,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Loads a demo catalog in one transaction: the demo categories (kept when they exist),
/// `products` new products spread over them, and 0 to 5 reviews per product written by
/// `reviewer_ids` (each user at most once per product), with rating aggregates set.
/// Loading again adds another batch of products.
pub async fn seed_demo(
    conn: &mut AsyncPgConnection,
    products: usize,
    reviewer_ids: &[i64],
) -> Result<SeedSummary, CatalogError> {
    let products = i32::try_from(products)
        .map_err(|_| CatalogError::invalid("products", "must be at most 2147483647"))?;
    let reviewers = reviewer_ids.to_vec();
    let summary: SeedSummary = conn
        .transaction::<_, CatalogError, _>(async move |conn| {
            let categories = diesel::sql_query(format!(
                "INSERT INTO categories (name) SELECT category FROM (VALUES {CATEGORIES}) \
             AS spec(category, nouns, min_price, max_price) \
             ON CONFLICT ((lower(name))) DO NOTHING"
            ))
            .execute(conn)
            .await? as i64;

            let inserted: Inserted = diesel::sql_query(format!(
                "WITH spec(category, nouns, min_price, max_price) AS (VALUES {CATEGORIES}),
             noun AS (
                 SELECT c.id AS category_id, s.category, n.noun, s.min_price, s.max_price,
                        (row_number() OVER (ORDER BY s.category, n.noun) - 1)::int AS rn
                 FROM spec s
                 JOIN categories c ON lower(c.name) = lower(s.category)
                 CROSS JOIN LATERAL unnest(s.nouns) AS n(noun)
             ),
             k AS (SELECT count(*)::int AS n FROM noun),
             made AS (
                 SELECT g.i, noun.*, now() - random() * interval '365 days' AS at,
                        round((noun.min_price + (noun.max_price - noun.min_price)
                               * power(random(), 3))::numeric, 2) AS unit_price,
                        CASE WHEN g.i % 11 = 0 THEN 0 ELSE (random() * 500)::int END AS units
                 FROM generate_series(1, $1) AS g(i)
                 CROSS JOIN k
                 JOIN noun ON noun.rn = g.i % k.n
             ),
             ins AS (
                 INSERT INTO products (name, description, price, stock, min_price, max_price,
                                       in_stock, category_id, created_at, updated_at)
                 SELECT
                     {ADJECTIVES}[1 + (i / 7) % 20] || ' ' || noun || ' '
                         || {SERIES}[1 + (i / 3) % 10] || ' ' || (100 + i % 900),
                     'A ' || lower({ADJECTIVES}[1 + (i / 7) % 20]) || ' ' || lower(noun)
                         || ' from our ' || category || ' range. ' || {SENTENCES}[1 + i % 8],
                     unit_price, units, unit_price, unit_price, units > 0,
                     category_id, at, at
                 FROM made
                 ORDER BY at
                 RETURNING id, name, price, stock, created_at
             ),
             shape AS ({SHAPES}),
             -- Each product's variants: one default, or a row per shape of its noun (the
             -- name is `adjective noun series number`), the first the default; the trigger
             -- then writes the products' variant summaries.
             variant AS (
                 INSERT INTO product_variants (product_id, price, stock, options, is_default,
                                               created_at, updated_at)
                 SELECT ins.id, ins.price + coalesce(shape.extra, 0),
                        CASE WHEN coalesce(shape.n, 1) = 1 THEN ins.stock
                             ELSE (ins.id * 7 + shape.n * 13) % 40 END,
                        coalesce(shape.options, '{{}}'::jsonb), coalesce(shape.n, 1) = 1,
                        ins.created_at, ins.created_at
                 FROM ins
                 LEFT JOIN shape
                   ON shape.noun = substring(ins.name FROM '^\\S+ (.+) \\S+ \\S+$')
                 ORDER BY ins.id, shape.n
             )
             SELECT coalesce(min(id), 0) AS first_id, coalesce(max(id), -1) AS last_id,
                    count(*) AS count
             FROM ins"
            ))
            .bind::<Integer, _>(products)
            .get_result(conn)
            .await?;

            let reviews = if reviewers.is_empty() {
                0
            } else {
                diesel::sql_query(format!(
                    "INSERT INTO reviews (product_id, user_id, rating, comment, created_at)
                 SELECT p.id,
                        ($3::bigint[])[1 + ((p.id + j) % cardinality($3::bigint[]))],
                        (ARRAY[5,5,5,4,4,4,4,3,2,1])[1 + floor(random() * 10)::int],
                        {COMMENTS}[1 + floor(random() * 8)::int],
                        p.created_at + random() * (now() - p.created_at)
                 FROM products p
                 CROSS JOIN LATERAL generate_series(
                     0, least(p.id % 6, cardinality($3::bigint[])) - 1) AS j
                 WHERE p.id BETWEEN $1 AND $2
                 ON CONFLICT ON CONSTRAINT reviews_one_per_user DO NOTHING"
                ))
                .bind::<BigInt, _>(inserted.first_id)
                .bind::<BigInt, _>(inserted.last_id)
                .bind::<Array<BigInt>, _>(&reviewers)
                .execute(conn)
                .await? as i64
            };

            diesel::sql_query(
                "UPDATE products p SET review_count = r.n, rating_sum = r.s
             FROM (SELECT product_id, count(*)::int AS n, sum(rating)::bigint AS s
                   FROM reviews WHERE product_id BETWEEN $1 AND $2 GROUP BY product_id) r
             WHERE p.id = r.product_id",
            )
            .bind::<BigInt, _>(inserted.first_id)
            .bind::<BigInt, _>(inserted.last_id)
            .execute(conn)
            .await?;

            Ok(SeedSummary {
                categories,
                products: inserted.count,
                reviews,
            })
        })
        .await?;
    // Fresh statistics, so the planner picks the listing indexes at once rather than
    // after autovacuum's next pass over a table that just grew.
    conn.batch_execute("ANALYZE categories; ANALYZE products; ANALYZE reviews;")
        .await?;
    Ok(summary)
}
