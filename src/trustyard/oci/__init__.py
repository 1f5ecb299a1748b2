"""Pure OCI knowledge: digests, names and references, media types, manifest parsing. No I/O."""
