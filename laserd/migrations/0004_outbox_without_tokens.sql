-- Issue 12 item 7: reset and verification mails were stored whole in the outbox, their
-- single-use tokens in plain text (and so in every backup). laserd now stores those bodies
-- with the token removed; this removes the tokens already stored (address, kind and subject
-- stay). Links already mailed keep working until they expire: their hashes are untouched.
-- secure_delete overwrites the old cell contents instead of leaving them in the file's free
-- space (Debian's SQLite has it on by default; other builds may not).
PRAGMA secure_delete = ON;
UPDATE outbox
   SET body = '[removed at upgrade: this message held a single-use token; only its hash is kept]'
 WHERE kind IN ('password_reset', 'verify_email');
