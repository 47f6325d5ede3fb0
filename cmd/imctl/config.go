package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// config is what imctl remembers between runs: the server, the logged-in
// user and where `imctl listen` left off. It holds an access token, so it
// is private to the user (mode 0600).
type config struct {
	Server    string           `json:"server"`
	MQTT      string           `json:"mqtt,omitempty"` // tcp://host:port; "" = WebSocket on the server's port
	Token     string           `json:"token,omitempty"`
	UID       int64            `json:"uid,omitempty"`
	Username  string           `json:"username,omitempty"`
	Role      string           `json:"role,omitempty"`
	Positions map[string]int64 `json:"positions,omitempty"`
}

// configPath returns where the configuration lives: --config, then
// $IMCTL_CONFIG, then imctl/config.json in the user's config directory.
func configPath(flagValue string, getenv func(string) string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p := getenv("IMCTL_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory: %w (set IMCTL_CONFIG)", err)
	}
	return filepath.Join(dir, "imctl", "config.json"), nil
}

func loadConfig(path string) (config, error) {
	var c config
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// save writes the configuration atomically, readable by the user only.
func (c config) save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*")
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save config: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}
