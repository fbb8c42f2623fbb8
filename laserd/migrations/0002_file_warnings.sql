-- Processing warnings of a file (the job leaves the bed, S above $30, ...): a JSON list of
-- human sentences shown with the file; NULL until the file has been processed.
ALTER TABLE files ADD COLUMN warnings_json TEXT;
