"""Identity keys, keystores and per-epoch channel keys."""
