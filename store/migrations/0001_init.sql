-- The whole schema of the contract (PROTOCOL.md), for SQLite and PostgreSQL.
-- {{id}} becomes each engine's auto-increment primary key. Times are Unix
-- milliseconds in BIGINT columns.

CREATE TABLE users (
    uid           {{id}},
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE, -- lower(username): names are unique case-insensitively
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    status        TEXT    NOT NULL DEFAULT 'online' CHECK (status IN ('online', 'away')),
    created_at    BIGINT  NOT NULL
);

CREATE TABLE rooms (
    room_id    {{id}},
    name       TEXT    NOT NULL,
    owner      BIGINT  NOT NULL REFERENCES users (uid),
    private    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT  NOT NULL
);

CREATE TABLE room_members (
    room_id   BIGINT NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    uid       BIGINT NOT NULL REFERENCES users (uid),
    role      TEXT   NOT NULL CHECK (role IN ('owner', 'member')),
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, uid)
);
CREATE INDEX room_members_by_uid ON room_members (uid);

CREATE TABLE shops (
    shop_id         {{id}},
    name            TEXT   NOT NULL,
    welcome_message TEXT   NOT NULL DEFAULT '',
    offline_message TEXT   NOT NULL DEFAULT '',
    keyword_replies TEXT   NOT NULL DEFAULT '[]', -- JSON [{keyword, reply}]
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE shop_agents (
    shop_id          BIGINT NOT NULL REFERENCES shops (shop_id) ON DELETE CASCADE,
    uid              BIGINT NOT NULL REFERENCES users (uid),
    added_at         BIGINT NOT NULL,
    last_assigned_at BIGINT NOT NULL DEFAULT 0, -- ties of the least-loaded rule go to the oldest
    PRIMARY KEY (shop_id, uid)
);
CREATE INDEX shop_agents_by_uid ON shop_agents (uid);

-- A customer-service session: queued (no agent yet), open, or closed.
CREATE TABLE cs_sessions (
    session_id       {{id}},
    shop_id          BIGINT  NOT NULL REFERENCES shops (shop_id),
    customer         BIGINT  NOT NULL REFERENCES users (uid),
    agent            BIGINT  REFERENCES users (uid), -- current agent; NULL while queued
    status           TEXT    NOT NULL CHECK (status IN ('queued', 'open', 'closed')),
    created_at       BIGINT  NOT NULL,
    assigned_at      BIGINT,
    closed_at        BIGINT,
    offline_notified BOOLEAN NOT NULL DEFAULT FALSE -- the offline message went out for this queued session
);
-- At most one session per customer and shop is not closed.
CREATE UNIQUE INDEX cs_sessions_active ON cs_sessions (shop_id, customer) WHERE status <> 'closed';
CREATE INDEX cs_sessions_by_shop ON cs_sessions (shop_id, status, created_at);
CREATE INDEX cs_sessions_by_agent ON cs_sessions (agent, status);
CREATE INDEX cs_sessions_by_customer ON cs_sessions (shop_id, customer, assigned_at);

-- A conversation and its sequence counter. The participant columns say who
-- takes part: user_a/user_b (single chat), room_id (group), shop_id and
-- customer (customer service); the sys conversation has none.
CREATE TABLE conversations (
    conv_id    TEXT   PRIMARY KEY,
    kind       TEXT   NOT NULL CHECK (kind IN ('single', 'room', 'service', 'sys')),
    user_a     BIGINT,
    user_b     BIGINT,
    room_id    BIGINT,
    shop_id    BIGINT,
    customer   BIGINT,
    last_seq   BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);
CREATE INDEX conversations_by_user_a ON conversations (user_a) WHERE user_a IS NOT NULL;
CREATE INDEX conversations_by_user_b ON conversations (user_b) WHERE user_b IS NOT NULL;
CREATE INDEX conversations_by_room ON conversations (room_id) WHERE room_id IS NOT NULL;
CREATE INDEX conversations_by_shop ON conversations (shop_id) WHERE shop_id IS NOT NULL;
CREATE INDEX conversations_by_customer ON conversations (customer) WHERE customer IS NOT NULL;

CREATE TABLE messages (
    msg_id     TEXT    PRIMARY KEY,
    conv_id    TEXT    NOT NULL REFERENCES conversations (conv_id),
    seq        BIGINT  NOT NULL,
    sender     BIGINT  NOT NULL, -- 0: made by the server
    type       TEXT    NOT NULL,
    body       TEXT    NOT NULL, -- JSON
    cid        TEXT,             -- the client's id, NULL when it gave none
    auto       BOOLEAN NOT NULL DEFAULT FALSE,
    session_id BIGINT,           -- customer service: the session
    agent      BIGINT,           -- customer service: the session's agent when stored
    created_at BIGINT  NOT NULL,
    UNIQUE (conv_id, seq)        -- history pages are range scans of this index
);
-- Idempotent sends: one message per (sender, conversation, cid).
CREATE UNIQUE INDEX messages_by_cid ON messages (sender, conv_id, cid) WHERE cid IS NOT NULL;
CREATE INDEX messages_by_session ON messages (session_id, seq) WHERE session_id IS NOT NULL;

-- How far each user has read each conversation. unread = last_seq - read_seq.
CREATE TABLE read_positions (
    conv_id  TEXT   NOT NULL REFERENCES conversations (conv_id),
    uid      BIGINT NOT NULL,
    read_seq BIGINT NOT NULL,
    PRIMARY KEY (conv_id, uid)
);

-- Server-wide settings, such as the generated token secret on PostgreSQL.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
