// Command warden is Warden's single binary: the filter server and the
// command-line tools an IT technician uses to set it up and check it.
// It only parses arguments; the work is done by internal/app.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // school time zones must load even where the system has no tzdata

	"github.com/warden-schools/warden/internal/app"
)

const usage = `warden: online safety for schools — filtering, monitoring and records.

Usage:
  warden init    [--data DIR] [--config FILE] [--demo]
  warden serve   [--data DIR] [--config FILE] [--demo] [--http-addr HOST:PORT]
                 [--dns-addr HOST:PORT] [--proxy-addr HOST:PORT] [--upstream HOST:PORT ...]
                 [--tls-cert FILE --tls-key FILE] [--dot-addr HOST:PORT]
  warden check   [--data DIR] (--group ID | --user NAME | --ip IP) [--ip IP] [--time RFC3339] [--json] HOST_OR_URL
  warden lists   import [--format ut1|plain|hosts|adblock|sha256] [--category NAME] [--name ID] [--mandatory iwf|ctiru] PATH
  warden lists   update [--min-share F] URL
  warden lists   categories | show [ID] | add ID ENTRY... | remove ID ENTRY... | delete ID
  warden people  import [--kind pupil|staff|parent|visitor] [--deactivate-missing] FILE.csv
  warden people  list [--kind KIND] [--group ID] [--search TEXT]
  warden groups  list | add ID [--mode M] [--safe-search S] [--like GROUP] | set ID CATEGORY=ACTION...
  warden groups  members [list | add GROUP --kind K [--years R-2] [--role TEXT] | remove N | clear]
  warden devices list | add NAME [--kind school|personal] [--ip IP] [--mac MAC] [--group ID] [--owner LOGIN]
  warden devices token issue NAME [--url-base URL] | token revoke NAME
  warden zones   list | add ID --networks CIDR[,CIDR...] [--group ID] [--name NAME] | delete ID
  warden accounts list | set LOGIN [--role ROLE] [--generate] [--must-change] (password on stdin)
  warden accounts role LOGIN ROLE | disable|enable|unlock|reset-2fa|remove LOGIN | setup-link [--url-base URL]
  warden audit   verify | list [--limit N]
  warden ca      init [--name "School name"] [--force] | show
  warden youtube approve|revoke --group ID [--reason TEXT] URL_OR_ID | list [--group ID]
  warden version

Every command takes --data DIR (default ./warden-data) and --config FILE.
Run "warden COMMAND -h" for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli carries the output streams and clock for one run.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
}

// errUsage marks errors in how the command was called (exit status 2).
var errUsage = errors.New("usage")

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdin: os.Stdin, stdout: stdout, stderr: stderr, now: time.Now}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "init":
		err = c.initCmd(ctx, args[1:])
	case "serve":
		err = c.serveCmd(ctx, args[1:])
	case "check":
		err = c.checkCmd(ctx, args[1:])
	case "lists":
		err = c.listsCmd(ctx, args[1:])
	case "people":
		err = c.peopleCmd(ctx, args[1:])
	case "groups":
		err = c.groupsCmd(ctx, args[1:])
	case "devices":
		err = c.devicesCmd(ctx, args[1:])
	case "zones":
		err = c.zonesCmd(ctx, args[1:])
	case "ca":
		err = c.caCmd(ctx, args[1:])
	case "youtube":
		err = c.youtubeCmd(ctx, args[1:])
	case "accounts":
		err = c.accountsCmd(ctx, args[1:])
	case "audit":
		err = c.auditCmd(ctx, args[1:])
	case "version", "--version":
		fmt.Fprintln(stdout, "warden", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "warden: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "warden %s: %v\n", args[0], strings.TrimPrefix(err.Error(), "usage: "))
		return 2
	default:
		fmt.Fprintf(stderr, "warden %s: %v\n", args[0], err)
		return 1
	}
}

// usageErr builds an error for a wrongly called command.
func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// common holds the flags every command takes.
type common struct {
	data   string
	config string
}

func (c *cli) flags(name string, co *common) *flag.FlagSet {
	fs := flag.NewFlagSet("warden "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.StringVar(&co.data, "data", "", "data folder (default ./warden-data)")
	fs.StringVar(&co.config, "config", "", "bootstrap configuration file (YAML)")
	return fs
}

// parse parses flags, allowing flags after positional arguments
// ("warden check example.com --group staff").
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// loadConfig reads the configuration file, if any, and applies --data.
func (co *common) loadConfig() (app.Config, error) {
	return app.LoadConfig(co.config, co.data)
}

// openApp opens the store for a command-line tool (quiet logging).
func (c *cli) openApp(ctx context.Context, co *common) (*app.App, error) {
	cfg, err := co.loadConfig()
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return app.Open(ctx, cfg, app.Options{Logger: log, Now: c.now})
}

// openLoaded opens the store and builds the policy, for commands that
// decide or identify.
func (c *cli) openLoaded(ctx context.Context, co *common) (*app.App, error) {
	a, err := c.openApp(ctx, co)
	if err != nil {
		return nil, err
	}
	if _, err := a.Init(ctx, false, false); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.Reload(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// simple parses a command that takes only the common flags, checks its
// arguments with check (before anything is opened, so a wrongly called
// command creates nothing), and opens the store, with the policy built if
// loaded is set.
func (c *cli) simple(ctx context.Context, name string, args []string, check func(rest []string) error, loaded bool) (*app.App, []string, error) {
	var co common
	fs := c.flags(name, &co)
	rest, err := parse(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if err := check(rest); err != nil {
		return nil, nil, err
	}
	var a *app.App
	if loaded {
		a, err = c.openLoaded(ctx, &co)
	} else {
		a, err = c.openApp(ctx, &co)
	}
	return a, rest, err
}

// noArgs accepts no positional arguments.
func noArgs(rest []string) error {
	if len(rest) > 0 {
		return usageErr("unexpected argument %q", rest[0])
	}
	return nil
}

// actor names the person running a command, for change records.
func actor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}
