package cli

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/countersign/countersign/internal/api"
	"github.com/spf13/cobra"
)

func sessionsCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "Read recorded sessions: who connected where, and what each ran",
	}
	cmd.AddCommand(sessionsListCmd(env), sessionsShowCmd(env))
	return cmd
}

func sessionsListCmd(env *Env) *cobra.Command {
	var resource, user, since string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--resource R] [--user U] [--since 24h]",
		Short: "List sessions, newest first (auditors and admins see everyone's, others their own)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			setParam(q, "resource", resource)
			setParam(q, "user", user)
			setParam(q, "since", since)
			var list api.SessionList
			if err := apiGet(cmd, env, "/v1/sessions", q, &list); err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Stdout, list)
			}
			printSessions(env.Stdout, list.Sessions)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&resource, "resource", "", "only this resource")
	fl.StringVar(&user, "user", "", "only this identity (its key issuer|subject, or its subject)")
	fl.StringVar(&since, "since", "", "opened after: an RFC 3339 time or a duration back (24h, 7d)")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printSessions(w io.Writer, ss []api.Session) {
	if len(ss) == 0 {
		fmt.Fprintln(w, "no sessions")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRESOURCE\tIDENTITY\tOPENED\tCLOSED\tOPS\tREFUSED\tERRORS\tCLIENT")
	for _, s := range ss {
		closed := localTimePtr(s.ClosedAt)
		if closed == "" {
			closed = "open"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.ID, s.Resource, s.Actor, localTime(s.OpenedAt), closed,
			s.Operations, s.Refused, s.Errors, strings.TrimSpace(s.ClientProgram+" "+s.ClientAddr))
	}
	tw.Flush()
}

func sessionsShowCmd(env *Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a session as a timeline: time, statement, decision, review, rows, duration, error",
		Args:  exactlyOne("session id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var d api.SessionDetail
			if err := apiGet(cmd, env, "/v1/sessions/"+pathEscape(args[0]), nil, &d); err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Stdout, d)
			}
			printSessionDetail(env.Stdout, d)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printSessionDetail(w io.Writer, d api.SessionDetail) {
	fmt.Fprintf(w, "session %s on %s by %s", d.ID, d.Resource, d.Actor)
	if d.ClientProgram != "" || d.ClientAddr != "" {
		fmt.Fprintf(w, " (%s)", strings.TrimSpace(d.ClientProgram+" from "+d.ClientAddr))
	}
	fmt.Fprintf(w, "\nopened %s", localTime(d.OpenedAt))
	if d.ClosedAt != nil {
		fmt.Fprintf(w, ", closed %s (%s)", localTimePtr(d.ClosedAt), orDash(d.CloseReason))
	}
	fmt.Fprintln(w)
	if len(d.Timeline) == 0 {
		fmt.Fprintln(w, "no operations")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tDECISION\tKIND\tREVIEW\tROWS\tDURATION\tERROR\tSTATEMENT")
	for _, op := range d.Timeline {
		rows, dur, errc := "-", "-", ""
		if o := op.Outcome; o != nil {
			rows, dur, errc = fmt.Sprint(o.Rows), fmt.Sprintf("%dms", o.DurationMS), o.ErrorCode
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", localTime(op.Time), decisionText(op), op.Kind,
			orDash(firstOf(op.ReviewID, op.GrantID)), rows, dur, errc, oneLine(op.Text, 80))
	}
	tw.Flush()
	for _, op := range d.Timeline {
		if op.Outcome != nil && len(op.Outcome.Results) > 0 {
			printResults(w, op)
		}
	}
}

// printResults prints the result rows the recording kept for op (masked
// when they were recorded), each result as a small table.
func printResults(w io.Writer, op api.Operation) {
	fmt.Fprintf(w, "\nresults of %s %s\n", localTime(op.Time), oneLine(op.Text, 60))
	for _, r := range op.Outcome.Results {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if len(r.Columns) > 0 {
			fmt.Fprintln(tw, "  "+strings.Join(r.Columns, "\t"))
		}
		for _, row := range r.Rows {
			cells := make([]string, len(row))
			for i, v := range row {
				cells[i] = "NULL"
				if v != nil {
					cells[i] = oneLine(*v, 40)
				}
			}
			fmt.Fprintln(tw, "  "+strings.Join(cells, "\t"))
		}
		tw.Flush()
		if r.Truncated {
			fmt.Fprintf(w, "  (more rows; the first %d were kept)\n", len(r.Rows))
		}
	}
}

func decisionText(op api.Operation) string {
	if op.Code == "" {
		return op.Decision
	}
	return op.Decision + " (" + op.Code + ")"
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
