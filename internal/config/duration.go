package config

import (
	"errors"
	"math"
	"regexp"
	"strconv"
	"time"
)

// daysPrefix matches a leading whole number of days: "400d", "1d12h".
var daysPrefix = regexp.MustCompile(`^([0-9]+)d(.*)$`)

var errDuration = errors.New("must be a duration such as 90s, 10m, 4h or 400d")

// parseDuration reads a Go duration with an optional leading count of days
// (24h each), since retention and grant lengths are naturally days.
func parseDuration(s string) (time.Duration, error) {
	m := daysPrefix.FindStringSubmatch(s)
	if m == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, errDuration
		}
		return d, nil
	}
	days, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || days > int64(math.MaxInt64/int64(24*time.Hour)) {
		return 0, errors.New("is too long; the longest duration is about 106751d")
	}
	total := time.Duration(days) * 24 * time.Hour
	if m[2] == "" {
		return total, nil
	}
	if m[2][0] == '-' || m[2][0] == '+' {
		return 0, errDuration
	}
	rest, err := time.ParseDuration(m[2])
	if err != nil {
		return 0, errDuration
	}
	if total > math.MaxInt64-rest {
		return 0, errors.New("is too long; the longest duration is about 106751d")
	}
	return total + rest, nil
}
