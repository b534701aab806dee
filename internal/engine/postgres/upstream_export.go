package postgres

import (
	"github.com/countersign/countersign/internal/config"
	"github.com/jackc/pgx/v5/pgconn"
)

// UpstreamConfig is the connection the gateway makes to a PostgreSQL
// resource with the resource's own credentials, as sessions do; helpers
// that talk to the upstream themselves (pgestimate) use it. The password in
// it must not leave the gateway.
func UpstreamConfig(res *config.Resource) (*pgconn.Config, error) {
	return upstreamConfig(res, nil)
}
