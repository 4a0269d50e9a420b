-- What a client may not do to stored results (see the protocol's header).
--
-- A run that FAILED because a loss became NaN or infinite: the step where it
-- did. Its finite losses before that step and its last finite image are kept;
-- reports and search rank it below every run that did not diverge.
ALTER TABLE runs ADD COLUMN diverged_step INTEGER NOT NULL DEFAULT -1 CHECK (diverged_step >= -1);

-- The digest of each snapshot's bytes, so a retried upload of the same image
-- is recognised and different bytes for a stored step are refused rather than
-- replacing the file behind its record. Empty for snapshots stored before.
ALTER TABLE snapshots ADD COLUMN sha256 TEXT NOT NULL DEFAULT '';

-- Bayes sweeps that may still propose runs, found without reading every
-- sweep (a lease must not cost more as finished sweeps pile up).
CREATE INDEX sweeps_open_search ON sweeps (id) WHERE method = 'bayes' AND draws < run_cap;


-- A sweep's totals (runs by state, steps run) read from this index alone:
-- paging through a sweep of 100,000 runs, or listing 10,000 sweeps, never
-- reads the runs' parameters.
CREATE INDEX runs_totals ON runs (sweep_id, state, last_step);
