-- Schema versions of handled types that the processor's code has no upcaster for, counted by the build in
-- the batch transaction (so a redelivery or a restart counts nothing twice); `kappa deploy --wait` and
-- `kappa status` name them. Not part of the view's digest.
CREATE TABLE kappa_schema_versions (
  type TEXT NOT NULL,
  version INTEGER NOT NULL,
  count INTEGER NOT NULL,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  PRIMARY KEY (type, version)
) WITHOUT ROWID;
