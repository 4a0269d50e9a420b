-- The coordinator's tables. OpenSqliteStore applies each schemas/NNNN_name.sql
-- once, in numeric order, inside its own transaction, and records it in
-- schema_migrations; a file therefore holds no BEGIN/COMMIT of its own.
--
-- Empty text and 0 mean "none" (no agent, not finished), as in the store's
-- domain types, so reads need no NULL handling.

CREATE TABLE schema_migrations (
  version    INTEGER PRIMARY KEY,  -- the file name's number
  name       TEXT NOT NULL,        -- the file name, e.g. 0001_initial.sql
  applied_ms INTEGER NOT NULL
);

-- AUTOINCREMENT: sweep and run ids are shown to users and name artifact
-- directories, so an id must never be handed out twice, even after a delete.
CREATE TABLE sweeps (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  name         TEXT NOT NULL,
  method       TEXT NOT NULL,
  source       TEXT NOT NULL,
  yaml         TEXT NOT NULL,
  spec_json    TEXT NOT NULL,
  max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
  created_ms   INTEGER NOT NULL
);
-- FindSweep by name: the most recent sweep of that name.
CREATE INDEX sweeps_by_name ON sweeps (name, id);

CREATE TABLE runs (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  sweep_id         INTEGER NOT NULL REFERENCES sweeps (id),
  idx              INTEGER NOT NULL CHECK (idx >= 0),
  params_json      TEXT NOT NULL,
  params_hash      TEXT NOT NULL,
  state            TEXT NOT NULL DEFAULT 'QUEUED'
                   CHECK (state IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'LOST', 'CANCELLED', 'PRUNED')),
  attempt          INTEGER NOT NULL DEFAULT 0,  -- current attempt; 0: never leased
  agent            TEXT NOT NULL DEFAULT '',
  created_ms       INTEGER NOT NULL,
  started_ms       INTEGER NOT NULL DEFAULT 0,
  finished_ms      INTEGER NOT NULL DEFAULT 0,
  lease_expires_ms INTEGER NOT NULL DEFAULT 0,
  error            TEXT NOT NULL DEFAULT '',
  -- The current attempt's latest losses, kept here so that status and reports
  -- over many runs read one row per run instead of scanning metrics.
  last_step        INTEGER NOT NULL DEFAULT -1,
  content_loss     REAL NOT NULL DEFAULT 0,
  style_loss       REAL NOT NULL DEFAULT 0,
  tv_loss          REAL NOT NULL DEFAULT 0,
  total_loss       REAL NOT NULL DEFAULT 0,
  final_snapshot   TEXT NOT NULL DEFAULT '',
  -- Also the index for listing a sweep's runs in expansion order.
  UNIQUE (sweep_id, idx)
);
-- ClaimNextRun: the first QUEUED run by (sweep_id, idx) is the index's first
-- entry. ExpireLeases reads the RUNNING runs through it too.
CREATE INDEX runs_by_state ON runs (state, sweep_id, idx);

-- One row per lease of a run: RUNNING while held, then how it ended.
CREATE TABLE attempts (
  run_id      INTEGER NOT NULL REFERENCES runs (id),
  attempt     INTEGER NOT NULL CHECK (attempt >= 1),
  agent       TEXT NOT NULL,
  state       TEXT NOT NULL
              CHECK (state IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'LOST', 'CANCELLED', 'PRUNED')),
  started_ms  INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  error       TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, attempt)
) WITHOUT ROWID;

-- Per-step losses: the largest table by far (runs x steps). WITHOUT ROWID
-- stores each row once, in key order, and the key makes a retried report a
-- no-op (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE metrics (
  run_id       INTEGER NOT NULL,
  attempt      INTEGER NOT NULL,
  step         INTEGER NOT NULL CHECK (step >= 0),
  content      REAL NOT NULL,
  style        REAL NOT NULL,
  tv           REAL NOT NULL,
  total        REAL NOT NULL,
  step_seconds REAL NOT NULL,
  PRIMARY KEY (run_id, attempt, step),
  FOREIGN KEY (run_id, attempt) REFERENCES attempts (run_id, attempt)
) WITHOUT ROWID;

CREATE TABLE snapshots (
  run_id   INTEGER NOT NULL,
  attempt  INTEGER NOT NULL,
  step     INTEGER NOT NULL CHECK (step >= 0),
  path     TEXT NOT NULL,  -- relative to the artifacts directory
  is_final INTEGER NOT NULL CHECK (is_final IN (0, 1)),
  PRIMARY KEY (run_id, attempt, step),
  FOREIGN KEY (run_id, attempt) REFERENCES attempts (run_id, attempt)
) WITHOUT ROWID;

CREATE TABLE agents (
  name          TEXT PRIMARY KEY CHECK (name <> ''),
  host          TEXT NOT NULL,
  device        TEXT NOT NULL,
  description   TEXT NOT NULL,
  registered_ms INTEGER NOT NULL,
  last_seen_ms  INTEGER NOT NULL
);
