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

// auditChangesCmd is `audit changes` (all) or `audit unreviewed`.
func auditChangesCmd(env *Env, all bool) *cobra.Command {
	var resource, object, since, until string
	var asJSON bool
	use, short, path := "changes --resource R [--object T] [--since 24h]",
		"List every write, schema, privilege and admin operation that ran: initiator, approvers, review or grant, digest", "/v1/audit/changes"
	if !all {
		use, short, path = "unreviewed [--resource R] [--since 24h]",
			"List what ran without a per-operation review: under a grant, by break-glass, or unreviewed by policy", "/v1/audit/unreviewed"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all && resource == "" {
				return fmt.Errorf("name the resource: --resource R")
			}
			q := url.Values{}
			setParam(q, "resource", resource)
			setParam(q, "object", object)
			setParam(q, "since", since)
			setParam(q, "until", until)
			var list api.ChangeList
			if err := apiGet(cmd, env, path, q, &list); err != nil {
				return err
			}
			if asJSON {
				return printJSON(env.Stdout, list)
			}
			printChanges(env.Stdout, list.Changes)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&resource, "resource", "", "the resource")
	if all {
		fl.StringVar(&object, "object", "", "only statements naming this object (schema.table, or table)")
	}
	fl.StringVar(&since, "since", "", "from: an RFC 3339 time or a duration back (24h, 7d)")
	fl.StringVar(&until, "until", "", "before: an RFC 3339 time or a duration back")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printChanges(w io.Writer, cs []api.Change) {
	if len(cs) == 0 {
		fmt.Fprintln(w, "nothing found")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EXECUTED\tRESOURCE\tINITIATOR\tKIND\tUNDER\tAPPROVERS\tAPPROVED\tROWS\tERROR\tDIGEST\tSTATEMENT")
	for _, c := range cs {
		under := c.Under
		if id := firstOf(c.ReviewID, c.GrantID); id != "" {
			under += " " + id
		}
		if c.Retro != "" {
			under += " (retro " + c.Retro + ")"
		}
		rows, errc := "-", ""
		if o := c.Outcome; o != nil {
			rows, errc = fmt.Sprint(o.Rows), o.ErrorCode
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", localTime(c.Time), c.Resource, c.Actor, c.Kind, under,
			approverList(c.Approvers), orDash(localTimePtr(c.ApprovedAt)), rows, errc, shortDigest(c.Digest), oneLine(c.Text, 60))
	}
	tw.Flush()
}

func approverList(as []api.Approval) string {
	if len(as) == 0 {
		return "-"
	}
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.Who
	}
	return strings.Join(names, ",")
}

func shortDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return orDash(d)
}
