package app

import "github.com/warden-schools/warden/internal/config"

// Config is the bootstrap configuration (see package config). The command
// reaches it through app, which is the only importer of config.
type Config = config.Config

// LoadConfig reads the configuration file, if path is not empty, over the
// defaults, then sets the data folder if dataDir is not empty, and
// validates the result.
func LoadConfig(path, dataDir string) (Config, error) {
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return cfg, err
		}
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	return cfg, cfg.Validate()
}
