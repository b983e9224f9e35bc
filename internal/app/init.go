package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/warden-schools/warden/internal/lists"
	"github.com/warden-schools/warden/internal/lists/builtin"
	"github.com/warden-schools/warden/internal/lists/listsync"
	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/policy/policystore"
	"github.com/warden-schools/warden/internal/store"
)

// ErrNotEmpty is returned when the demo is asked for in a data folder
// that already holds a school.
var ErrNotEmpty = errors.New("the data folder already holds a school; use an empty --data folder for the demo")

// InitResult says what Init did.
type InitResult struct {
	// Fresh is true when the store was new.
	Fresh bool
	// Seeded is true when the demonstration school was written.
	Seeded bool
	// Defaults lists what was added because it was missing (the unknown
	// client group, the education allow list).
	Defaults []string
}

// Init prepares the store: on a new store it writes the defaults every
// school starts with (the strictest policy for unknown clients, the
// education allow list), and with demo it seeds the demonstration school.
// demoRequired makes a non-empty store an error (warden init --demo);
// otherwise the demo is only seeded into an empty store (warden serve
// --demo).
func (a *App) Init(ctx context.Context, demo, demoRequired bool) (InitResult, error) {
	var res InitResult
	rev, err := store.CurrentRevision(ctx, a.db)
	if err != nil {
		return res, err
	}
	res.Fresh = rev == 0
	if demo && demoRequired && !res.Fresh {
		return res, ErrNotEmpty
	}
	if res.Defaults, err = a.ensureDefaults(ctx); err != nil {
		return res, err
	}
	if demo && res.Fresh {
		if err := a.seedDemo(ctx); err != nil {
			return res, fmt.Errorf("seed demo school: %w", err)
		}
		res.Seeded = true
	}
	return res, nil
}

// ensureDefaults adds what every installation needs if it is missing.
func (a *App) ensureDefaults(ctx context.Context) ([]string, error) {
	var added []string
	pol, err := a.Policies.Load(ctx)
	if err != nil {
		return nil, err
	}
	hasUnknown := false
	for _, g := range pol.Groups {
		hasUnknown = hasUnknown || g.ID == policy.UnknownGroupID
	}
	if !hasUnknown {
		g := policy.StrictestGroup(a.tax)
		spec := policystore.GroupSpec{ID: g.ID, Name: g.Name, Description: "Clients Warden cannot identify: the strictest policy.",
			Mode: g.Mode, SafeSearch: g.SafeSearch, DefaultAction: g.DefaultAction, EducationFirst: true, Position: 1000, Categories: g.Categories}
		if err := a.Policies.PutGroup(ctx, "warden", spec); err != nil {
			return nil, err
		}
		added = append(added, "group "+g.ID)
	}
	if _, err := a.Lists.Summary(ctx, builtin.EducationListID); errors.Is(err, store.ErrNotFound) {
		_, err := a.Lists.ImportReader(ctx, bytes.NewReader(builtin.EducationList()), "education.txt", listsync.ReaderOptions{
			ID: builtin.EducationListID, Format: lists.FormatPlain, Category: policy.EducationCategory, Source: "local", Actor: "warden",
		})
		if err != nil {
			return nil, fmt.Errorf("education allow list: %w", err)
		}
		added = append(added, "list "+builtin.EducationListID)
	} else if err != nil {
		return nil, err
	}
	return added, nil
}
