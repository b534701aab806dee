package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/countersign/countersign/internal/api"
	"github.com/countersign/countersign/internal/recording"
	"github.com/spf13/cobra"
)

func auditCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, export and question the recording: who changed what, under which review",
	}
	cmd.AddCommand(auditVerifyCmd(env), auditExportCmd(env), auditPubkeyCmd(env),
		auditChangesCmd(env, true), auditChangesCmd(env, false))
	return cmd
}

type verifyFlags struct {
	config, witness, file, pubkey string
	strict, asJSON                bool
}

func auditVerifyCmd(env *Env) *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify [--strict] [--config FILE [--witness FILE] | --file trail.jsonl --pubkey KEY]",
		Short: "Recompute every chain and check every signed checkpoint; exits non-zero on any break",
		Long: "Three ways to verify:\n" +
			"  --config FILE            read the store directly (the operator, on the gateway host; works while it runs)\n" +
			"  --file F --pubkey KEY    an export (audit export), offline, with only the public key\n" +
			"  (neither)                ask the gateway through the API (auditor or admin role)\n" +
			"--witness FILE compares the store with a file sink's checkpoints (with --config).\n" +
			"--strict also fails events after the last checkpoint and chains without a closing checkpoint.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return auditVerify(cmd, env, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "the gateway's countersign.yaml: verify its store directly")
	fl.StringVar(&f.witness, "witness", "", "a file sink's file to compare the store with (needs --config)")
	fl.StringVar(&f.file, "file", "", "an export to verify offline (needs --pubkey)")
	fl.StringVar(&f.pubkey, "pubkey", "", "the public key (audit pubkey) that signed the checkpoints")
	fl.BoolVar(&f.strict, "strict", false, "fail unsigned tails and unclosed chains too")
	fl.BoolVar(&f.asJSON, "json", false, "print the report as JSON")
	cmd.MarkFlagsMutuallyExclusive("config", "file")
	return cmd
}

func auditVerify(cmd *cobra.Command, env *Env, f verifyFlags) error {
	var rep api.VerifyReport
	var err error
	switch {
	case f.file != "":
		rep, err = verifyFile(f)
	case f.config != "":
		rep, err = verifyStore(cmd.Context(), f)
	case f.witness != "":
		return errors.New("--witness compares the store with a witness file, which needs the store: add --config FILE")
	default:
		q := url.Values{}
		setFlag(q, "strict", f.strict)
		err = apiGet(cmd, env, "/v1/audit/verify", q, &rep)
	}
	if err != nil {
		return err
	}
	if f.asJSON {
		if err := printJSON(env.Stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprint(env.Stdout, rep.Report().String())
	}
	if !rep.OK {
		return fmt.Errorf("the trail failed verification (%d problem(s)): %s", len(rep.Problems), firstOf(rep.Problems...))
	}
	return nil
}

func verifyFile(f verifyFlags) (api.VerifyReport, error) {
	if f.pubkey == "" {
		return api.VerifyReport{}, errors.New("--file needs --pubkey KEY: the key 'countersign audit pubkey' prints, obtained from a source you trust")
	}
	pub, err := recording.ParsePublicKey(f.pubkey)
	if err != nil {
		return api.VerifyReport{}, fmt.Errorf("--pubkey: %w", err)
	}
	fh, err := os.Open(f.file)
	if err != nil {
		return api.VerifyReport{}, fmt.Errorf("open the export: %w", err)
	}
	defer fh.Close()
	rep, err := recording.VerifyExport(fh, pub)
	if err != nil {
		return api.VerifyReport{}, fmt.Errorf("read the export %s: %w", f.file, err)
	}
	rep.Strict = f.strict
	return api.NewVerifyReport(rep, recording.KeyID(pub)), nil
}

func verifyStore(ctx context.Context, f verifyFlags) (api.VerifyReport, error) {
	cfg, err := loadConfig(f.config)
	if err != nil {
		return api.VerifyReport{}, err
	}
	pub, err := operatorPublicKey(signingKeyPath(cfg), f.pubkey)
	if err != nil {
		return api.VerifyReport{}, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return api.VerifyReport{}, err
	}
	defer st.Close()
	opts := recording.VerifyOptions{Strict: f.strict}
	var rep recording.Report
	if f.witness != "" {
		rep, err = recording.VerifyWitness(ctx, st, f.witness, pub)
		rep.Strict = f.strict
	} else {
		rep, err = recording.Verify(ctx, st, pub, opts)
	}
	if err != nil {
		return api.VerifyReport{}, fmt.Errorf("read the trail from the store: %w", err)
	}
	return api.NewVerifyReport(rep, recording.KeyID(pub)), nil
}

// operatorPublicKey is the given --pubkey, else the public half of the
// gateway's signing key. It never makes a key: verifying with a new one
// would only fail, and confusingly.
func operatorPublicKey(keyPath, given string) (ed25519.PublicKey, error) {
	if given != "" {
		pub, err := recording.ParsePublicKey(given)
		if err != nil {
			return nil, fmt.Errorf("--pubkey: %w", err)
		}
		return pub, nil
	}
	b, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("there is no signing key at %s (the gateway makes it at first start); pass the public key with --pubkey", keyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("read the signing key: %w", err)
	}
	priv, err := recording.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	return priv.Public().(ed25519.PublicKey), nil
}

func auditExportCmd(env *Env) *cobra.Command {
	var config, since, until string
	cmd := &cobra.Command{
		Use:   "export [--since T] [--until T] [--config FILE] > trail.jsonl",
		Short: "Write the trail (events with their hashes, signed checkpoints) as JSON lines, for offline verification",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config != "" {
				return exportStore(cmd.Context(), env.Stdout, config, since, until)
			}
			q := url.Values{}
			setParam(q, "since", since)
			setParam(q, "until", until)
			return exportAPI(cmd, env, q)
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "read the store named in this countersign.yaml directly (operator)")
	cmd.Flags().StringVar(&since, "since", "", "from: an RFC 3339 time or a duration back (24h, 7d)")
	cmd.Flags().StringVar(&until, "until", "", "before: an RFC 3339 time or a duration back")
	return cmd
}

func exportStore(ctx context.Context, w io.Writer, path, since, until string) error {
	now := time.Now()
	from, err := api.ParseWhen(since, now)
	if err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	to, err := api.ParseWhen(until, now)
	if err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	return recording.Export(ctx, st, w, from, to)
}

// exportAPI streams the export to stdout; an export the gateway could not
// finish (its trailer says so) is an error, never a silent short trail.
func exportAPI(cmd *cobra.Command, env *Env, q url.Values) error {
	c, err := newAPIClient(cmd, env)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, c.server+"/v1/audit/export?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	hc := *c.hc
	hc.Timeout = 0 // a long trail takes as long as it takes
	resp, err := hc.Do(req)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return answerError(resp.StatusCode, data)
	}
	if _, err := io.Copy(env.Stdout, resp.Body); err != nil {
		return fmt.Errorf("the export broke off: %w; export again", err)
	}
	if msg := resp.Trailer.Get(api.ExportErrorTrailer); msg != "" {
		return errors.New(msg)
	}
	return nil
}

func auditPubkeyCmd(env *Env) *cobra.Command {
	var config string
	cmd := &cobra.Command{
		Use:   "pubkey [--config FILE]",
		Short: "Print the public key that verifies the recording's signed checkpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config != "" {
				cfg, err := loadConfig(config)
				if err != nil {
					return err
				}
				pub, err := operatorPublicKey(signingKeyPath(cfg), "")
				if err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout, recording.PublicKeyString(pub))
				return nil
			}
			var k api.PublicKey
			if err := apiGet(cmd, env, "/v1/audit/pubkey", nil, &k); err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, k.PublicKey)
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "read the key file named by this countersign.yaml (operator)")
	return cmd
}
