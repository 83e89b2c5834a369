// The catalog tables as diesel sees them, in the shape `diesel print-schema --schema-key catalog`
// produces. diesel's CLI links libpq, which the store does not use, so this file is kept
// by hand; `tests/e2e/schema_files.rs` fails when it and the migrations disagree.

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "tsvector", schema = "pg_catalog"))]
    pub struct Tsvector;
}

diesel::table! {
    categories (id) {
        id -> Int8,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    product_counts (category_key, slot) {
        category_key -> Int8,
        slot -> Int2,
        live -> Int8,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Tsvector;

    products (id) {
        id -> Int8,
        name -> Text,
        description -> Text,
        price -> Numeric,
        stock -> Int4,
        category_id -> Nullable<Int8>,
        review_count -> Int4,
        rating_sum -> Int8,
        avg_rating -> Nullable<Float8>,
        search_vector -> Tsvector,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        min_price -> Numeric,
        max_price -> Numeric,
        in_stock -> Bool,
        variants -> Json,
        options -> Json,
    }
}

diesel::table! {
    product_variants (id) {
        id -> Int8,
        product_id -> Int8,
        sku -> Nullable<Text>,
        price -> Numeric,
        stock -> Int4,
        options -> Jsonb,
        option_signature -> Text,
        is_default -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    reviews (id) {
        id -> Int8,
        product_id -> Int8,
        user_id -> Int8,
        rating -> Int2,
        comment -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(product_variants -> products (product_id));
diesel::joinable!(products -> categories (category_id));
diesel::joinable!(reviews -> products (product_id));

diesel::allow_tables_to_appear_in_same_query!(
    categories,
    product_counts,
    product_variants,
    products,
    reviews,
);
