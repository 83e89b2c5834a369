-- Old refresh tokens are deleted by a periodic clean-up. Deleting a token must not
-- delete its (possibly live) child, so the parent link no longer cascades.
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_parent_id_fkey,
    ADD CONSTRAINT refresh_tokens_parent_id_fkey
        FOREIGN KEY (parent_id) REFERENCES refresh_tokens (id) ON DELETE SET NULL;
-- The clean-up finds expired tokens and dead families by these.
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
CREATE INDEX refresh_families_revoked_idx ON refresh_families (revoked_at) WHERE revoked_at IS NOT NULL;
