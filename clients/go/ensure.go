package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ensureAllContent is nerdctl's EnsureAllContent (pkg/cmd/image/ensure.go, v2.0.4 = v2.0.5):
//  1. the image by name;
//  2. nerdctl's `read` (pkg/cmd/image/list.go): the index, then for each manifest entry in index
//     order the manifest and its config (content.ReadBlob each: Info + Read), through a per-process
//     cache by digest (a blob already read is not read again); a manifest that fails is skipped;
//  3. for each manifest whose config's platform the matcher accepts: images.Check with that one
//     platform (the library reads the index and the manifest again, without nerdctl's cache, then
//     opens a ReaderAt — an Info — on the config and each layer); when something is missing,
//     nerdctl fetches that platform from the registry.
//
// Left out, on purpose: nerdctl's `read` also asks the snapshotter for the unpacked size of each
// platform (Snapshots Usage/Stat of the chain ID; its error ignored). Snapshots calls touch no
// metadata the model keeps and the interposer refuses them under a schedule. nerdctl keeps the
// platforms in a map, so with several wanted platforms their order is Go's random map order;
// here it is the index order. The fetch of missing content is not done (offline: no registry
// holds the source image); a missing blob is an error naming it.
func ensureAllContent(ctx context.Context, c *containerd.Client, src string, platMC platforms.MatchComparer) error {
	img, err := c.ImageService().Get(ctx, src)
	if err != nil {
		return err
	}
	cs := c.ContentStore()
	cache := map[string][]byte{}
	readBlob := func(d ocispec.Descriptor) ([]byte, error) {
		if b, ok := cache[d.Digest.String()]; ok {
			return b, nil
		}
		b, err := content.ReadBlob(ctx, cs, d)
		if err == nil {
			cache[d.Digest.String()] = b
		}
		return b, err
	}
	readManifest := func(d ocispec.Descriptor) (ocispec.Platform, bool) {
		mb, err := readBlob(d)
		if err != nil {
			return ocispec.Platform{}, false
		}
		var m ocispec.Manifest
		if json.Unmarshal(mb, &m) != nil {
			return ocispec.Platform{}, false
		}
		cb, err := readBlob(m.Config)
		if err != nil {
			return ocispec.Platform{}, false
		}
		var cfg ocispec.Image
		if json.Unmarshal(cb, &cfg) != nil {
			return ocispec.Platform{}, false
		}
		return platforms.Normalize(ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}), true
	}
	var found []ocispec.Platform
	switch {
	case images.IsManifestType(img.Target.MediaType):
		if p, ok := readManifest(img.Target); ok {
			found = append(found, p)
		}
	case images.IsIndexType(img.Target.MediaType):
		ib, err := readBlob(img.Target)
		if err == nil {
			var idx ocispec.Index
			if json.Unmarshal(ib, &idx) == nil {
				for _, m := range idx.Manifests {
					if p, ok := readManifest(m); ok {
						found = append(found, p)
					}
				}
			}
		}
	}
	for _, p := range found {
		if !platMC.Match(p) {
			continue
		}
		_, _, _, missing, err := images.Check(ctx, cs, img.Target, platforms.Ordered(p))
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			return fmt.Errorf("EnsureAllContent: %s of %s misses %d blobs (first %s); fetching them is not supported by this client", platforms.Format(p), src, len(missing), missing[0].Digest)
		}
	}
	return nil
}
