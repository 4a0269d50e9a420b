-- Agents as users watch them (`stylesweep agents`): the device each runs on,
-- what it is doing, and how its runs went.
--
-- The live columns (run_id .. draining) are the agent's latest report; an
-- agent is "lost" when last_seen_ms is older than a lease, which is derived
-- at read time, not stored. Registration resets the live columns and keeps
-- the history, so a broken agent that restarts stays quarantined.
ALTER TABLE agents ADD COLUMN device_name          TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN memory_bytes         INTEGER NOT NULL DEFAULT 0 CHECK (memory_bytes >= 0);
ALTER TABLE agents ADD COLUMN slots                INTEGER NOT NULL DEFAULT 1 CHECK (slots >= 1);
ALTER TABLE agents ADD COLUMN run_id               INTEGER NOT NULL DEFAULT 0;  -- 0: idle
ALTER TABLE agents ADD COLUMN attempt              INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN step                 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN steps                INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN steps_per_second     REAL NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN draining             INTEGER NOT NULL DEFAULT 0 CHECK (draining IN (0, 1));
-- Runs ended by this agent: consecutive FAILED ones (reset by any other
-- outcome), all FAILED ones, and all.
ALTER TABLE agents ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN failures             INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN runs_finished        INTEGER NOT NULL DEFAULT 0;
-- Non-empty: quarantined, and why. No run is leased to it until a user
-- releases it (`stylesweep agents --release NAME`).
ALTER TABLE agents ADD COLUMN quarantine_reason    TEXT NOT NULL DEFAULT '';

-- The tail of the agent's log when an attempt failed, and the run's copy for
-- its current attempt (cleared by a new claim, like error).
ALTER TABLE attempts ADD COLUMN log_tail TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN log_tail TEXT NOT NULL DEFAULT '';

-- A run that ran out of device memory on an agent is not given to that agent
-- again; it goes to another one, and fails for good once every agent that
-- could take it has tried.
CREATE TABLE run_avoids_agent (
  run_id INTEGER NOT NULL REFERENCES runs (id),
  agent  TEXT NOT NULL,
  PRIMARY KEY (run_id, agent)
) WITHOUT ROWID;
