-- Search methods (random, bayes), duplicate detection and early termination.
--
-- A random or bayes sweep draws its runs from a generator seeded with
-- search_seed; draws counts the points handed out so far, and run i is draw i.
-- A restarted coordinator therefore continues at draw `draws` instead of
-- repeating earlier ones. Grid sweeps record their size as draws.

-- Hex SHA-256 over the YAML text and the bytes of every image it names: two
-- submissions of the same sweep have the same hash, and the second is refused
-- unless the user allows a duplicate. Empty for sweeps stored before this.
ALTER TABLE sweeps ADD COLUMN content_hash   TEXT NOT NULL DEFAULT '';
ALTER TABLE sweeps ADD COLUMN search_seed    INTEGER NOT NULL DEFAULT 0 CHECK (search_seed >= 0);
ALTER TABLE sweeps ADD COLUMN draws          INTEGER NOT NULL DEFAULT 0 CHECK (draws >= 0);
ALTER TABLE sweeps ADD COLUMN run_cap        INTEGER NOT NULL DEFAULT 0 CHECK (run_cap >= 0);  -- 0: the grid
ALTER TABLE sweeps ADD COLUMN max_concurrent INTEGER NOT NULL DEFAULT 0 CHECK (max_concurrent >= 0);  -- 0: no limit
CREATE INDEX sweeps_by_content_hash ON sweeps (content_hash);

-- The point of the search space a bayes run was proposed at (a JSON array,
-- one coordinate per parameter), so the suggester learns from finished runs
-- without inverting their parameters. Empty for grid and older runs.
ALTER TABLE runs ADD COLUMN point_json TEXT NOT NULL DEFAULT '';
-- Set when early termination decides the current attempt should stop: the
-- agent learns it from its next heartbeat or metrics report, and ends the
-- run as PRUNED. A new attempt starts with it cleared.
ALTER TABLE runs ADD COLUMN prune_requested INTEGER NOT NULL DEFAULT 0 CHECK (prune_requested IN (0, 1));
