"""The Zarr array layer: metadata, codec chains, the chunk plan, sharding, the chunk pipeline, the decoded-chunk cache, ``Array``."""
