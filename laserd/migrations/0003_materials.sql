-- The material library (API.md, "Materials"). A material is shared (everyone sees it; only
-- admins change it) or personal (its owner's). Settings per operation are one JSON object
-- validated by laserd.materials.model.MaterialSettings.
CREATE TABLE materials (
    id              INTEGER PRIMARY KEY,
    -- Who made it. Personal entries go with their owner (trigger below); a shared entry stays
    -- when the admin who made it is deleted (SET NULL), and the starter library has no owner.
    owner_id        INTEGER REFERENCES users (id) ON DELETE SET NULL,
    shared          INTEGER NOT NULL CHECK (shared IN (0, 1)),
    name            TEXT    NOT NULL,
    thickness_mm    REAL,
    description     TEXT    NOT NULL DEFAULT '',
    laser_type      TEXT    CHECK (laser_type IN ('diode', 'co2', 'fiber')),
    settings_json   TEXT    NOT NULL,
    -- Set on entries of the starter library (laserd.materials.starter), so "restore" knows
    -- which of them are missing.
    starter_key     TEXT    UNIQUE,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX materials_owner ON materials (owner_id);
CREATE INDEX materials_name ON materials (name COLLATE NOCASE);

CREATE TRIGGER materials_personal_go_with_owner BEFORE DELETE ON users
BEGIN
    DELETE FROM materials WHERE owner_id = OLD.id AND shared = 0;
END;

-- One row: whether the starter library was ever put in (so a library the admin emptied
-- stays empty across restarts).
CREATE TABLE material_library (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    starter_seeded_at TEXT
);
INSERT INTO material_library (id, starter_seeded_at) VALUES (1, NULL);

-- The material a project's image settings were copied from (API.md: applying a material
-- records which one it was); NULL when none or when that material was deleted.
ALTER TABLE projects ADD COLUMN material_id INTEGER REFERENCES materials (id) ON DELETE SET NULL;
