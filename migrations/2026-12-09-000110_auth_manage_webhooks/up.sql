-- The permission to manage outgoing webhooks (issue 15); admin holds every permission.
INSERT INTO permissions (name, description) VALUES
    ('manage:webhooks', 'Manage outgoing webhooks: endpoints, deliveries, retries');
INSERT INTO role_permissions (role, permission) VALUES ('admin', 'manage:webhooks');
