// The auth tables as diesel sees them, in the shape `diesel print-schema --schema-key auth`
// produces. diesel's CLI links libpq, which the store does not use, so this file is kept
// by hand; `tests/e2e/schema_files.rs` fails when it and the migrations disagree.

diesel::table! {
    email_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        kind -> Text,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        voided_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        attempts -> Int4,
        window_started_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    permissions (name) {
        name -> Text,
        description -> Text,
    }
}

diesel::table! {
    refresh_families (id) {
        id -> Int8,
        user_id -> Int8,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Int8,
        family_id -> Int8,
        token_hash -> Bytea,
        parent_id -> Nullable<Int8>,
        issued_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    role_permissions (role, permission) {
        role -> Text,
        permission -> Text,
    }
}

diesel::table! {
    roles (name) {
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        email -> Text,
        password_hash -> Text,
        full_name -> Nullable<Text>,
        bio -> Nullable<Text>,
        role -> Text,
        is_active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        email_verified -> Bool,
        verification_requested_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(email_tokens -> users (user_id));
diesel::joinable!(refresh_families -> users (user_id));
diesel::joinable!(refresh_tokens -> refresh_families (family_id));
diesel::joinable!(role_permissions -> permissions (permission));
diesel::joinable!(role_permissions -> roles (role));
diesel::joinable!(users -> roles (role));

diesel::allow_tables_to_appear_in_same_query!(
    email_tokens,
    login_throttle,
    permissions,
    refresh_families,
    refresh_tokens,
    role_permissions,
    roles,
    users,
);
