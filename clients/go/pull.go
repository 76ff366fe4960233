package main

import (
	"context"
	"flag"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/images"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type pullOpts struct {
	platforms []string
	plainHTTP bool
	ref       string
}

func parsePull(args []string) (func(context.Context, *containerd.Client) error, error) {
	fs := flag.NewFlagSet("pull", flag.ContinueOnError)
	var o pullOpts
	var ps strs
	fs.Var(&ps, "platform", "platform to pull (repeatable)")
	fs.BoolVar(&o.plainHTTP, "plain-http", false, "plain HTTP to every registry")
	if err := fs.Parse(args); err != nil {
		return nil, usage("pull: %v", err)
	}
	if fs.NArg() != 1 {
		return nil, usage("pull: want REMOTE_REF, got %q", fs.Args())
	}
	o.platforms, o.ref = ps, fs.Arg(0)
	return func(ctx context.Context, c *containerd.Client) error { return pull(ctx, c, o) }, nil
}

// pull is `nerdctl pull --quiet --unpack=false [--platform P]… REF` (pkg/imgutil PullImage and
// pkg/imgutil/pull.Pull, v0.18): a lease of nerdctl's own around the pull (client.WithLease: random
// id, 24 h, released without sync), then the library's client.Pull for one platform (client.Fetch
// for several) with the resolver, a job handler that only records descriptors for the progress
// display, schema 1 conversion and the platform matcher; no unpack, so no Snapshots call.
//
// Concurrency: WithMaxConcurrentDownloads(1) is the fetch's images.Dispatch limiter, so one handler
// (fetch of a blob: open writer + copy, children read back and labelled) runs at a time; the
// Dispatch goroutines that wait for it stay, in the semaphore's FIFO order.
func pull(ctx context.Context, c *containerd.Client, o pullOpts) error {
	platMC, ps, err := platformMC(o.platforms)
	if err != nil {
		return err
	}
	ctx, done, err := c.WithLease(ctx)
	if err != nil {
		return err
	}
	defer done(ctx)
	jobs := images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		return nil, nil
	})
	opts := []containerd.RemoteOpt{
		containerd.WithResolver(resolver(o.plainHTTP)),
		containerd.WithImageHandler(jobs),
		containerd.WithSchema1Conversion,
		containerd.WithPlatformMatcher(platMC),
		containerd.WithMaxConcurrentDownloads(1),
	}
	if len(ps) == 1 {
		_, err = c.Pull(ctx, o.ref, opts...)
	} else {
		_, err = c.Fetch(ctx, o.ref, opts...)
	}
	return err
}
