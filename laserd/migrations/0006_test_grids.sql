-- Material test grids (issue 15): which cell of a generated grid file burnt at which power and
-- speed, so the maker can pick the best cell from the file's page and save it as a material.
-- The row goes with its file.
CREATE TABLE test_grids (
    file_id         INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    operation       TEXT    NOT NULL CHECK (operation IN ('fill', 'score', 'cut')),
    request_json    TEXT    NOT NULL,
    cells_json      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL
);
