package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Credentials is what `login` keeps for later commands. The file is 0600:
// it holds an API token.
type Credentials struct {
	Server    string    `json:"server"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	// CACert is the file of the CA that verifies Server, saved at login
	// beside the credentials ("" means the system roots).
	CACert   string `json:"ca_cert,omitempty"`
	Identity string `json:"identity,omitempty"`
}

// appDir is ConfigDir/countersign, where credentials and saved CAs live.
func (env *Env) appDir() (string, error) {
	cd := env.ConfigDir
	if cd == nil {
		cd = os.UserConfigDir
	}
	dir, err := cd()
	if err != nil {
		return "", fmt.Errorf("cannot find your config directory (%v); set COUNTERSIGN_SERVER and COUNTERSIGN_TOKEN instead", err)
	}
	return filepath.Join(dir, "countersign"), nil
}

func (env *Env) credentialsPath() (string, error) {
	dir, err := env.appDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "credentials.json"), nil
}

// readCredentials returns the saved credentials, or nil if there are none.
func (env *Env) readCredentials() (*Credentials, error) {
	path, err := env.credentialsPath()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v); run 'countersign login' again", path, err)
	}
	return &c, nil
}

// writeCredentials saves c with mode 0600 in a 0700 directory, replacing
// the file atomically.
func (env *Env) writeCredentials(c Credentials) (string, error) {
	path, err := env.credentialsPath()
	if err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	if err := writePrivate(path, b, 0o600); err != nil {
		return "", fmt.Errorf("save the credentials: %w", err)
	}
	return path, nil
}

// writePrivate writes data to path through a temporary file in the same
// (0700) directory, so no reader ever sees half of it.
func writePrivate(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
