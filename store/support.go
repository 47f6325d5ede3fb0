package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
)

// The v1.1 customer-service data (PROTOCOL.md §6, §8): identity secrets,
// verified visitors, canned replies, customers' pages.

// IdentitySecret implements im.SupportStore.
func (s *Store) IdentitySecret(ctx context.Context, shop int64, fresh string) (string, error) {
	if _, err := s.exec(ctx, `UPDATE shops SET identity_secret = ? WHERE shop_id = ? AND identity_secret = ''`, fresh, shop); err != nil {
		return "", fmt.Errorf("identity secret of shop %d: %w", shop, mapErr(err))
	}
	var secret string
	if err := s.r.GetContext(ctx, &secret, s.r.Rebind(`SELECT identity_secret FROM shops WHERE shop_id = ?`), shop); err != nil {
		return "", fmt.Errorf("identity secret of shop %d: %w", shop, mapErr(err))
	}
	return secret, nil
}

// Visitor implements im.SupportStore: the user is created with the visitor
// row in one transaction; two first sign-ins racing get one user.
func (s *Store) Visitor(ctx context.Context, shop int64, externalID string, u im.User) (im.User, error) {
	var uid int64
	err := s.write(ctx, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &uid, tx.Rebind(`SELECT uid FROM visitors WHERE shop_id = ? AND external_id = ?`), shop, externalID)
		if !errors.Is(err, sql.ErrNoRows) {
			return mapErr(err)
		}
		if err := createUser(ctx, tx, &u); err != nil {
			return err
		}
		uid = u.UID
		_, err = tx.ExecContext(ctx, tx.Rebind(`INSERT INTO visitors (shop_id, external_id, uid) VALUES (?, ?, ?)`), shop, externalID, uid)
		return mapErr(err)
	})
	if errors.Is(err, im.ErrConflict) { // created meanwhile (another server)
		err = s.r.GetContext(ctx, &uid, s.r.Rebind(`SELECT uid FROM visitors WHERE shop_id = ? AND external_id = ?`), shop, externalID)
		err = mapErr(err)
	}
	if err != nil {
		return im.User{}, fmt.Errorf("visitor of shop %d: %w", shop, err)
	}
	return s.UserByID(ctx, uid)
}

type cannedRow struct {
	ID        int64  `db:"canned_id"`
	Shop      int64  `db:"shop_id"`
	Shortcut  string `db:"shortcut"`
	Text      string `db:"text"`
	CreatedAt int64  `db:"created_at"`
}

const cannedColumns = `canned_id, shop_id, shortcut, text, created_at`

// CannedReplies implements im.SupportStore.
func (s *Store) CannedReplies(ctx context.Context, shop int64) ([]im.CannedReply, error) {
	var rows []cannedRow
	if err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`SELECT `+cannedColumns+` FROM canned_replies WHERE shop_id = ? ORDER BY shortcut, canned_id`), shop); err != nil {
		return nil, fmt.Errorf("canned replies: %w", mapErr(err))
	}
	out := make([]im.CannedReply, len(rows))
	for i, r := range rows {
		out[i] = im.CannedReply(r)
	}
	return out, nil
}

// CannedReply implements im.SupportStore.
func (s *Store) CannedReply(ctx context.Context, shop, id int64) (im.CannedReply, error) {
	var r cannedRow
	if err := s.r.GetContext(ctx, &r, s.r.Rebind(`SELECT `+cannedColumns+` FROM canned_replies WHERE shop_id = ? AND canned_id = ?`), shop, id); err != nil {
		return im.CannedReply{}, fmt.Errorf("canned reply %d: %w", id, mapErr(err))
	}
	return im.CannedReply(r), nil
}

// CreateCannedReply implements im.SupportStore.
func (s *Store) CreateCannedReply(ctx context.Context, c im.CannedReply) (im.CannedReply, error) {
	err := s.getw(ctx, &c.ID, `INSERT INTO canned_replies (shop_id, shortcut, text, created_at) VALUES (?, ?, ?, ?) RETURNING canned_id`,
		c.Shop, c.Shortcut, c.Text, c.CreatedAt)
	if err != nil {
		return im.CannedReply{}, fmt.Errorf("insert canned reply: %w", mapErr(err))
	}
	return c, nil
}

// UpdateCannedReply implements im.SupportStore.
func (s *Store) UpdateCannedReply(ctx context.Context, c im.CannedReply) error {
	if _, err := s.exec(ctx, `UPDATE canned_replies SET shortcut = ?, text = ? WHERE shop_id = ? AND canned_id = ?`, c.Shortcut, c.Text, c.Shop, c.ID); err != nil {
		return fmt.Errorf("update canned reply %d: %w", c.ID, mapErr(err))
	}
	return nil
}

// DeleteCannedReply implements im.SupportStore.
func (s *Store) DeleteCannedReply(ctx context.Context, shop, id int64) (bool, error) {
	res, err := s.exec(ctx, `DELETE FROM canned_replies WHERE shop_id = ? AND canned_id = ?`, shop, id)
	if err != nil {
		return false, fmt.Errorf("delete canned reply %d: %w", id, mapErr(err))
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// SetCustomerPage implements im.SupportStore.
func (s *Store) SetCustomerPage(ctx context.Context, p im.CustomerPage) error {
	_, err := s.exec(ctx, `
		INSERT INTO customer_pages (shop_id, customer, url, title, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (shop_id, customer) DO UPDATE SET url = excluded.url, title = excluded.title, updated_at = excluded.updated_at`,
		p.Shop, p.Customer, p.URL, p.Title, p.UpdatedAt)
	if err != nil {
		return fmt.Errorf("customer page: %w", mapErr(err))
	}
	return nil
}

// CustomerPage implements im.SupportStore.
func (s *Store) CustomerPage(ctx context.Context, shop, customer int64) (im.CustomerPage, bool, error) {
	var r struct {
		Shop      int64  `db:"shop_id"`
		Customer  int64  `db:"customer"`
		URL       string `db:"url"`
		Title     string `db:"title"`
		UpdatedAt int64  `db:"updated_at"`
	}
	err := s.r.GetContext(ctx, &r, s.r.Rebind(`SELECT shop_id, customer, url, title, updated_at FROM customer_pages WHERE shop_id = ? AND customer = ?`), shop, customer)
	if errors.Is(err, sql.ErrNoRows) {
		return im.CustomerPage{}, false, nil
	}
	if err != nil {
		return im.CustomerPage{}, false, fmt.Errorf("customer page: %w", mapErr(err))
	}
	return im.CustomerPage(r), true, nil
}

// CustomerTickets implements im.SupportStore.
func (s *Store) CustomerTickets(ctx context.Context, shop, customer int64, limit int) ([]im.Ticket, error) {
	var rows []ticketRow
	err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`
		SELECT `+ticketColumns+` FROM cs_sessions WHERE shop_id = ? AND customer = ? ORDER BY session_id DESC LIMIT ?`), shop, customer, limit)
	if err != nil {
		return nil, fmt.Errorf("sessions of %d: %w", customer, mapErr(err))
	}
	out := make([]im.Ticket, len(rows))
	for i, r := range rows {
		out[i] = r.ticket()
	}
	return out, nil
}

// AssignmentTimes implements im.SupportStore.
func (s *Store) AssignmentTimes(ctx context.Context, shop, since int64, n int) ([]int64, error) {
	var times []int64
	err := s.r.SelectContext(ctx, &times, s.r.Rebind(`
		SELECT assigned_at FROM cs_sessions
		WHERE shop_id = ? AND assigned_at IS NOT NULL AND assigned_at > created_at AND assigned_at >= ?
		ORDER BY assigned_at DESC LIMIT ?`), shop, since, n)
	if err != nil {
		return nil, fmt.Errorf("assignment times: %w", mapErr(err))
	}
	return times, nil
}
