-- Identity: roles and their permissions, users, and refresh tokens grouped in login families.

CREATE TABLE permissions (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL
);

CREATE TABLE roles (
    name       TEXT PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,49}$'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE role_permissions (
    role       TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    permission TEXT NOT NULL REFERENCES permissions (name) ON DELETE CASCADE,
    PRIMARY KEY (role, permission)
);

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Stored trimmed and lower-cased, so the unique index is case-insensitive.
    email         TEXT NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash TEXT NOT NULL,
    full_name     TEXT CHECK (length(full_name) <= 100),
    bio           TEXT CHECK (length(bio) <= 1000),
    role          TEXT NOT NULL DEFAULT 'user' REFERENCES roles (name),
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_role_idx ON users (role);
CREATE INDEX users_created_at_idx ON users (created_at);
-- Admin search by email or name (ILIKE '%…%').
CREATE INDEX users_email_trgm_idx ON users USING gin (email gin_trgm_ops);
CREATE INDEX users_full_name_trgm_idx ON users USING gin (full_name gin_trgm_ops);

-- One family per login; every rotation adds a token to it. Reuse of a rotated token
-- revokes the whole family (RFC 9700 §4.14.2).
CREATE TABLE refresh_families (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at     TIMESTAMPTZ,
    revoked_reason TEXT
);
CREATE INDEX refresh_families_user_idx ON refresh_families (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    family_id  BIGINT NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    -- SHA-256 of the token; the token itself is never stored.
    token_hash BYTEA NOT NULL UNIQUE,
    parent_id  BIGINT REFERENCES refresh_tokens (id) ON DELETE CASCADE,
    issued_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

INSERT INTO permissions (name, description) VALUES
    ('create:product', 'Create products'),
    ('edit:product', 'Edit products'),
    ('delete:product', 'Delete products'),
    ('manage:products', 'Manage the catalog: categories and products'),
    ('manage:orders', 'See and manage every order'),
    ('manage:users', 'Manage users, roles and bans; read the audit trail'),
    ('view:reports', 'Read sales reports');

INSERT INTO roles (name) VALUES ('admin'), ('user');
INSERT INTO role_permissions (role, permission) SELECT 'admin', name FROM permissions;
