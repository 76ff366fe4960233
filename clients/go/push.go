package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/images/converter"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
)

type pushOpts struct {
	variant   string
	platforms []string
	plainHTTP bool
	// lease-held: the tmp image is `<ref>-tmp-reduced-platform-<suffix>` (random when empty).
	tmpSuffix string
	// Run EnsureAllContent before converting in v0.17/v0.18/v2.0.4 too (nerdctl does it in v2.0.5
	// and later only; the model's v2.0.4 assumes it: docs/go-clients.md).
	ensure bool
	// --all-platforms: no tmp image; the local image is pushed as it is (every variant alike).
	allPlatforms bool
	local        string
	remote       string
	// client.Push's upload limiter: 1 (default) makes one handler call at a time; 0 is no
	// limiter, as nerdctl pushes (it sets none).
	maxUploads int
}

func parsePush(args []string) (func(context.Context, *containerd.Client) error, error) {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	var o pushOpts
	var ps strs
	fs.StringVar(&o.variant, "variant", "", "v0.17, v0.18, v2.0.4, v2.0.5 or lease-held")
	fs.Var(&ps, "platform", "platform to push (repeatable)")
	fs.BoolVar(&o.plainHTTP, "plain-http", false, "plain HTTP to every registry")
	fs.StringVar(&o.tmpSuffix, "tmp-suffix", "", "lease-held: suffix of the unique tmp name (default random)")
	fs.BoolVar(&o.ensure, "ensure-all-content", false, "EnsureAllContent before converting (v0.17, v0.18, v2.0.4)")
	fs.BoolVar(&o.allPlatforms, "all-platforms", false, "push every platform: no tmp image (--variant not needed)")
	fs.IntVar(&o.maxUploads, "max-concurrent-uploaded-layers", 1, "client.Push's upload limiter; 0: none, as nerdctl")
	if err := fs.Parse(args); err != nil {
		return nil, usage("push: %v", err)
	}
	if fs.NArg() != 2 {
		return nil, usage("push: want LOCAL_REF REMOTE_REF, got %q", fs.Args())
	}
	o.platforms = ps
	o.local, o.remote = fs.Arg(0), fs.Arg(1)
	switch {
	case o.allPlatforms && o.variant == "":
	case o.variant == "v0.17", o.variant == "v0.18", o.variant == "v2.0.4", o.variant == "v2.0.5", o.variant == "lease-held":
	default:
		return nil, usage("push: unknown --variant %q (v0.17, v0.18, v2.0.4, v2.0.5, lease-held)", o.variant)
	}
	return func(ctx context.Context, c *containerd.Client) error { return push(ctx, c, o) }, nil
}

// tmpName is nerdctl's temporary image: the same name for every push of one ref.
func tmpName(ref string) string { return ref + "-tmp-reduced-platform" }

// convertErr is nerdctl's wording for a failed conversion (platforms printed with Go's %v).
func convertErr(pushRef string, ps []string, err error) error {
	if len(ps) == 0 {
		return fmt.Errorf("failed to create a tmp single-platform image %q: %w", pushRef, err)
	}
	return fmt.Errorf("failed to create a tmp reduced-platform image %q (platform=%v): %w", pushRef, ps, err)
}

func logPushing(img images.Image) {
	logrus.Infof("pushing as a reduced-platform image (%s, %s)", img.Target.MediaType, img.Target.Digest)
}

// deleteTmp is nerdctl's deferred delete of the tmp image; its error is dropped, as a deferred call's is.
func deleteTmp(ctx context.Context, c *containerd.Client, name string, sync bool) {
	var opts []images.DeleteOpt
	if sync {
		opts = append(opts, images.SynchronousDelete())
	}
	if err := c.ImageService().Delete(ctx, name, opts...); err != nil {
		logrus.WithError(err).Debugf("deleting %s", name)
	}
}

// push is `nerdctl push --platform P… LOCAL` without --all-platforms, in one variant. Every variant
// takes no lease of its own except lease-held (the converter and the pusher are the library's).
func push(ctx context.Context, c *containerd.Client, o pushOpts) error {
	if o.allPlatforms {
		// nerdctl: pushRef = ref, the matcher platforms.All, no conversion (and, in v2.0.5, no
		// EnsureAllContent: it sits in the reduced-platform branch).
		return pushImage(ctx, c, o.local, o.remote, platforms.All, o)
	}
	platMC, _, err := platformMC(o.platforms)
	if err != nil {
		return err
	}
	ref := o.local
	pushRef := tmpName(ref)
	switch o.variant {
	case "v0.17", "v0.18", "v2.0.4":
		// v0.17 cmd/nerdctl/push.go; v0.18 (#866) made the deferred delete synchronous; v2.0.4
		// (pkg/cmd/image/push.go) is v0.18's sequence on containerd 2.0's library: its
		// EnsureAllContent (#3435, #3489) runs only on the IPFS path and in convert/tag/save/commit,
		// and joins the registry push path in v2.0.5 (751c1eb5, PR #4062).
		if o.ensure {
			if err := ensureAllContent(ctx, c, ref, platMC); err != nil {
				return err
			}
		}
		platImg, err := converter.Convert(ctx, c, pushRef, ref, converter.WithPlatform(platMC))
		if err != nil {
			return convertErr(pushRef, o.platforms, err)
		}
		defer deleteTmp(ctx, c, platImg.Name, o.variant != "v0.17")
		logPushing(*platImg)
		return pushImage(ctx, c, pushRef, o.remote, platMC, o)
	case "v2.0.5":
		// pkg/cmd/image/push.go at v2.0.5: EnsureAllContent, then the #4062 wrapper
		// (pkg/imgutil/converter/convert.go) around the library's converter.
		if err := ensureAllContent(ctx, c, ref, platMC); err != nil {
			return err
		}
		platImg, err := convertInPlace(ctx, c, pushRef, ref, converter.WithPlatform(platMC))
		if err != nil {
			// As in nerdctl: no delete here; a tmp image the wrapper created stays behind.
			return convertErr(pushRef, o.platforms, err)
		}
		defer deleteTmp(ctx, c, platImg.Name, true)
		logPushing(*platImg)
		return pushImage(ctx, c, pushRef, o.remote, platMC, o)
	case "lease-held":
		return pushLeaseHeld(ctx, c, o, platMC)
	}
	return fmt.Errorf("unknown variant %q", o.variant)
}

// convertInPlace is nerdctl #4062's wrapper: get the source, delete dst synchronously (its error,
// usually NotFound, is ignored), create dst -> the source's target, then convert dst in place
// (dst == src: the converter Updates instead of deleting and creating).
func convertInPlace(ctx context.Context, c *containerd.Client, dst, src string, opts ...converter.Opt) (*images.Image, error) {
	is := c.ImageService()
	img, err := is.Get(ctx, src)
	if err != nil {
		return nil, err
	}
	img.Name = dst
	_ = is.Delete(ctx, dst, images.SynchronousDelete())
	if _, err := is.Create(ctx, img); err != nil {
		return nil, err
	}
	return converter.Convert(ctx, c, dst, dst, opts...)
}

// pushImage is nerdctl's pkg/imgutil/push.Push: look the local image up by name, then the
// library's client.Push of its target (remotes.PushContent through the docker pusher).
//
// Concurrency: WithMaxConcurrentUploadedLayers(1) is client.Push's limiter, a semaphore that
// images.Dispatch takes around every handler call (annotate = children + Info of each child,
// filter, push of a config or layer: registry HEAD, then Info + reads + upload). So one handler
// runs at a time; what stays concurrent is Dispatch's goroutines waiting for the semaphore (which
// of them gets it next is the semaphore's FIFO order, not a fixed walk), and the HTTP upload of a
// blob, which the docker pusher streams in a goroutine of its own while the reads go on. The
// manifests and the index are pushed afterwards, one by one, children first.
func pushImage(ctx context.Context, c *containerd.Client, localRef, remoteRef string, platMC platforms.MatchComparer, o pushOpts) error {
	img, err := c.ImageService().Get(ctx, localRef)
	if err != nil {
		return fmt.Errorf("unable to resolve image to manifest: %w", err)
	}
	return pushTarget(ctx, c, img.Target, remoteRef, platMC, o)
}

func pushTarget(ctx context.Context, c *containerd.Client, desc ocispec.Descriptor, remoteRef string, platMC platforms.MatchComparer, o pushOpts) error {
	// nerdctl's job handler only records descriptors for its progress display (no call); the
	// non-distributable filter (v0.18+) wraps it and makes no call either.
	jobs := images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		return nil, nil
	})
	opts := []containerd.RemoteOpt{
		containerd.WithResolver(resolver(o.plainHTTP)),
		containerd.WithImageHandler(jobs),
		containerd.WithPlatformMatcher(platMC),
	}
	if o.maxUploads > 0 {
		opts = append(opts, containerd.WithMaxConcurrentUploadedLayers(o.maxUploads))
	}
	return c.Push(ctx, remoteRef, desc, opts...)
}

// pushLeaseHeld is the fix pushrace proposes (not upstream; scenarios/src/programs/push.rs is its
// definition): one lease from before the source is read until after the tmp image is deleted, the
// source target and the reduced index added to it with AddResource (the index before the
// converter writes it: a write of an index that already exists does not join the lease), a tmp
// name of its own, the push of the converted target (no second look-up by name), the tmp image
// deleted after the push and the lease released last.
func pushLeaseHeld(ctx context.Context, c *containerd.Client, o pushOpts, platMC platforms.MatchComparer) (err error) {
	ls := c.LeasesService()
	l, err := ls.Create(ctx, leases.WithRandomID(), leases.WithExpiration(24*time.Hour))
	if err != nil {
		return err
	}
	// Released last (deferred first), without sync; the error of a deferred call is dropped.
	defer func() {
		if derr := ls.Delete(ctx, l); derr != nil {
			logrus.WithError(derr).Debugf("releasing lease %s", l.ID)
		}
	}()
	lctx := leases.WithLease(ctx, l.ID)
	is, cs := c.ImageService(), c.ContentStore()
	ref := o.local
	src, err := is.Get(lctx, ref)
	if err != nil {
		return err
	}
	if err := ls.AddResource(lctx, l, leases.Resource{ID: src.Target.Digest.String(), Type: "content"}); err != nil {
		return err
	}
	// AddResource does not check existence: the Info says whether the target was still there.
	if _, err := cs.Info(lctx, src.Target.Digest); err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("source image %q was removed during push: %w", ref, errdefs.ErrFailedPrecondition)
		}
		return err
	}
	if err := ensureAllContent(lctx, c, ref, platMC); err != nil {
		return err
	}
	var predicted digest.Digest
	if images.IsIndexType(src.Target.MediaType) {
		if _, err := cs.Info(lctx, src.Target.Digest); err != nil {
			return err
		}
		b, err := content.ReadBlob(lctx, cs, src.Target)
		if err != nil {
			return err
		}
		predicted, err = reducedIndexDigest(b, platMC)
		if err != nil {
			return err
		}
		if predicted != "" {
			if err := ls.AddResource(lctx, l, leases.Resource{ID: predicted.String(), Type: "content"}); err != nil {
				return err
			}
		}
	}
	suffix := o.tmpSuffix
	if suffix == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		suffix = hex.EncodeToString(b[:])
	}
	pushRef := tmpName(ref) + "-" + suffix
	// The context carries the lease, so the converter's client.WithLease reuses it.
	platImg, err := converter.Convert(lctx, c, pushRef, ref, converter.WithPlatform(platMC))
	if err != nil {
		return convertErr(pushRef, o.platforms, err)
	}
	defer deleteTmp(lctx, c, platImg.Name, false)
	if predicted != "" && platImg.Target.Digest != predicted {
		return fmt.Errorf("lease-held: predicted reduced index %s, the converter wrote %s", predicted, platImg.Target.Digest)
	}
	logPushing(*platImg)
	return pushTarget(lctx, c, platImg.Target, o.remote, platMC, o)
}

// reducedIndexDigest is the digest of the index the library's converter (images/converter
// default.go convertIndex, no layer conversion, no docker2oci) writes when it keeps the manifests
// `platMC` matches: the same struct, unmarshalled and marshalled the same way, the dropped entries
// left out (a nil slice, `null`, when none is kept). Empty when nothing is dropped (no new index).
// Checked against the converter's result after the conversion.
func reducedIndexDigest(b []byte, platMC platforms.MatchComparer) (digest.Digest, error) {
	var index ocispec.Index
	if err := json.Unmarshal(b, &index); err != nil {
		return "", err
	}
	var kept []ocispec.Descriptor
	modified := false
	for _, m := range index.Manifests {
		if m.Platform != nil && !platMC.Match(*m.Platform) {
			modified = true
			continue
		}
		kept = append(kept, m)
	}
	if !modified {
		return "", nil
	}
	index.Manifests = kept
	out, err := json.Marshal(&index)
	if err != nil {
		return "", err
	}
	return digest.SHA256.FromBytes(out), nil
}
