-- Design files (issue 14): kind 'dxf' joins 'svg', and the file row keeps a design's layer
-- settings and an image's or design's placement (JSON, like laser_json; NULL: defaults).
--
-- SQLite cannot change a CHECK constraint with ALTER TABLE, and rebuilding the table would
-- fire ON DELETE SET NULL on every job that ran a file (foreign keys stay on during
-- migrations). Widening a CHECK changes nothing stored, so the table's definition is edited
-- in place, the documented way (sqlite.org/lang_altertable.html, "other kinds of table schema
-- changes"). writable_schema = RESET makes this connection read the edited definition before
-- the ALTER TABLE statements, which raise the schema version for every other connection.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, 'CHECK (kind IN (''gcode'', ''image'', ''svg''))',
                          'CHECK (kind IN (''gcode'', ''image'', ''svg'', ''dxf''))')
 WHERE type = 'table' AND name = 'files';
PRAGMA writable_schema = RESET;
ALTER TABLE files ADD COLUMN layers_json TEXT;
ALTER TABLE files ADD COLUMN placement_json TEXT;
