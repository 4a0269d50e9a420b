-- Scoped credentials (`stylesweep tokens`). Each token is "ssw_<id>_<secret>";
-- only a salted SHA-256 of its secret is kept, so the database never holds a
-- token that would let its reader in. Rows are never deleted: a revoked one
-- keeps its name, so a name always means the same credential in logs and in
-- agents.credential.
CREATE TABLE credentials (
  id           INTEGER PRIMARY KEY,
  name         TEXT NOT NULL UNIQUE,
  role         TEXT NOT NULL CHECK (role IN ('agent', 'user', 'reader')),
  -- For role 'agent': the names it may register under, comma-separated;
  -- "PREFIX*" allows every name starting with PREFIX.
  agent_names  TEXT NOT NULL DEFAULT '',
  salt         TEXT NOT NULL,
  secret_hash  TEXT NOT NULL,
  created_ms   INTEGER NOT NULL,
  revoked_ms   INTEGER NOT NULL DEFAULT 0,  -- 0: in force
  last_used_ms INTEGER NOT NULL DEFAULT 0
);

-- Which credential registered each agent: a second registration under a live
-- agent's name is refused unless the same credential makes it, and every
-- later call for that agent must come with it. '' for agents registered
-- without credentials (a loopback coordinator with none configured).
ALTER TABLE agents ADD COLUMN credential TEXT NOT NULL DEFAULT '';
