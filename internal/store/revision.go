package store

import (
	"context"
	"fmt"
	"time"
)

// AddRevision records a change to policy, lists, people or devices and
// returns the new policy version; at comes from the caller's clock. Call it inside the transaction that
// makes the change, so the version moves exactly when the change lands.
func AddRevision(ctx context.Context, q Querier, at time.Time, actor, summary string) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, q.Rebind("INSERT INTO revisions (at, actor, summary) VALUES (?, ?, ?) RETURNING id"),
		Millis(at), actor, summary).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("add revision: %w", err)
	}
	return id, nil
}

// CurrentRevision returns the newest policy version, 0 if nothing has
// changed yet.
func CurrentRevision(ctx context.Context, q Querier) (int64, error) {
	var id int64
	if err := q.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM revisions").Scan(&id); err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	return id, nil
}
