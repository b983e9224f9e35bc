package app

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/warden-schools/warden/internal/policy"
	"github.com/warden-schools/warden/internal/store"
)

func TestYouTubeApprovals(t *testing.T) {
	a := openDemo(t)
	ctx := context.Background()
	const video, channel = "dQw4w9WgXcQ", "UC_x5XG1OV2P6uZZ5FSM9Ttw"

	before, err := store.CurrentRevision(ctx, a.DB())
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.ApproveYouTube(ctx, "cli:teacher", DemoKeyStage2, "https://youtu.be/"+video+"?t=3", "  Year 5\n volcanoes ")
	if err != nil {
		t.Fatal(err)
	}
	if got.Ref != (policy.YouTubeRef{Kind: policy.YouTubeVideo, ID: video}) || got.Reason != "Year 5 volcanoes" || got.ExceptionID == 0 {
		t.Errorf("approval %+v", got)
	}
	if _, err := a.ApproveYouTube(ctx, "cli:teacher", "", channel, "assemblies"); err != nil {
		t.Fatal(err)
	}
	// The change record has both.
	after, err := store.CurrentRevision(ctx, a.DB())
	if err != nil || after != before+2 {
		t.Errorf("revisions %d -> %d, %v", before, after, err)
	}
	var summary, actor string
	if err := a.DB().QueryRowContext(ctx, a.DB().Rebind("SELECT summary, actor FROM revisions WHERE id = ?"), before+1).Scan(&summary, &actor); err != nil {
		t.Fatal(err)
	}
	if summary != "allow exception youtube.com/watch?v="+video+" for key-stage-2" || actor != "cli:teacher" {
		t.Errorf("revision %q by %q", summary, actor)
	}

	// The proxy's policy sees them.
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	snap := a.Snapshot()
	if !snap.YouTubeApproved(DemoKeyStage2, video, "") || snap.YouTubeApproved(DemoVisitors, video, "") ||
		!snap.YouTubeApproved(DemoVisitors, "", channel) {
		t.Error("approvals not in the policy as given")
	}

	list, err := a.YouTubeApprovals(ctx, DemoKeyStage2)
	if err != nil || len(list) != 2 {
		t.Fatalf("list %+v, %v", list, err)
	}
	if list[0].Group != DemoKeyStage2 || list[0].By != "cli:teacher" || list[0].At.IsZero() || list[1].Group != "" || list[1].Ref.Kind != policy.YouTubeChannel {
		t.Errorf("list %+v", list)
	}
	if list, _ := a.YouTubeApprovals(ctx, DemoVisitors); len(list) != 1 {
		t.Errorf("visitors see %+v", list)
	}

	// Errors that say what to do.
	tests := []struct {
		name, group, what string
		is                error
		msg               string
	}{
		{"again", DemoKeyStage2, "https://www.youtube.com/watch?v=" + video, store.ErrConflict, "already approved"},
		{"no group", "key-stage-9", video, store.ErrNotFound, "no group"},
		{"not YouTube", DemoKeyStage2, "https://example.com/watch?v=" + video, policy.ErrNotYouTube, "not a YouTube"},
		{"handle", DemoKeyStage2, "https://www.youtube.com/@teacher", policy.ErrNotYouTube, "channel ID"},
	}
	for _, tt := range tests {
		_, err := a.ApproveYouTube(ctx, "cli:teacher", tt.group, tt.what, "")
		if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if _, err := a.ApproveYouTube(ctx, "t", DemoKeyStage2, "M7lc1UVf-VE", strings.Repeat("x", MaxYouTubeReason+1)); err == nil {
		t.Error("a long reason was kept")
	}
	// A blocked video cannot be approved.
	if _, err := a.Policies.AddException(ctx, "test", DemoVisitors, policy.Exception{Action: policy.Block, Pattern: "www.youtube.com/watch?v=M7lc1UVf-VE"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ApproveYouTube(ctx, "t", DemoVisitors, "M7lc1UVf-VE", ""); err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Errorf("approving a blocked video: %v", err)
	}

	// Revoking.
	if _, err := a.RevokeYouTube(ctx, "cli:teacher", DemoVisitors, channel); !errors.Is(err, ErrYouTubeNotApproved) || !strings.Contains(err.Error(), "every group") {
		t.Errorf("revoking a school-wide approval for one group: %v", err)
	}
	removed, err := a.RevokeYouTube(ctx, "cli:teacher", DemoKeyStage2, video)
	if err != nil || len(removed) != 1 || removed[0].Ref.ID != video {
		t.Fatalf("revoke: %+v, %v", removed, err)
	}
	if _, err := a.RevokeYouTube(ctx, "cli:teacher", DemoKeyStage2, video); !errors.Is(err, ErrYouTubeNotApproved) {
		t.Errorf("revoking again: %v", err)
	}
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Snapshot().YouTubeApproved(DemoKeyStage2, video, "") {
		t.Error("the revoked video is still approved")
	}
}
