package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/countersign/countersign/internal/api"
	"github.com/spf13/cobra"
)

func reviewsCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reviews",
		Short: "List, show, approve and reject reviews (operations and grants waiting for approval)",
	}
	cmd.AddCommand(reviewsListCmd(env), reviewsShowCmd(env), reviewsVoteCmd(env, true), reviewsVoteCmd(env, false))
	return cmd
}

func reviewsListCmd(env *Env) *cobra.Command {
	var mine, toApprove, retro, asJSON bool
	var status, resource string
	cmd := &cobra.Command{
		Use:   "list [--mine | --to-approve | --retro] [--status S] [--resource R]",
		Short: "List the reviews you may see, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			setFlag(q, "mine", mine)
			setFlag(q, "to_approve", toApprove)
			setFlag(q, "retro", retro)
			setParam(q, "status", status)
			setParam(q, "resource", resource)
			var list api.ReviewList
			if err := apiGet(cmd, env, "/v1/reviews", q, &list); err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Stdout, list)
			}
			printReviews(env.Stdout, list.Reviews)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&mine, "mine", false, "only the reviews you initiated")
	fl.BoolVar(&toApprove, "to-approve", false, "only pending reviews you may decide")
	fl.BoolVar(&retro, "retro", false, "only open retrospective reviews of break-glass operations")
	fl.StringVar(&status, "status", "", "pending, approved, rejected, expired, consumed or revoked")
	fl.StringVar(&resource, "resource", "", "only this resource")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagsMutuallyExclusive("mine", "to-approve", "retro")
	return cmd
}

func printReviews(w io.Writer, rs []api.ReviewJSON) {
	if len(rs) == 0 {
		fmt.Fprintln(w, "no reviews")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tRESOURCE\tSTATUS\tAPPROVALS\tINITIATOR\tWHAT\tCREATED")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", r.ID, r.Type, r.Resource, r.Status,
			r.Approvals, r.Required, r.Initiator, reviewWhat(r), localTime(r.CreatedAt))
	}
	tw.Flush()
}

// reviewWhat is one short line: the grant's access, or the statement.
func reviewWhat(r api.ReviewJSON) string {
	if r.Type == "grant" {
		return fmt.Sprintf("%s for %s", strings.Join(r.Access, ","), r.Duration)
	}
	return r.Kind + ": " + oneLine(r.Text, 60)
}

func reviewsShowCmd(env *Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a review: statement, kind, objects, initiator, reason, session state, votes",
		Args:  exactlyOne("review id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r api.ReviewJSON
			if err := apiGet(cmd, env, "/v1/reviews/"+pathEscape(args[0]), nil, &r); err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Stdout, r)
			}
			printReview(env.Stdout, r)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printReview(w io.Writer, r api.ReviewJSON) {
	p := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-16s %s\n", k+":", v)
		}
	}
	p("review", r.ID+" ("+r.Type+")")
	p("resource", r.Resource)
	p("status", fmt.Sprintf("%s, %d of %d approvals from %s", r.Status, r.Approvals, r.Required, orNone(r.Approvers)))
	p("initiator", r.Initiator+" ("+r.InitiatorKey+")")
	p("reason", r.Reason)
	if r.Type == "grant" {
		p("access", strings.Join(r.Access, ", "))
		p("duration", r.Duration)
	} else {
		p("kind", r.Kind)
		p("objects", orNone(r.Objects))
		p("search_path", orDash(r.State.SearchPath))
		p("role", orDash(r.State.Role))
		p("schema", r.State.Schema)
		if r.State.Variables != "" {
			p("user variables", r.State.Variables+" (their values when it was refused are bound to the approval, not shown)")
		}
		p("in transaction", fmt.Sprint(r.State.InTransaction))
		p("estimate", r.Estimate)
		p("digest", r.Digest)
		p("session", r.SessionID)
	}
	p("created", localTime(r.CreatedAt))
	p("expires", localTime(r.ExpiresAt))
	p("decided", localTimePtr(r.DecidedAt))
	p("valid until", localTimePtr(r.ValidUntil))
	p("consumed", localTimePtr(r.ConsumedAt))
	p("revoked", localTimePtr(r.RevokedAt))
	if r.Text != "" {
		fmt.Fprintf(w, "statement:\n%s\n", indent(r.Text))
	}
	for i, prm := range r.Params {
		fmt.Fprintf(w, "param $%d:        %s\n", i+1, paramText(prm))
	}
	for _, v := range r.Votes {
		line := fmt.Sprintf("vote:            %s %s via %s at %s", v.Voter, v.Decision, v.Via, localTime(v.At))
		if v.Comment != "" {
			line += fmt.Sprintf(" (%q)", v.Comment)
		}
		fmt.Fprintln(w, line)
	}
}

func paramText(p api.ParamJSON) string {
	switch {
	case p.Null:
		return "NULL"
	case p.Hex != "":
		return fmt.Sprintf("0x%s (format %d, type %d)", p.Hex, p.Format, p.Type)
	}
	return fmt.Sprintf("%q (type %d)", p.Text, p.Type)
}

func reviewsVoteCmd(env *Env, approve bool) *cobra.Command {
	verb, short := "approve", "Approve a review (you cannot approve your own; each person counts once)"
	if !approve {
		verb, short = "reject", "Reject a review (one rejection rejects it)"
	}
	var comment string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   verb + " ID [--comment TEXT]",
		Short: short,
		Args:  exactlyOne("review id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			var r api.ReviewJSON
			path := "/v1/reviews/" + pathEscape(args[0]) + "/" + verb
			if err := c.do(cmd.Context(), http.MethodPost, path, api.VoteRequest{Comment: comment}, &r); err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Stdout, r)
			}
			fmt.Fprintf(env.Stdout, "%s %s: now %s, %d of %d approvals\n", map[bool]string{true: "approved", false: "rejected"}[approve], r.ID, r.Status, r.Approvals, r.Required)
			return nil
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "why; kept with your vote in the trail")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the review as JSON")
	return cmd
}

// newAPIClient is newClient with a token, labelling votes as coming from
// the CLI.
func newAPIClient(cmd *cobra.Command, env *Env) (*client, error) {
	c, err := newClient(cmd, env, true)
	if err != nil {
		return nil, err
	}
	c.hc.Transport = labelled{next: c.hc.Transport}
	return c, nil
}

// labelled adds the client header to every request.
type labelled struct{ next http.RoundTripper }

func (l labelled) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(api.ClientHeader, "cli")
	return l.next.RoundTrip(r)
}

// apiGet GETs path with the query and decodes the answer into out.
func apiGet(cmd *cobra.Command, env *Env, path string, q url.Values, out any) error {
	c, err := newAPIClient(cmd, env)
	if err != nil {
		return err
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return c.do(cmd.Context(), http.MethodGet, path, nil, out)
}

func setFlag(q url.Values, name string, on bool) {
	if on {
		q.Set(name, "1")
	}
}

func setParam(q url.Values, name, v string) {
	if v != "" {
		q.Set(name, v)
	}
}

func exactlyOne(what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("give exactly one %s (got %d arguments)", what, len(args))
		}
		return nil
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func localTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func localTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return localTime(*t)
}

// oneLine folds whitespace and cuts s to n runes, for table cells.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
