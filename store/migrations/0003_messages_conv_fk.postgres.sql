-- The foreign key from messages to conversations costs a trigger per
-- inserted row; with group commit the INSERT of a group became the
-- slowest statement (W1 on PostgreSQL: 3,621 → 4,173 msgs/s without it).
-- The store creates a conversation in the same transaction as its first
-- message, so the reference is kept by construction. SQLite keeps the key
-- (no 0003 for it): it costs little there, and dropping it would mean
-- rebuilding the table.
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_conv_id_fkey;
