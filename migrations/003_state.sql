-- Serialized state of windows and synopses, keyed by helper name and key; written in the batch transaction.
CREATE TABLE kappa_state (
  name TEXT NOT NULL,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (name, key)
) WITHOUT ROWID;
-- Events that arrived after their window closed (beyond the allowed lateness): never dropped silently.
CREATE TABLE kappa_late_events (
  seq INTEGER NOT NULL,
  window_name TEXT NOT NULL,
  key TEXT NOT NULL,
  window_start TEXT NOT NULL,
  window_end TEXT NOT NULL,
  event_time TEXT NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (seq, window_name, window_start)
);
