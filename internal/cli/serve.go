package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/spf13/cobra"
)

func serveCmd(env *Env) *cobra.Command {
	var (
		path      string
		logLevel  string
		logFormat string
		drain     time.Duration
		pprofAddr string
	)
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the gateway: the API and every engine listener the config names",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(env, logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			if pprofAddr != "" {
				if err := startPprof(pprofAddr, log); err != nil {
					return err
				}
			}
			return serve(cmd.Context(), env, cfg, log, drain)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "the countersign.yaml to serve (required)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "text or json")
	cmd.Flags().StringVar(&pprofAddr, "pprof", "", "serve Go's pprof profiles on this loopback address (e.g. 127.0.0.1:6060), for profiling only")
	cmd.Flags().DurationVar(&drain, "drain-timeout", 30*time.Second, "how long a stop waits for open sessions before cutting them")
	return cmd
}

// serve runs until SIGINT, SIGTERM, ctx ends or a listener fails, then
// shuts down within drain.
func serve(ctx context.Context, env *Env, cfg *config.Config, log *slog.Logger, drain time.Duration) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := StartServer(ctx, cfg, log)
	if err != nil {
		return err
	}
	if env.OnServing != nil {
		env.OnServing(srv)
	}
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("stopping: draining sessions", "timeout", drain)
	case runErr = <-srv.Err():
		log.Error("stopping: a listener failed", "err", runErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("stopped with errors", "err", err)
		if runErr == nil {
			runErr = err
		}
	}
	log.Info("stopped")
	return runErr
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return nil, fmt.Errorf("--config is required: name the countersign.yaml (see examples/countersign.yaml)")
	}
	return config.Load(path)
}

func newLogger(env *Env, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(env.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(env.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}
