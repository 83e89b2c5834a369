DROP INDEX refresh_families_revoked_idx;
DROP INDEX refresh_tokens_expires_idx;
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_parent_id_fkey,
    ADD CONSTRAINT refresh_tokens_parent_id_fkey
        FOREIGN KEY (parent_id) REFERENCES refresh_tokens (id) ON DELETE CASCADE;
