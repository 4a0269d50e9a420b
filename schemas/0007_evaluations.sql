-- Evaluation metrics (common/evaluation.h): measures of a run's image that
-- mean the same in every run of a sweep, so runs with different loss
-- weights, layers or sizes can be ranked against each other.
--
-- One row per evaluated step (step 0, snapshots, rungs, the last step): a
-- few per run, beside the metrics row of the same step. Apart from metrics
-- so that the largest table keeps its rows small.
CREATE TABLE evaluations (
  run_id       INTEGER NOT NULL,
  attempt      INTEGER NOT NULL,
  step         INTEGER NOT NULL CHECK (step >= 0),
  style        REAL NOT NULL CHECK (style >= 0),
  content      REAL NOT NULL CHECK (content >= 0),
  tv           REAL NOT NULL CHECK (tv >= 0),
  style_norm   REAL NOT NULL CHECK (style_norm >= 0),
  content_norm REAL NOT NULL CHECK (content_norm >= 0),
  tv_norm      REAL NOT NULL CHECK (tv_norm >= 0),
  ssim         REAL NOT NULL CHECK (ssim BETWEEN -1 AND 1),
  color        REAL NOT NULL CHECK (color >= 0),
  PRIMARY KEY (run_id, attempt, step),
  FOREIGN KEY (run_id, attempt, step) REFERENCES metrics (run_id, attempt, step)
) WITHOUT ROWID;

-- The current attempt's latest evaluation, kept on the run like its latest
-- losses so that reports over many runs read one row per run. -1: none.
ALTER TABLE runs ADD COLUMN eval_step         INTEGER NOT NULL DEFAULT -1 CHECK (eval_step >= -1);
ALTER TABLE runs ADD COLUMN eval_style        REAL NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN eval_content      REAL NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN eval_tv           REAL NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN eval_style_norm   REAL NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN eval_content_norm REAL NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN eval_tv_norm      REAL NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN eval_ssim         REAL NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN eval_color        REAL NOT NULL DEFAULT 0;
