-- Search (GET /api/v1/search). Message text is found by its words through the 'simple'
-- text-search configuration (no stemming, so any language's words match as written, and a
-- word's beginning matches as it is typed), kept on the row: a rare word is found through
-- the GIN index, a common one by reading the newest rows and testing the stored words, never
-- by parsing text again. Phones and emails are found by any part (digits of a number, a
-- piece of an address) through trigram indexes, as names already are.
ALTER TABLE interactions ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', coalesce(subject, '') || ' ' || coalesce(text, '')))
    STORED;
CREATE INDEX interactions_search ON interactions USING gin (search);
CREATE INDEX lead_phones_trgm ON lead_phones USING gin (phone gin_trgm_ops);
CREATE INDEX lead_emails_trgm ON lead_emails USING gin (email gin_trgm_ops);
