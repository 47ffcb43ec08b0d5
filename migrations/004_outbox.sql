-- Events emitted by ctx.emit, written with the rows and checkpoint, deleted once JetStream acknowledged them.
CREATE TABLE kappa_outbox (
  seq INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  type TEXT NOT NULL,
  -- the input event's time: derived events carry it, so replays downstream see the same times
  time TEXT NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (seq, idx)
);
