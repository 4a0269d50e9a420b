-- Sweep control: `stylesweep pause` keeps a sweep's queued runs from being
-- leased (runs in progress finish) until `stylesweep resume`.
ALTER TABLE sweeps ADD COLUMN paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1));
