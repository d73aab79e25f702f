-- Up
-- A project's secrets, write-only: the value is kept only encrypted (AES-256-GCM, see
-- server/secrets/secretBox.ts), bound to its project and name; the key is not in the database.
CREATE TABLE project_secrets (
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  sealed TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (project_id, name)
);

-- Down
DROP TABLE project_secrets;
