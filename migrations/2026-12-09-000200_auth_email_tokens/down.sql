DROP TABLE email_tokens;
ALTER TABLE users DROP COLUMN verification_requested_at, DROP COLUMN email_verified;
