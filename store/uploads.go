package store

import (
	"context"
	"fmt"

	"github.com/imserver/imserver/im"
)

var _ im.UploadStore = (*Store)(nil)

// CreateUpload implements im.UploadStore.
func (s *Store) CreateUpload(ctx context.Context, u im.Upload) error {
	_, err := s.exec(ctx, `
		INSERT INTO uploads (upload_id, owner, name, size, content_type, width, height, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, u.ID, u.Owner, u.Name, u.Size, u.ContentType, u.Width, u.Height, u.CreatedAt)
	if err != nil {
		return fmt.Errorf("record upload: %w", mapErr(err))
	}
	return nil
}

// Upload implements im.UploadStore.
func (s *Store) Upload(ctx context.Context, id string) (im.Upload, error) {
	var r struct {
		ID          string `db:"upload_id"`
		Owner       int64  `db:"owner"`
		Name        string `db:"name"`
		Size        int64  `db:"size"`
		ContentType string `db:"content_type"`
		Width       int    `db:"width"`
		Height      int    `db:"height"`
		CreatedAt   int64  `db:"created_at"`
	}
	err := s.r.GetContext(ctx, &r, s.r.Rebind(`
		SELECT upload_id, owner, name, size, content_type, width, height, created_at FROM uploads WHERE upload_id = ?`), id)
	if err != nil {
		return im.Upload{}, fmt.Errorf("upload %s: %w", id, mapErr(err))
	}
	return im.Upload(r), nil
}
