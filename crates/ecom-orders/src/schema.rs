// The orders tables as diesel sees them, in the shape `diesel print-schema --schema-key orders`
// produces. diesel's CLI links libpq, which the store does not use, so this file is kept
// by hand; `tests/e2e/schema_files.rs` fails when it and the migrations disagree.

diesel::table! {
    order_idempotency (user_id, key) {
        user_id -> Int8,
        key -> Text,
        fingerprint -> Text,
        order_id -> Nullable<Int8>,
        response -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    order_lines (id) {
        id -> Int8,
        order_id -> Int8,
        product_id -> Int8,
        product_name -> Text,
        unit_price -> Numeric,
        quantity -> Int4,
        line_total -> Numeric,
        variant_id -> Int8,
        sku -> Nullable<Text>,
        options -> Jsonb,
    }
}

diesel::table! {
    order_status_history (id) {
        id -> Int8,
        order_id -> Int8,
        from_status -> Nullable<Text>,
        to_status -> Text,
        actor_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        actor -> Text,
        reason -> Nullable<Text>,
    }
}

diesel::table! {
    orders (id) {
        id -> Int8,
        user_id -> Int8,
        status -> Text,
        total_price -> Numeric,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        payment_due_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(order_idempotency -> orders (order_id));
diesel::joinable!(order_lines -> orders (order_id));
diesel::joinable!(order_status_history -> orders (order_id));

diesel::allow_tables_to_appear_in_same_query!(
    order_idempotency,
    order_lines,
    order_status_history,
    orders,
);
