package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/topics"
)

type roomRow struct {
	ID        int64  `db:"room_id"`
	Name      string `db:"name"`
	Owner     int64  `db:"owner"`
	Private   bool   `db:"private"`
	CreatedAt int64  `db:"created_at"`
}

func (r roomRow) room() im.Room {
	return im.Room{ID: r.ID, Name: r.Name, Owner: r.Owner, Private: r.Private, CreatedAt: r.CreatedAt}
}

const roomColumns = `room_id, name, owner, private, created_at`

// CreateRoom implements im.RoomStore. The room's conversation is created
// with it, so that the room is listed by GET /conversations before its
// first message.
func (s *Store) CreateRoom(ctx context.Context, r im.Room) (im.Room, error) {
	err := s.write(ctx, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &r.ID, tx.Rebind(`INSERT INTO rooms (name, owner, private, created_at) VALUES (?, ?, ?, ?) RETURNING room_id`),
			r.Name, r.Owner, r.Private, r.CreatedAt)
		if err != nil {
			return mapErr(err)
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO room_members (room_id, uid, role, joined_at) VALUES (?, ?, ?, ?)`),
			r.ID, r.Owner, im.RoomRoleOwner, r.CreatedAt); err != nil {
			return mapErr(err)
		}
		_, err = tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO conversations (conv_id, kind, room_id, last_seq, updated_at) VALUES (?, ?, ?, 0, ?)
			ON CONFLICT (conv_id) DO NOTHING`), topics.RoomConv(r.ID), string(topics.ConvRoom), r.ID, r.CreatedAt)
		return mapErr(err)
	})
	if err != nil {
		return im.Room{}, fmt.Errorf("create room: %w", err)
	}
	return r, nil
}

// Room implements im.RoomStore.
func (s *Store) Room(ctx context.Context, id int64) (im.Room, error) {
	var r roomRow
	if err := s.r.GetContext(ctx, &r, s.r.Rebind(`SELECT `+roomColumns+` FROM rooms WHERE room_id = ?`), id); err != nil {
		return im.Room{}, fmt.Errorf("room %d: %w", id, mapErr(err))
	}
	return r.room(), nil
}

// RoomsOf implements im.RoomStore.
func (s *Store) RoomsOf(ctx context.Context, uid int64) ([]im.Room, error) {
	var rows []roomRow
	err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`
		SELECT r.room_id, r.name, r.owner, r.private, r.created_at
		FROM rooms r JOIN room_members m ON m.room_id = r.room_id
		WHERE m.uid = ? ORDER BY r.room_id`), uid)
	if err != nil {
		return nil, fmt.Errorf("rooms of %d: %w", uid, mapErr(err))
	}
	out := make([]im.Room, len(rows))
	for i, r := range rows {
		out[i] = r.room()
	}
	return out, nil
}

// RoomMembers implements im.RoomStore.
func (s *Store) RoomMembers(ctx context.Context, room int64) ([]im.RoomMember, error) {
	var rows []struct {
		UID      int64  `db:"uid"`
		Username string `db:"username"`
		Role     string `db:"role"`
		JoinedAt int64  `db:"joined_at"`
	}
	err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`
		SELECT m.uid, u.username, m.role, m.joined_at
		FROM room_members m JOIN users u ON u.uid = m.uid
		WHERE m.room_id = ?
		ORDER BY CASE WHEN m.role = ? THEN 0 ELSE 1 END, m.joined_at, m.uid`), room, im.RoomRoleOwner)
	if err != nil {
		return nil, fmt.Errorf("members of room %d: %w", room, mapErr(err))
	}
	out := make([]im.RoomMember, len(rows))
	for i, r := range rows {
		out[i] = im.RoomMember{UID: r.UID, Username: r.Username, Role: r.Role, JoinedAt: r.JoinedAt}
	}
	return out, nil
}

// lockRoom takes the room's row lock for the rest of the transaction (on
// SQLite the transaction holds the database lock already) and returns its
// owner, or im.ErrNotFound. Every change of a room's membership starts
// here, so changes of one room are serialised even between servers
// sharing a PostgreSQL database, and the owner it reads stays the owner.
func lockRoom(ctx context.Context, tx *sqlx.Tx, room int64) (int64, error) {
	var owner int64
	err := tx.GetContext(ctx, &owner, tx.Rebind(`UPDATE rooms SET owner = owner WHERE room_id = ? RETURNING owner`), room)
	return owner, mapErr(err)
}

// AddRoomMember implements im.RoomStore.
func (s *Store) AddRoomMember(ctx context.Context, room, uid, now int64) (bool, error) {
	var added bool
	err := s.write(ctx, func(tx *sqlx.Tx) error {
		if _, err := lockRoom(ctx, tx, room); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO room_members (room_id, uid, role, joined_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (room_id, uid) DO NOTHING`), room, uid, im.RoomRoleMember, now)
		if err != nil {
			return mapErr(err)
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return mapErr(err)
		}
		added = true
		// History from before joining is readable, but not unread.
		_, err = tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO read_positions (conv_id, uid, read_seq)
			SELECT conv_id, CAST(? AS BIGINT), last_seq FROM conversations WHERE conv_id = ?
			ON CONFLICT (conv_id, uid) DO UPDATE SET read_seq = excluded.read_seq
			WHERE read_positions.read_seq < excluded.read_seq`), uid, topics.RoomConv(room))
		return mapErr(err)
	})
	if err != nil {
		return false, fmt.Errorf("add %d to room %d: %w", uid, room, err)
	}
	return added, nil
}

// RemoveRoomMember implements im.RoomStore.
func (s *Store) RemoveRoomMember(ctx context.Context, room, uid int64) (im.RoomRemoval, error) {
	var rm im.RoomRemoval
	err := s.write(ctx, func(tx *sqlx.Tx) error {
		rm = im.RoomRemoval{}
		owner, err := lockRoom(ctx, tx, room)
		if err != nil {
			return err
		}
		rm.Owner = owner
		var role string
		err = tx.GetContext(ctx, &role, tx.Rebind(`DELETE FROM room_members WHERE room_id = ? AND uid = ? RETURNING role`), room, uid)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // not a member: nothing to do
		}
		if err != nil {
			return mapErr(err)
		}
		rm.Removed = true
		if role != im.RoomRoleOwner {
			return nil
		}
		rm.Owner, rm.Deleted, err = s.passOwnership(ctx, tx, room)
		return err
	})
	if err != nil {
		return im.RoomRemoval{}, fmt.Errorf("remove %d from room %d: %w", uid, room, err)
	}
	return rm, nil
}

// passOwnership makes the longest-standing member the owner of a room
// whose owner just left, or deletes the room if nobody is left. It returns
// the new owner (0 if deleted).
func (s *Store) passOwnership(ctx context.Context, tx *sqlx.Tx, room int64) (owner int64, deleted bool, err error) {
	err = tx.GetContext(ctx, &owner, tx.Rebind(`SELECT uid FROM room_members WHERE room_id = ? ORDER BY joined_at, uid LIMIT 1`), room)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM rooms WHERE room_id = ?`), room); err != nil {
			return 0, false, mapErr(err)
		}
		return 0, true, nil
	}
	if err != nil {
		return 0, false, mapErr(err)
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE room_members SET role = ? WHERE room_id = ? AND uid = ?`), im.RoomRoleOwner, room, owner); err != nil {
		return 0, false, mapErr(err)
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE rooms SET owner = ? WHERE room_id = ?`), owner, room); err != nil {
		return 0, false, mapErr(err)
	}
	return owner, false, nil
}

// RoomMemberships implements im.RoomStore. It streams the rows: the
// domain loads them all at start.
func (s *Store) RoomMemberships(ctx context.Context, fn func(room, uid int64)) error {
	rows, err := s.r.QueryContext(ctx, `
		SELECT r.room_id, COALESCE(m.uid, 0)
		FROM rooms r LEFT JOIN room_members m ON m.room_id = r.room_id`)
	if err != nil {
		return fmt.Errorf("room memberships: %w", mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var room, uid int64
		if err := rows.Scan(&room, &uid); err != nil {
			return fmt.Errorf("room memberships: %w", mapErr(err))
		}
		fn(room, uid)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("room memberships: %w", mapErr(err))
	}
	return nil
}

// PublicRooms implements im.RoomStore.
func (s *Store) PublicRooms(ctx context.Context, q string, limit int) ([]im.PublicRoom, error) {
	var rows []struct {
		roomRow
		Members int64 `db:"members"`
	}
	err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`
		SELECT r.room_id, r.name, r.owner, r.private, r.created_at, COUNT(m.uid) AS members
		FROM rooms r JOIN room_members m ON m.room_id = r.room_id
		WHERE NOT r.private AND LOWER(r.name) LIKE ? ESCAPE '\'
		GROUP BY r.room_id, r.name, r.owner, r.private, r.created_at
		ORDER BY members DESC, r.room_id
		LIMIT ?`), "%"+likeEscape(strings.ToLower(q))+"%", limit)
	if err != nil {
		return nil, fmt.Errorf("public rooms: %w", mapErr(err))
	}
	out := make([]im.PublicRoom, len(rows))
	for i, r := range rows {
		out[i] = im.PublicRoom{Room: r.room(), Members: r.Members}
	}
	return out, nil
}

// likeEscape escapes LIKE's wildcards (with \, the ESCAPE character).
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
