package main

import (
	"regexp"
	"strings"
	"testing"
)

func TestYouTubeCommands(t *testing.T) {
	data := demoData(t)
	const video, channel = "dQw4w9WgXcQ", "UC_x5XG1OV2P6uZZ5FSM9Ttw"

	if r := mustWarden(t, "youtube", "list", "--data", data); !strings.Contains(r.stdout, "No YouTube videos or channels are approved") {
		t.Errorf("empty list:\n%s", r.stdout)
	}
	r := mustWarden(t, "youtube", "approve", "--data", data, "--group", "key-stage-2", "--reason", "Year 5 science: volcanoes",
		"https://www.youtube.com/watch?v="+video+"&t=42s")
	for _, want := range []string{"Approved video " + video + " for key-stage-2", "https://www.youtube.com/watch?v=" + video,
		"warden youtube revoke --group key-stage-2 " + video} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("approve output lacks %q:\n%s", want, r.stdout)
		}
	}
	mustWarden(t, "youtube", "approve", "--data", data, "--all-groups", "https://www.youtube.com/channel/"+channel+"/videos")

	list := mustWarden(t, "youtube", "list", "--data", data, "--group", "key-stage-2").stdout
	for _, re := range []string{
		`GROUP\s+KIND\s+ID\s+REASON\s+BY\s+WHEN`,
		`key-stage-2\s+video\s+` + video + `\s+Year 5 science: volcanoes\s+cli\S*\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+\d+`,
		`\(all groups\)\s+channel\s+` + channel + `\s+-\s+cli`,
	} {
		if !regexp.MustCompile(re).MatchString(list) {
			t.Errorf("list does not match %s:\n%s", re, list)
		}
	}
	if list := mustWarden(t, "youtube", "list", "--data", data, "--group", "visitors").stdout; strings.Contains(list, video) || !strings.Contains(list, channel) {
		t.Errorf("visitors' list:\n%s", list)
	}

	// warden check sees the approval as the exception it is.
	check := checkJSONOf(t, "--data", data, "--group", "key-stage-2", "https://m.youtube.com/watch?v="+video)
	if check.Action != "allow" || !strings.HasPrefix(check.Rule, "exception:allow:youtube.com/watch?v="+video) {
		t.Errorf("check of the approved video: %+v", check)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"again", []string{"approve", "--group", "key-stage-2", "https://youtu.be/" + video}, 1, "already approved for key-stage-2"},
		{"not YouTube", []string{"approve", "--group", "key-stage-2", "https://vimeo.com/12345"}, 1, "not a YouTube video or channel"},
		{"handle", []string{"approve", "--group", "key-stage-2", "https://www.youtube.com/@SomeTeacher"}, 1, "Copy channel ID"},
		{"no group", []string{"approve", "--group", "nope", video}, 1, `no group "nope"`},
		{"group missing", []string{"approve", video}, 2, "give the group with --group"},
		{"both scopes", []string{"approve", "--group", "staff", "--all-groups", video}, 2, "not both"},
		{"no video", []string{"approve", "--group", "staff"}, 2, "give one video or channel"},
		{"unknown sub", []string{"watch"}, 2, "unknown subcommand"},
		{"no sub", nil, 2, "give approve, revoke or list"},
		{"revoke school-wide for one group", []string{"revoke", "--group", "visitors", channel}, 1, "approved for every group"},
		{"revoke not approved", []string{"revoke", "--group", "staff", video}, 1, "not approved for staff"},
		{"list extra", []string{"list", "x"}, 2, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := warden(t, append(append([]string{"youtube"}, tc.args...), "--data", data)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s", r.code, tc.code, tc.want, r.stderr)
			}
		})
	}

	if r := mustWarden(t, "youtube", "revoke", "--data", data, "--group", "key-stage-2", "https://youtu.be/"+video); !strings.Contains(r.stdout, "Revoked video "+video+" for key-stage-2") {
		t.Errorf("revoke output:\n%s", r.stdout)
	}
	mustWarden(t, "youtube", "revoke", "--data", data, "--all-groups", channel)
	if r := mustWarden(t, "youtube", "list", "--data", data); !strings.Contains(r.stdout, "No YouTube videos or channels are approved") {
		t.Errorf("list after revoking:\n%s", r.stdout)
	}
}
