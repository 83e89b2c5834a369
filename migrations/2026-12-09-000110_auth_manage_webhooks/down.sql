DELETE FROM role_permissions WHERE permission = 'manage:webhooks';
DELETE FROM permissions WHERE name = 'manage:webhooks';
