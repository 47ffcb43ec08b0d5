-- Events a processor with onError: "skip" could not apply, with the error, for `kappa dlq`.
CREATE TABLE kappa_dead_letters (
  seq INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  time TEXT NOT NULL,
  id TEXT NOT NULL,
  data BLOB NOT NULL,
  error TEXT NOT NULL
);
