// The payments tables as diesel sees them, in the shape `diesel print-schema --schema-key payments`
// produces. diesel's CLI links libpq, which the store does not use, so this file is kept
// by hand; `tests/e2e/schema_files.rs` fails when it and the migrations disagree.

diesel::table! {
    payments (id) {
        id -> Int8,
        order_id -> Int8,
        user_id -> Int8,
        provider -> Text,
        status -> Text,
        amount -> Numeric,
        authorized -> Numeric,
        captured -> Numeric,
        refunded -> Numeric,
        currency -> Text,
        reference -> Nullable<Text>,
        client_secret -> Nullable<Text>,
        failure_code -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    payments_idempotency (user_id, endpoint, key) {
        user_id -> Int8,
        endpoint -> Text,
        key -> Text,
        fingerprint -> Text,
        response -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    payments_provider_events (event_id) {
        event_id -> Text,
        provider -> Text,
        event_type -> Text,
        payment_id -> Nullable<Int8>,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    payments_refunds (id) {
        id -> Int8,
        payment_id -> Int8,
        amount -> Numeric,
        reason -> Nullable<Text>,
        provider_refund_id -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(payments_provider_events -> payments (payment_id));
diesel::joinable!(payments_refunds -> payments (payment_id));

diesel::allow_tables_to_appear_in_same_query!(
    payments,
    payments_idempotency,
    payments_provider_events,
    payments_refunds,
);
