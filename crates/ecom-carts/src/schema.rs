// The carts tables as diesel sees them, in the shape `diesel print-schema --schema-key carts`
// produces. diesel's CLI links libpq, which the store does not use, so this file is kept
// by hand; `tests/e2e/schema_files.rs` fails when it and the migrations disagree.

diesel::table! {
    cart_lines (cart_id, variant_id) {
        cart_id -> Int8,
        variant_id -> Int8,
        product_id -> Int8,
        quantity -> Int4,
        acknowledged_price -> Numeric,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    carts (id) {
        id -> Int8,
        user_id -> Nullable<Int8>,
        token_hash -> Nullable<Bytea>,
        status -> Text,
        order_id -> Nullable<Int8>,
        checkout_key -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::joinable!(cart_lines -> carts (cart_id));

diesel::allow_tables_to_appear_in_same_query!(cart_lines, carts,);
