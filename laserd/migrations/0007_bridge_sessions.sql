-- GRBL bridge sessions (issue 17) are recorded in job history beside the web's jobs: where a
-- job came from ('web' or 'bridge'), the client's address for a bridge session, and how a
-- session ended (client closed, ended by a user, idle timeout, client vanished, interlock ...).
ALTER TABLE jobs ADD COLUMN source TEXT NOT NULL DEFAULT 'web' CHECK (source IN ('web', 'bridge'));
ALTER TABLE jobs ADD COLUMN peer TEXT;
ALTER TABLE jobs ADD COLUMN end_reason TEXT;
