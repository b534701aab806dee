package mysql

import (
	"errors"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// Attacks on invariant 8: settings that would make the server read text
// differently from the gateway are refused outright, however they are
// sent, and the guard never sees them (no review could make them safe).
func TestTokenizingSettingsRefused(t *testing.T) {
	ev := newEnv(t, nil)
	c := gatewayClient(t, ev)
	tests := []struct {
		name string
		run  func() error
	}{
		{"ansi_quotes", func() error { _, err := c.Execute("SET sql_mode = 'ANSI_QUOTES'"); return err }},
		{"no_backslash_escapes", func() error {
			_, err := c.Execute("SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES'")
			return err
		}},
		{"expression", func() error { _, err := c.Execute("SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')"); return err }},
		{"names latin1", func() error { _, err := c.Execute("SET NAMES latin1"); return err }},
		{"results utf16", func() error { _, err := c.Execute("SET character_set_results = 'utf16'"); return err }},
		{"hidden in a multi-statement", func() error { _, err := c.Execute("SELECT 1; SET sql_mode = 'ANSI'"); return err }},
		{"prepared with a parameter", func() error { _, err := c.Execute("SET sql_mode = ?", "ANSI_QUOTES"); return err }},
		{"results via a parameter", func() error { _, err := c.Execute("SET character_set_results = ?", "utf16"); return err }},
		// DEFAULT takes the server's global value, which the gateway never
		// checked: refused whatever that global is (ERR 1231 here proves it,
		// since this MariaDB's globals are utf8mb4 and the SET would run).
		{"client default", func() error { _, err := c.Execute("SET character_set_client = DEFAULT"); return err }},
		{"names default", func() error { _, err := c.Execute("SET NAMES DEFAULT"); return err }},
		{"charset default", func() error { _, err := c.Execute("SET CHARACTER SET DEFAULT"); return err }},
		{"connection default", func() error { _, err := c.Execute("SET SESSION character_set_connection = DEFAULT"); return err }},
		{"collation default", func() error { _, err := c.Execute("SET collation_connection = DEFAULT"); return err }},
		{"results default", func() error { _, err := c.Execute("SET @@character_set_results = DEFAULT"); return err }},
		{"sql_mode default", func() error { _, err := c.Execute("SET sql_mode = DEFAULT"); return err }},
		{"client default, prepared", func() error {
			s, err := c.Prepare("SET character_set_client = DEFAULT")
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = s.Execute()
			return err
		}},
		{"SQL-level EXECUTE", func() error {
			if _, err := c.Execute("PREPARE s FROM 'SET sql_mode = ''ANSI_QUOTES'''"); err != nil {
				t.Fatalf("PREPARE from a literal: %v", err)
			}
			_, err := c.Execute("EXECUTE s")
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			var me *gomysql.MyError
			if !errors.As(err, &me) || me.Code != erWrongValueForVar || !strings.Contains(me.Message, "no review can allow this") {
				t.Fatalf("err = %v, want ERR %d", err, erWrongValueForVar)
			}
			r, err := c.Execute("SELECT @@SESSION.sql_mode, @@SESSION.character_set_client, @@SESSION.character_set_results")
			if err != nil {
				t.Fatalf("the session did not survive the refusal: %v", err)
			}
			mode, _ := r.GetString(0, 0)
			cs, _ := r.GetString(0, 1)
			res, _ := r.GetString(0, 2)
			if strings.Contains(mode, "ANSI") || strings.Contains(mode, "BACKSLASH") || cs != "utf8mb4" || res != "utf8mb4" {
				t.Fatalf("the upstream session changed: sql_mode %q, client %q, results %q", mode, cs, res)
			}
		})
	}
	for _, text := range ev.g.Texts() {
		if strings.Contains(text, "ANSI") || strings.Contains(text, "latin1") || strings.Contains(text, "utf16") ||
			(strings.HasPrefix(text, "SET ") && strings.Contains(text, "?")) || strings.Contains(text, "DEFAULT") || text == "EXECUTE s" {
			if strings.HasPrefix(text, "PREPARE ") {
				continue // preparing runs nothing; its EXECUTE is what is refused
			}
			t.Errorf("the guard was asked about %q: a review could have been created for it", text)
		}
	}
}

// An Unknown statement the gateway cannot parse, once allowed (here the
// test guard allows everything; in production: approved), may change the
// session's settings: the gateway reads them back and ends a session it
// could not follow any more, telling the client at its next command.
func TestUnknownThatChangesSettingsEndsSession(t *testing.T) {
	ev := newEnv(t, nil)
	t.Run("harmless unknown keeps the session", func(t *testing.T) {
		c := gatewayClient(t, ev)
		if _, err := c.Execute("DO 1"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Execute("SELECT 1"); err != nil {
			t.Fatalf("the session ended after a harmless unknown statement: %v", err)
		}
	})
	for _, q := range []string{
		"SET CHARACTER SET sjis", // TiDB knows no sjis: unparsed, Unknown
		// MariaDB restores sql_mode after a compound statement, as after a
		// stored procedure, but not the character set.
		"BEGIN NOT ATOMIC SET NAMES gbk; END",
		"EXECUTE IMMEDIATE 'SET NAMES gbk'",
	} {
		t.Run(q, func(t *testing.T) {
			c := gatewayClient(t, ev)
			if _, err := c.Execute(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			_, err := c.Execute(`SELECT "a"`)
			var me *gomysql.MyError
			if !errors.As(err, &me) || !strings.Contains(me.Message, "countersign ended the session") {
				t.Fatalf("the next command: %v; want the session ended", err)
			}
			if _, err := c.Execute("SELECT 1"); err == nil {
				t.Fatal("the session went on")
			}
		})
	}
}
