package cli

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/countersign/countersign/internal/api"
	"github.com/spf13/cobra"
)

func grantsCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "grants",
		Short: "Request, list and revoke time-bound grants (wider access for a while, after approval)",
	}
	cmd.AddCommand(grantsRequestCmd(env), grantsListCmd(env), grantsRevokeCmd(env))
	return cmd
}

func grantsRequestCmd(env *Env) *cobra.Command {
	var req api.GrantRequest
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "request RESOURCE --access write --for 1h --reason TEXT",
		Short: "Ask for a grant; it starts when approved and ends on time",
		Args:  exactlyOne("resource"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			req.Resource = args[0]
			var got api.GrantRequested
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/grants", req, &got); err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Stdout, got)
			}
			fmt.Fprintln(env.Stdout, got.Message)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&req.Access, "access", nil, "kinds to open (write, schema, privilege, admin) or unmask; comma separated")
	fl.StringVar(&req.For, "for", "", "how long, from approval: 30m, 1h, 1d (at most the resource's grants.max_duration)")
	fl.StringVar(&req.Reason, "reason", "", "why, for the approvers (required)")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func grantsListCmd(env *Env) *cobra.Command {
	var mine, active, asJSON bool
	var resource string
	cmd := &cobra.Command{
		Use:   "list [--mine] [--active] [--resource R]",
		Short: "List the grants you may see, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			setFlag(q, "mine", mine)
			setFlag(q, "active", active)
			setParam(q, "resource", resource)
			var list api.ReviewList
			if err := apiGet(cmd, env, "/v1/grants", q, &list); err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Stdout, list)
			}
			printReviews(env.Stdout, list.Reviews)
			return nil
		},
	}
	cmd.Flags().BoolVar(&mine, "mine", false, "only grants you requested")
	cmd.Flags().BoolVar(&active, "active", false, "only grants in force now")
	cmd.Flags().StringVar(&resource, "resource", "", "only this resource")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func grantsRevokeCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "End a grant now (its initiator, an approver of the resource or an admin); live sessions lose it at their next operation",
		Args:  exactlyOne("grant id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			var r api.ReviewJSON
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/grants/"+pathEscape(args[0])+"/revoke", nil, &r); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "revoked %s (%s on %s)\n", r.ID, reviewWhat(r), r.Resource)
			return nil
		},
	}
}
