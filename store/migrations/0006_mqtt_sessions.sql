-- Persistent MQTT sessions (PROTOCOL.md §9): clean session false (3.1.1),
-- or clean start false with a session expiry (5). What the broker keeps of
-- them in memory is kept here too, so that a restart loses nothing: the
-- session, its subscriptions, and for each conversation its subscriptions
-- cover, how far it has received.
CREATE TABLE mqtt_sessions (
    client_id  TEXT    PRIMARY KEY,
    uid        BIGINT  NOT NULL,
    username   TEXT    NOT NULL DEFAULT '',
    version    INTEGER NOT NULL, -- MQTT protocol version: 3, 4 (3.1.1) or 5
    expiry     BIGINT  NOT NULL, -- MQTT 5 session expiry interval, seconds
    updated_at BIGINT  NOT NULL
);
CREATE INDEX mqtt_sessions_by_uid ON mqtt_sessions (uid);

CREATE TABLE mqtt_subscriptions (
    client_id TEXT    NOT NULL REFERENCES mqtt_sessions (client_id) ON DELETE CASCADE,
    filter    TEXT    NOT NULL,
    qos       INTEGER NOT NULL,
    PRIMARY KEY (client_id, filter)
);

-- acked: every message of the conversation up to it was acknowledged by
-- the session, or is older than its subscription; sent: the last one sent
-- to it (a resend at or below is marked DUP).
CREATE TABLE mqtt_cursors (
    client_id TEXT   NOT NULL REFERENCES mqtt_sessions (client_id) ON DELETE CASCADE,
    conv_id   TEXT   NOT NULL,
    acked     BIGINT NOT NULL,
    sent      BIGINT NOT NULL,
    PRIMARY KEY (client_id, conv_id)
);
