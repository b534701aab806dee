/* copy_libpq runs COPY FROM STDIN the way libpq's PQexecParams sends it
 * (Parse, Bind, Describe, Execute, Sync, then a read), with good data, bad
 * data, a CopyFail and a missing table, each followed by SELECT 1 on the
 * same connection. One line per step: "name status sqlstate tag". Used by
 * TestCopyInLibpq; argv[1] is the conninfo, argv[2] the table. */
#include <stdio.h>
#include <string.h>
#include <libpq-fe.h>

static void report(const char *name, PGresult *r) {
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	printf("%s %s %s %s\n", name, PQresStatus(PQresultStatus(r)), state ? state : "-", PQcmdStatus(r));
}

static void copy(PGconn *c, const char *name, const char *sql, const char *data, const char *fail) {
	PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_COPY_IN) {
		PQclear(r);
		if (data && PQputCopyData(c, data, (int)strlen(data)) != 1)
			printf("%s putCopyData failed: %s", name, PQerrorMessage(c));
		if (PQputCopyEnd(c, fail) != 1)
			printf("%s putCopyEnd failed: %s", name, PQerrorMessage(c));
		r = PQgetResult(c);
	}
	report(name, r);
	PQclear(r);
	while ((r = PQgetResult(c)) != NULL) {
		report("extra", r);
		PQclear(r);
	}
	r = PQexecParams(c, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
	printf("%s then %s %s\n", name, PQresStatus(PQresultStatus(r)),
	       PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : PQerrorMessage(c));
	PQclear(r);
}

int main(int argc, char **argv) {
	if (argc != 3)
		return 2;
	PGconn *c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK) {
		printf("connect: %s", PQerrorMessage(c));
		return 1;
	}
	char sql[256];
	snprintf(sql, sizeof sql, "COPY %s FROM STDIN", argv[2]);
	copy(c, "good", sql, "1\n2\n", NULL);
	copy(c, "bad", sql, "3\nx\n", NULL);
	copy(c, "copyfail", sql, "4\n", "the client gave up");
	copy(c, "missing", "COPY cs_copy_missing_table FROM STDIN", NULL, NULL);
	printf("connection %s\n", PQstatus(c) == CONNECTION_OK ? "ok" : "bad");
	PQfinish(c);
	return 0;
}
