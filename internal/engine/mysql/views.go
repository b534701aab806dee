package mysql

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/config"
)

// viewTTL bounds how long a resource's list of views is trusted: a view
// created later is seen at the latest after it (views are created by
// schema operations, which are reviewed; the engine also forgets the list
// after every schema operation of its own sessions).
const viewTTL = 30 * time.Second

// viewSet is one resource's views, lower-cased "schema.table".
type viewSet struct {
	at    time.Time
	names map[string]bool
}

// viewCache knows which relations of each resource are views. The column
// definitions of a view's result name the view as org_table, so masking
// rules on the table's columns would not match: such columns are masked
// whole (fail closed). It is only consulted when masking is active.
type viewCache struct {
	mu   sync.Mutex
	sets map[string]*viewSet
}

// isView returns a lookup for one result of the resource. The list is
// loaded at most once per result; when it cannot be loaded every relation
// counts as a view (masked whole).
func (e *Engine) isView(res *config.Resource) func(schema, table string) bool {
	var once sync.Once
	var set map[string]bool
	var failed bool
	return func(schema, table string) bool {
		once.Do(func() {
			var err error
			set, err = e.views.load(res)
			if err != nil {
				e.log.Warn("listing the views of a resource failed; its columns are masked whole", "resource", res.Name, "error", err)
				failed = true
			}
		})
		return failed || set[strings.ToLower(schema+"."+table)]
	}
}

func (v *viewCache) load(res *config.Resource) (map[string]bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s := v.sets[res.Name]; s != nil && time.Since(s.at) < viewTTL {
		return s.names, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), upstreamConnectTimeout)
	defer cancel()
	up, err := dialUpstream(ctx, res, "", 0)
	if err != nil {
		return nil, err
	}
	defer up.Close()
	r, err := up.Execute("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.VIEWS")
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for i := range r.Values {
		s, _ := r.GetString(i, 0)
		t, _ := r.GetString(i, 1)
		names[strings.ToLower(s+"."+t)] = true
	}
	if v.sets == nil {
		v.sets = map[string]*viewSet{}
	}
	v.sets[res.Name] = &viewSet{at: time.Now(), names: names}
	return names, nil
}

// forget drops a resource's list after a schema operation.
func (v *viewCache) forget(resource string) {
	v.mu.Lock()
	delete(v.sets, resource)
	v.mu.Unlock()
}
