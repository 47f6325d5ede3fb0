-- Presence (PROTOCOL.md §7): when a user's last live connection closed.
ALTER TABLE users ADD COLUMN last_seen BIGINT NOT NULL DEFAULT 0;

-- Uploaded files (POST /uploads). The bytes are in the upload directory,
-- under the id; the id is the capability (128 random bits, hex).
CREATE TABLE uploads (
    upload_id    TEXT    PRIMARY KEY,
    owner        BIGINT  NOT NULL,
    name         TEXT    NOT NULL,
    size         BIGINT  NOT NULL,
    content_type TEXT    NOT NULL,
    width        INTEGER NOT NULL DEFAULT 0,
    height       INTEGER NOT NULL DEFAULT 0,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX uploads_by_owner ON uploads (owner, created_at);
