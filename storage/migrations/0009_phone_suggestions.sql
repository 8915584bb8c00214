-- Phones found where a customer did not give them as theirs (an email signature) are offered
-- on the lead for an operator to add or dismiss; a dismissed one is never offered again.
ALTER TABLE leads
    ADD COLUMN phone_suggestions text[] NOT NULL DEFAULT '{}',
    ADD COLUMN dismissed_phone_suggestions text[] NOT NULL DEFAULT '{}';
