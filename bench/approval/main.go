// Command approval measures how long a held write takes to run once an
// approver says yes: a client sends a write that a `mode: wait` policy
// holds, a second identity approves it through the HTTP API, and the clock
// runs from the approval to the client's answer. The gateway releases a
// waiting session by notification, not by polling, so this should stay far
// under the 100 ms target. bench/approval.sh starts a gateway and runs it.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	api := flag.String("api", "https://127.0.0.1:28443", "the gateway's API")
	caFile := flag.String("ca", "", "the gateway's CA certificate (PEM)")
	dsn := flag.String("pg", "", "connection string of the resource through the gateway (creator's token as password)")
	approver := flag.String("approver", "", "an approver's API token")
	n := flag.Int("n", 30, "how many writes to hold and approve")
	flag.Parse()
	if *caFile == "" || *dsn == "" || *approver == "" {
		log.Fatal("usage: approval -ca CA.pem -pg DSN -approver TOKEN [-api URL] [-n 30]")
	}
	hc, err := httpClient(*caFile)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, *dsn)
	if err != nil {
		log.Fatalf("connecting through the gateway: %v", err)
	}
	defer conn.Close(ctx)

	c := client{http: hc, api: *api, token: *approver}
	var decided, total []time.Duration
	for i := range *n {
		d, t, err := once(ctx, conn, c, i)
		if err != nil {
			log.Fatalf("write %d: %v", i, err)
		}
		decided = append(decided, d)
		total = append(total, t)
	}
	report("approval answered -> client has its result", decided)
	report("approve request sent -> client has its result", total)
}

// once holds one write, approves it and returns the time from the approval's
// answer, and from the approval request, to the client's result.
func once(ctx context.Context, conn *pgx.Conn, c client, i int) (decided, total time.Duration, err error) {
	text := fmt.Sprintf("INSERT INTO approval_bench VALUES (%d)", i)
	done := make(chan error, 1)
	var finished time.Time
	go func() {
		_, err := conn.Exec(ctx, text, pgx.QueryExecModeSimpleProtocol)
		finished = time.Now()
		done <- err
	}()
	id, err := c.pending(text, done)
	if err != nil {
		return 0, 0, err
	}
	sent := time.Now()
	if err := c.approve(id); err != nil {
		return 0, 0, err
	}
	answered := time.Now()
	if err := <-done; err != nil {
		return 0, 0, fmt.Errorf("the approved write failed: %w", err)
	}
	return finished.Sub(answered), finished.Sub(sent), nil
}

type client struct {
	http  *http.Client
	api   string
	token string
}

type review struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// pending polls for the review of text; polling is only the benchmark's
// way to learn the id, it is not on the measured path.
func (c client) pending(text string, done <-chan error) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return "", fmt.Errorf("the write was not held (err=%v): check the policy's review kinds and mode: wait", err)
		default:
		}
		var out struct{ Reviews []review }
		if err := c.do("GET", "/v1/reviews?status=pending&type=operation", nil, &out); err != nil {
			return "", err
		}
		for _, r := range out.Reviews {
			if r.Text == text {
				return r.ID, nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return "", fmt.Errorf("no pending review for %q after 30s", text)
}

func (c client) approve(id string) error {
	return c.do("POST", "/v1/reviews/"+id+"/approve", map[string]string{"comment": "bench"}, nil)
}

func (c client) do(method, path string, body, out any) error {
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, c.api+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string }
		}
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error.Message)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func httpClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, nil
}

func report(label string, ds []time.Duration) {
	slices.Sort(ds)
	pct := func(p float64) time.Duration { return ds[int(p*float64(len(ds)-1))] }
	fmt.Printf("%-48s n=%d  median %6.2f ms  p95 %6.2f ms  max %6.2f ms\n", label, len(ds),
		ms(pct(0.5)), ms(pct(0.95)), ms(ds[len(ds)-1]))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
