DROP TABLE refresh_tokens;
DROP TABLE refresh_families;
DROP TABLE users;
DROP TABLE role_permissions;
DROP TABLE roles;
DROP TABLE permissions;
