-- Extensions shared by the domains: trigram matching for typo-tolerant search.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
