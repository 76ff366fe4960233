package main

import (
	"context"
	"flag"
	"fmt"
	"regexp"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/platforms"
	refdocker "github.com/containerd/containerd/reference/docker"
	"github.com/sirupsen/logrus"
)

type rmiOpts struct {
	force bool
	async bool
	refs  []string
}

func parseRmi(args []string) (func(context.Context, *containerd.Client) error, error) {
	fs := flag.NewFlagSet("rmi", flag.ContinueOnError)
	var o rmiOpts
	fs.BoolVar(&o.force, "force", false, "ignore removal errors")
	fs.BoolVar(&o.force, "f", false, "ignore removal errors (short)")
	fs.BoolVar(&o.async, "async", false, "asynchronous delete")
	if err := fs.Parse(args); err != nil {
		return nil, usage("rmi: %v", err)
	}
	if fs.NArg() == 0 {
		return nil, usage("rmi: want at least one REF")
	}
	o.refs = fs.Args()
	return func(ctx context.Context, c *containerd.Client) error { return rmi(ctx, c, o) }, nil
}

// rmi is `nerdctl rmi [-f] REF…` (cmd/nerdctl/rmi.go and pkg/idutil/imagewalker, v0.18): for each
// argument, the images whose name is its canonical form or whose target digest starts with it
// (one image List with three filters); for each found, its RootFS for the default platform
// (index, manifest and config read, only to print `Deleted:` lines; an error is a warning), then
// the delete, synchronous unless --async. Nothing found is `no such image: REF`, which -f only
// logs; any other error fails the command, -f or not (v2.0.5 pkg/cmd/image/remove.go).
//
// Left out: nerdctl v2 first lists containers (Containers service) to refuse images in use; no
// container exists here and the interposer refuses that service under a schedule.
func rmi(ctx context.Context, c *containerd.Client, o rmiOpts) error {
	var delOpts []images.DeleteOpt
	if !o.async {
		delOpts = append(delOpts, images.SynchronousDelete())
	}
	is, cs := c.ImageService(), c.ContentStore()
	for _, req := range o.refs {
		var filters []string
		if named, err := refdocker.ParseDockerRef(req); err == nil {
			filters = append(filters, fmt.Sprintf("name==%s", named.String()))
		}
		filters = append(filters,
			fmt.Sprintf("target.digest~=^sha256:%s.*$", regexp.QuoteMeta(req)),
			fmt.Sprintf("target.digest~=^%s.*$", regexp.QuoteMeta(req)),
		)
		notFound := false
		err := func() error {
			found, err := is.List(ctx, filters...)
			if err != nil {
				return err
			}
			if len(found) == 0 {
				notFound = true
				return fmt.Errorf("no such image: %s", req)
			}
			for _, img := range found {
				digests, err := img.RootFS(ctx, cs, platforms.DefaultStrict())
				if err != nil {
					logrus.WithError(err).Warning("failed to enumerate rootfs")
				}
				if err := is.Delete(ctx, img.Name, delOpts...); err != nil {
					return err
				}
				fmt.Printf("Untagged: %s@%s\n", img.Name, img.Target.Digest)
				for _, d := range digests {
					fmt.Printf("Deleted: %s\n", d)
				}
			}
			return nil
		}()
		// -f forgives only "no such image"; a failed list or delete is fatal (nerdctl v2.0.5
		// pkg/cmd/image/remove.go: a walk error sets fatalErr).
		if err != nil {
			if !o.force || !notFound {
				return err
			}
			logrus.Error(err)
		}
	}
	return nil
}
