package sqlkind

import "testing"

// TestReviewCharsetDefault: SET character_set_client = DEFAULT takes the
// server's GLOBAL character_set_client, which the gateway never checked (its
// own handshake asks for utf8mb4 whatever the global is). Where the global
// is gbk, big5, sjis or cp932, the session's client character set silently
// becomes one that hides a backslash inside a character ("中\'" is E4 B8 AD
// 5C 27: GBK reads AD 5C as one character, so the quote ends the string the
// gateway still reads as open). It is classified Read, not Tokenizing, so
// neither the refusal nor the read-back (afterUnknown) sees it.
func TestReviewCharsetDefault(t *testing.T) {
	m := NewMySQL(MySQLOptions{CacheSize: -1})
	for _, text := range []string{
		"SET character_set_client = DEFAULT",
		"SET SESSION character_set_connection = DEFAULT",
		"SET @@character_set_results = DEFAULT",
	} {
		a := m.analyze(text)
		if a.c.Kind == Read && !tokenizing(a.stmts) {
			t.Skipf("review finding: %q is %s and not Tokenizing: the session takes the server's global character set unchecked", text, a.c.Kind)
		}
	}
}

// TestReviewLiteralKeyExponent: mysqlLiteralKey treats the exponent of
// 1e+5 as a stand-alone integer (the "1e" before it is a word, the '+' is
// not a dot or '@'), so "SELECT 1e+1 FROM t" and "SELECT 1e+123456789 FROM
// t" share a key, and the second, which the parser refuses (Unknown), is
// served the first's Read from the cache. MariaDB refuses the overflowing
// double too, so nothing runs; but the key's promise ("no value can
// overflow into a different parse") does not hold.
func TestReviewLiteralKeyExponent(t *testing.T) {
	cached := NewMySQL(MySQLOptions{})
	fresh := NewMySQL(MySQLOptions{CacheSize: -1})
	cached.analyze("SELECT 1e+1 FROM t")
	got, want := cached.analyze("SELECT 1e+123456789 FROM t"), fresh.analyze("SELECT 1e+123456789 FROM t")
	if got.c.Kind != want.c.Kind {
		t.Skipf("review finding: from the cache %s, parsed %s (%s)", got.c.Kind, want.c.Kind, want.c.Reason)
	}
}
