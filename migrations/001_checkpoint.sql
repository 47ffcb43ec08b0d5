-- The last applied stream sequence, written in the same transaction as the rows it produced.
CREATE TABLE kappa_checkpoint (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  events INTEGER NOT NULL DEFAULT 0
);
INSERT INTO kappa_checkpoint (id, seq, events) VALUES (1, 0, 0);
-- Facts about this view file: processor, version, code hash.
CREATE TABLE kappa_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
