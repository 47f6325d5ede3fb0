-- How far each agent has been sent each session's backlog: when a session
-- is assigned to an agent, it is sent the session's messages it has not
-- seen (those stored for other agents or while queued, after this mark),
-- and the mark moves to the session's last message.
CREATE TABLE cs_seen (
    session_id BIGINT NOT NULL REFERENCES cs_sessions (session_id),
    agent      BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (session_id, agent)
);
