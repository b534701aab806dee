package sqlkind

import "testing"

// TestReviewCharsetDefault: SET character_set_client = DEFAULT takes the
// server's GLOBAL character_set_client, which the gateway never checked (its
// own handshake asks for utf8mb4 whatever the global is). Where the global
// is gbk, big5, sjis or cp932, the session's client character set silently
// becomes one that hides a backslash inside a character ("中\'" is E4 B8 AD
// 5C 27: GBK reads AD 5C as one character, so the quote ends the string the
// gateway still reads as open). It was classified Read, not Tokenizing, so
// neither the refusal nor the read-back (afterUnknown) saw it; now it is
// refused like any setting the gateway cannot vouch for.
func TestReviewCharsetDefault(t *testing.T) {
	m := NewMySQL(MySQLOptions{CacheSize: -1})
	for _, text := range []string{
		"SET character_set_client = DEFAULT",
		"SET SESSION character_set_connection = DEFAULT",
		"SET @@character_set_results = DEFAULT",
		"SET collation_connection = DEFAULT",
		"SET NAMES DEFAULT",
		"SET CHARACTER SET DEFAULT",
		"SET sql_mode = DEFAULT",
		"SET autocommit = 1, character_set_client = DEFAULT",
	} {
		a := m.analyze(text)
		if a.c.Kind != Unknown || !tokenizing(a.stmts) {
			t.Errorf("%q is %s, Tokenizing %v: the session would take the server's global character set unchecked", text, a.c.Kind, tokenizing(a.stmts))
		}
	}
}

// TestReviewLiteralKeyExponent: mysqlLiteralKey treated the exponent of
// 1e+5 as a stand-alone integer (the "1e" before it is a word, the '+' is
// not a dot or '@'), so "SELECT 1e+1 FROM t" and "SELECT 1e+123456789 FROM
// t" shared a key, and the second, which the parser refuses (Unknown), was
// served the first's Read from the cache. MariaDB refuses the overflowing
// double too, so nothing ran; but the key's promise ("no value can
// overflow into a different parse") did not hold. exponentAt keeps such
// digits now.
func TestReviewLiteralKeyExponent(t *testing.T) {
	cached := NewMySQL(MySQLOptions{})
	fresh := NewMySQL(MySQLOptions{CacheSize: -1})
	cached.analyze("SELECT 1e+1 FROM t")
	got, want := cached.analyze("SELECT 1e+123456789 FROM t"), fresh.analyze("SELECT 1e+123456789 FROM t")
	if want.c.Kind != Unknown {
		t.Fatalf("%q parsed as %s; the test needs a text the parser refuses", "SELECT 1e+123456789 FROM t", want.c.Kind)
	}
	if got.c.Kind != want.c.Kind {
		t.Errorf("from the cache %s, parsed %s (%s)", got.c.Kind, want.c.Kind, want.c.Reason)
	}
}
