package store

import (
	"context"
	"fmt"
)

// SettingOrInit returns the value of a server-wide setting, storing value
// first if the setting has none. Concurrent callers all get the value that
// was stored first.
func (s *Store) SettingOrInit(ctx context.Context, name, value string) (string, error) {
	if _, err := s.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
		return "", fmt.Errorf("store setting %s: %w", name, mapErr(err))
	}
	var v string
	if err := s.r.GetContext(ctx, &v, s.r.Rebind(`SELECT value FROM settings WHERE name = ?`), name); err != nil {
		return "", fmt.Errorf("read setting %s: %w", name, mapErr(err))
	}
	return v, nil
}
