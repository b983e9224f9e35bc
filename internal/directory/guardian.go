package directory

import (
	"context"
	"fmt"

	"github.com/warden-schools/warden/internal/store"
)

// Guardianship links a parent or carer to a pupil, with the relationship
// as the MIS records it ("Mother", "Foster carer").
type Guardianship struct {
	ParentID     int64
	PupilID      int64
	Relationship string
}

// maxRelationshipLen bounds a relationship.
const maxRelationshipLen = 50

// upsertGuardian links or relinks a parent and pupil.
func upsertGuardian(ctx context.Context, q store.Querier, parentID, pupilID int64, relationship string) error {
	_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO guardians (parent_id, pupil_id, relationship) VALUES (?, ?, ?)
		ON CONFLICT (parent_id, pupil_id) DO UPDATE SET relationship = excluded.relationship`), parentID, pupilID, relationship)
	if err != nil {
		return fmt.Errorf("link parent %d to pupil %d: %w", parentID, pupilID, err)
	}
	return nil
}

// LinkGuardian records that a parent or carer (a person of KindParent) is
// responsible for a pupil, or changes the relationship of an existing
// link. It returns a wrapped store.ErrNotFound if either person is
// missing and an ErrInvalid error if they are of the wrong kinds.
func (d *Directory) LinkGuardian(ctx context.Context, actor string, parentID, pupilID int64, relationship string) error {
	rel, err := cleanText("relationship", relationship, maxRelationshipLen)
	if err != nil {
		return fmt.Errorf("link guardian: %w", err)
	}
	err = d.db.WithTx(ctx, func(tx *store.Tx) error {
		parent, err := getPerson(ctx, tx, parentID)
		if err != nil {
			return err
		}
		pupil, err := getPerson(ctx, tx, pupilID)
		if err != nil {
			return err
		}
		if parent.Kind != KindParent {
			return invalidf("person %d is %s, not a parent or carer", parentID, parent.Kind.article())
		}
		if pupil.Kind != KindPupil {
			return invalidf("person %d is %s, not a pupil", pupilID, pupil.Kind.article())
		}
		if err := upsertGuardian(ctx, tx, parentID, pupilID, rel); err != nil {
			return err
		}
		_, err = store.AddRevision(ctx, tx, d.now(), actor, fmt.Sprintf("link parent %d to pupil %d", parentID, pupilID))
		return err
	})
	if err != nil {
		return fmt.Errorf("link guardian: %w", err)
	}
	return nil
}

// Guardianships returns the links in which the person is the parent or
// the pupil, ordered by parent then pupil.
func (d *Directory) Guardianships(ctx context.Context, personID int64) ([]Guardianship, error) {
	rows, err := d.db.QueryContext(ctx, d.db.Rebind(`SELECT parent_id, pupil_id, relationship FROM guardians
		WHERE parent_id = ? OR pupil_id = ? ORDER BY parent_id, pupil_id`), personID, personID)
	if err != nil {
		return nil, fmt.Errorf("read guardians of person %d: %w", personID, err)
	}
	defer rows.Close()
	var out []Guardianship
	for rows.Next() {
		var g Guardianship
		if err := rows.Scan(&g.ParentID, &g.PupilID, &g.Relationship); err != nil {
			return nil, fmt.Errorf("read guardians of person %d: %w", personID, err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read guardians of person %d: %w", personID, err)
	}
	return out, nil
}

// loadGuardians reads every link, keyed by parent and pupil.
func loadGuardians(ctx context.Context, q store.Querier) (map[[2]int64]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT parent_id, pupil_id, relationship FROM guardians")
	if err != nil {
		return nil, fmt.Errorf("read guardians: %w", err)
	}
	defer rows.Close()
	out := make(map[[2]int64]string)
	for rows.Next() {
		var parent, pupil int64
		var rel string
		if err := rows.Scan(&parent, &pupil, &rel); err != nil {
			return nil, fmt.Errorf("read guardians: %w", err)
		}
		out[[2]int64{parent, pupil}] = rel
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read guardians: %w", err)
	}
	return out, nil
}
