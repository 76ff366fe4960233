// Command pushrace-go-client: nerdctl's image push path (in each historical variant pushrace models),
// nerdctl's pull and rmi, written against containerd 1.6.20's own Go library, so that pushrace can
// run real library code as actors under its scheduler (through the gRPC interposer).
//
// These are not nerdctl: they make the library calls nerdctl makes, in nerdctl's order, without its
// CLI, progress display or registry configuration (docs/go-clients.md lists what is left out).
//
//	pushrace-go-client --address SOCK [--namespace NS] push --variant V [--platform P]... [--plain-http] LOCAL_REF REMOTE_REF
//	pushrace-go-client --address SOCK [--namespace NS] pull [--platform P]... [--plain-http] REMOTE_REF
//	pushrace-go-client --address SOCK [--namespace NS] rmi [-f] [--async] REF...
//
// Logging is nerdctl's: logrus text on stderr (`level=info msg="pushing as a reduced-platform image
// (…)"`), and a failure ends with `level=fatal msg="<error>"` and exit status 1, as nerdctl's main
// does, after every deferred cleanup has run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/platforms"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
)

// errUsage is bad command-line input (exit status 2, not nerdctl's fatal line).
var errUsage = errors.New("usage")

// strs is a repeatable string flag (`--platform a --platform b`, or `--platform a,b` as nerdctl's
// string-slice flags accept).
type strs []string

func (s *strs) String() string { return strings.Join(*s, ",") }
func (s *strs) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

func usage(format string, a ...interface{}) error {
	fmt.Fprintf(os.Stderr, "pushrace-go-client: "+format+"\n", a...)
	fmt.Fprintln(os.Stderr, `usage:
  pushrace-go-client --address SOCK [--namespace NS] push --variant v0.17|v0.18|v2.0.4|v2.0.5|lease-held [--platform P]... [--plain-http] [--tmp-suffix S] [--ensure-all-content] [--all-platforms] LOCAL_REF REMOTE_REF
  pushrace-go-client --address SOCK [--namespace NS] pull [--platform P]... [--plain-http] REMOTE_REF
  pushrace-go-client --address SOCK [--namespace NS] rmi [-f] [--async] REF...`)
	return errUsage
}

func main() {
	logrus.SetOutput(os.Stderr)
	logrus.SetFormatter(&logrus.TextFormatter{DisableColors: true, FullTimestamp: true})
	err := run(os.Args[1:])
	if errors.Is(err, errUsage) {
		os.Exit(2)
	}
	if err != nil {
		// nerdctl's main: logrus.Fatal(err) once the command (and its defers) returned.
		logrus.Fatal(err)
	}
}

func run(args []string) error {
	global := flag.NewFlagSet("pushrace-go-client", flag.ContinueOnError)
	address := global.String("address", "/run/containerd/containerd.sock", "containerd socket")
	global.StringVar(address, "a", "/run/containerd/containerd.sock", "containerd socket (short)")
	ns := global.String("namespace", "default", "containerd namespace")
	global.StringVar(ns, "n", "default", "containerd namespace (short)")
	debug := global.Bool("debug", false, "debug logging")
	if err := global.Parse(args); err != nil {
		return usage("%v", err)
	}
	if *debug {
		logrus.SetLevel(logrus.DebugLevel)
	}
	rest := global.Args()
	if len(rest) == 0 {
		return usage("no command")
	}
	cmd, rest := rest[0], rest[1:]
	var act func(ctx context.Context, client *containerd.Client) error
	var err error
	switch cmd {
	case "push":
		act, err = parsePush(rest)
	case "pull":
		act, err = parsePull(rest)
	case "rmi":
		act, err = parseRmi(rest)
	default:
		return usage("unknown command %q", cmd)
	}
	if err != nil {
		return err
	}
	// nerdctl's newClient: a client on the socket with the namespace as its default, and the
	// namespace in the context. containerd.New asks for the namespace's labels (Namespaces Get, a
	// default runtime label): a pass-through call for the interposer, never a step.
	client, err := containerd.New(*address, containerd.WithDefaultNamespace(*ns))
	if err != nil {
		return err
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), *ns)
	return act(ctx, client)
}

// platformMC is nerdctl's platformutil.NewMatchComparer(false, ss): DefaultStrict when no
// platform is given, else platforms.Ordered of the (deduplicated) list.
func platformMC(ss []string) (platforms.MatchComparer, []ocispec.Platform, error) {
	if len(ss) == 0 {
		return platforms.DefaultStrict(), []ocispec.Platform{platforms.DefaultSpec()}, nil
	}
	seen := map[string]bool{}
	var ps []ocispec.Platform
	for _, s := range ss {
		if seen[s] {
			continue
		}
		seen[s] = true
		p, err := platforms.Parse(s)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid platform: %q", s)
		}
		ps = append(ps, p)
	}
	return platforms.Ordered(ps...), ps, nil
}

// resolver is a remotes/docker resolver; with plainHTTP every host is spoken to over plain HTTP
// (the private loopback registry), as nerdctl's dockerconfigresolver.WithPlainHTTP(true) does.
func resolver(plainHTTP bool) remotes.Resolver {
	var ropts []docker.RegistryOpt
	if plainHTTP {
		ropts = append(ropts, docker.WithPlainHTTP(docker.MatchAllHosts))
	}
	return docker.NewResolver(docker.ResolverOptions{
		Hosts:   docker.ConfigureDefaultRegistries(ropts...),
		Tracker: docker.NewInMemoryTracker(),
	})
}
