-- v1.1 accounts (PROTOCOL.md §6): guests and verified visitors are users
-- with guest set (their API role is "guest"); a display name; disabled
-- accounts; and every access token issued, so that one can be revoked.
ALTER TABLE users ADD COLUMN guest BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE access_tokens (
    token_id   TEXT   PRIMARY KEY, -- the token's jti: 128 random bits, hex
    uid        BIGINT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT              -- NULL while it works
);
CREATE INDEX access_tokens_by_uid ON access_tokens (uid);
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);

-- A shop's verified visitors: the same (shop, external_id) is always the
-- same user.
CREATE TABLE visitors (
    shop_id     BIGINT NOT NULL REFERENCES shops (shop_id) ON DELETE CASCADE,
    external_id TEXT   NOT NULL,
    uid         BIGINT NOT NULL REFERENCES users (uid),
    PRIMARY KEY (shop_id, external_id)
);

-- v1.1 customer service (PROTOCOL.md §8): the secret verified visitors'
-- hashes are made with, canned replies, and the page a customer writes
-- from.
ALTER TABLE shops ADD COLUMN identity_secret TEXT NOT NULL DEFAULT '';

CREATE TABLE canned_replies (
    canned_id  {{id}},
    shop_id    BIGINT NOT NULL REFERENCES shops (shop_id) ON DELETE CASCADE,
    shortcut   TEXT   NOT NULL,
    text       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX canned_replies_by_shop ON canned_replies (shop_id, shortcut);

CREATE TABLE customer_pages (
    shop_id    BIGINT NOT NULL REFERENCES shops (shop_id) ON DELETE CASCADE,
    customer   BIGINT NOT NULL,
    url        TEXT   NOT NULL,
    title      TEXT   NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, customer)
);
CREATE INDEX access_tokens_by_revocation ON access_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
