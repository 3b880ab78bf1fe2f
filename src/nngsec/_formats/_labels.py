"""Domain-separation labels: every hash, key derivation and signature in nngsec is keyed
or prefixed by exactly one of these, so no value computed for one purpose can ever be
mistaken for a value of another purpose (a policy signature for a frame signature, a
pair key for a bus key, a request for a reply).

They are part of the wire format (``docs/spec/wire-format.md``); changing one is a new
format version. The labels of frames and of the keys derived for them say ``v2`` (wire
format 2 changed what they cover: 16-byte sessions, the deployment id), and so does the
policy signature's (signature files of format 2 sign the version); those of identity keys,
key ids and key text keep ``v1``, so existing key files keep their meaning.
"""

from __future__ import annotations

# Identity keys: one 32-byte secret seed, two derived key pairs.
IDENTITY_SIGN_SEED = b"nngsec/v1/identity/ed25519"
IDENTITY_BOX_SECRET = b"nngsec/v1/identity/x25519"
KEY_ID = b"nngsec/v1/key-id"
TEXT_CHECKSUM = b"nngsec/v1/text-checksum"

# Policy signatures and channel-key entries.
POLICY_SIGNATURE = b"nngsec/v2/policy-signature"  # signature files of format 2
CHANNEL_KEY_ENTRY = b"nngsec/v2/channel-key"  # format 2 entries bind the deployment
EPOCH_FINGERPRINT = b"nngsec/v1/epoch-fingerprint"  # keystore records only, never on the wire

# Per-message schemes.
PAIR_KEY = b"nngsec/v2/pair-key"
BUS_FRAME = b"nngsec/v2/bus"
SECRETBOX_FRAME = b"nngsec/v2/secretbox"
SEALED_WRAP = b"nngsec/v2/sealed/wrap"
SEALED_FRAME = b"nngsec/v2/sealed"
SEALED_MAC_KEY = b"nngsec/v2/sealed/mac-key"  # origin: mac, one key per sender and receiver
SEALED_MAC = b"nngsec/v2/sealed/mac"  # origin: mac, the digest each MAC is taken of
PEER_KEY = b"nngsec/v2/peer-key"
PEERBOX_FRAME = b"nngsec/v2/peerbox"
SIGNED_FRAME = b"nngsec/v2/signed"
