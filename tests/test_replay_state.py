"""Persisted replay state, in one process: slots, snapshots, the write-through journal,
hostile files, the checkpoint thread and fork (issue 9, finding 2; the restarts of real
processes killed with SIGKILL are in test_replay_restart.py).

A "crash" here is a copy of the state directory taken while its receiver still runs: the
files exactly as a process killed at that moment would leave them (the page cache included).
"""

from __future__ import annotations

import gc
import hashlib
import logging
import math
import os
import shutil
import stat
import subprocess
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nngsec import KeystoreError, Rejected, UsageError, load_policy
from nngsec._runtime import _replay_state as replay_state
from nngsec._runtime._replay_state import (
    MAGIC,
    StateDamaged,
    decode_journal,
    decode_snapshot,
    encode_journal_header,
    encode_journal_record,
    encode_snapshot,
)
from tests.net import wait_for
from tests.support import ALICE, ALL_CHANNELS, BOB, CAROL, NAMES, FakeClock, examples

CHANNELS = """
channels:
  rpc: {pattern: reqrep, clients: [client], servers: [server]}
  jobs: {pattern: pipeline, pushers: [client], pullers: [server]}
"""
THREAD = "nngsec-replay-checkpoint"


@pytest.fixture
def world(world_factory):
    return world_factory(CHANNELS, ["client", "server"])


@pytest.fixture
def clock():
    return FakeClock()


def reason(node, channel, frame):
    try:
        node.open(channel, frame)
    except Rejected as rejected:
        return rejected.reason
    return "accept"


def state_of(world, identity="server"):
    return world.keystore.directory / "state" / identity


def crash_copy(world, tmp_path, name="crashed"):
    """The state directory as a process killed now would leave it."""
    copy = tmp_path / name
    shutil.copytree(world.keystore.directory / "state", copy)
    return copy


def checkpoint_threads():
    return [t for t in threading.enumerate() if t.name == THREAD]


# -- restarts ------------------------------------------------------------------------------
def test_a_restarted_node_refuses_what_it_accepted_and_accepts_what_is_new(world, clock):
    client = world.node("client", clock=clock)
    jobs = [client.seal("jobs", b"job %d" % n) for n in range(5)]
    with world.node("server", clock=clock) as first:
        for job in jobs[:3]:
            first.open("jobs", job)
    clock.advance(1)
    with world.node("server", clock=clock) as second:
        assert [reason(second, "jobs", job) for job in jobs] == ["replay"] * 3 + ["accept"] * 2
        # ("accept": jobs sent before the restart and delivered after it, as from a queue)
        later = world.node("client", clock=clock).seal("jobs", b"a new session")
        assert second.open("jobs", later).payload == b"a new session"


def test_state_files_are_private_and_where_the_node_says(world, clock, tmp_path):
    client = world.node("client", clock=clock)
    job = client.seal("jobs", b"job")
    with world.node("server", clock=clock) as node:
        assert node.state_dir == world.keystore.directory / "state"
        node.open("jobs", job)
    assert sorted(p.name for p in state_of(world).iterdir()) == ["jobs.0.lock", "jobs.0.replay"]
    for path in (state_of(world).parent, state_of(world)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    for path in state_of(world).iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    elsewhere = tmp_path / "replay-state"
    with world.node("server", clock=clock, state_dir=elsewhere) as node:
        assert node.open("jobs", job).payload == b"job"  # another state: it never saw it
    assert (elsewhere / "server" / "jobs.0.replay").exists()

    # The documented opt-out: memory only, so a restart accepts the frame once more.
    for _ in range(2):
        with world.node("server", clock=clock, state_dir=False) as node:
            assert node.state_dir is None
            assert node.open("jobs", client.seal("jobs", b"x")).payload == b"x"
            assert node.open("jobs", job).payload == b"job"


def test_receivers_take_the_lowest_free_slot_and_a_restart_takes_its_own_back(world, clock):
    node = world.node("server", clock=clock)
    first, second = node.receiver("jobs"), node.receiver("jobs")
    other = world.node("server", clock=clock).receiver("jobs")  # another "process"
    assert [r.replay_slot.number for r in (first, second, other)] == [0, 1, 2]
    first.close()
    again = node.receiver("jobs")
    assert again.replay_slot.number == 0
    for receiver in (second, other, again):
        receiver.close()


def test_a_new_receiver_starts_from_every_slot_of_its_identity_and_channel(world, clock):
    """Whichever slot a restarted receiver gets, it refuses what any earlier one accepted."""
    client = world.node("client", clock=clock)
    job = client.seal("jobs", b"job")
    node = world.node("server", clock=clock)
    holder = node.receiver("jobs")  # slot 0
    accepting = node.receiver("jobs")  # slot 1
    accepting.open(job)
    accepting.close()
    holder.close()
    fresh = node.receiver("jobs")
    assert fresh.replay_slot.number == 0  # not the slot that accepted the job
    with pytest.raises(Rejected) as caught:
        fresh.open(job)
    assert caught.value.reason == "replay"
    fresh.close()


# -- what is written when ------------------------------------------------------------------
def test_a_request_is_written_through_before_it_is_returned(world, clock, tmp_path):
    client = world.node("client", clock=clock)
    requests = [client.seal("rpc", b"request %d" % n) for n in range(3)]
    server = world.node("server", clock=clock, checkpoint_interval=3600)  # no snapshot
    for request in requests:
        server.open("rpc", request)
    assert sorted(p.name for p in state_of(world).iterdir()) == ["rpc.0.journal", "rpc.0.lock"]
    crashed = crash_copy(world, tmp_path)
    restarted = world.node("server", clock=clock, state_dir=crashed)
    assert [reason(restarted, "rpc", r) for r in requests] == ["replay"] * 3
    assert reason(restarted, "rpc", client.seal("rpc", b"new")) == "accept"
    restarted.close()
    server.close()
    # The journal was folded into the final snapshot, and removed.
    assert sorted(p.name for p in state_of(world).iterdir()) == ["rpc.0.lock", "rpc.0.replay"]


def test_a_reply_is_not_written_through(world, clock):
    client, server = world.node("client", clock=clock), world.node("server", clock=clock)
    request = server.open("rpc", client.seal("rpc", b"request"))
    reply = client.open("rpc", server.reply(request, b"reply"))
    assert reply.payload == b"reply"
    assert not list(state_of(world, "client").glob("*.journal"))
    client.close()
    server.close()


def test_other_frames_are_checkpointed_within_one_interval(world, clock, tmp_path):
    client = world.node("client", clock=clock)
    jobs = [client.seal("jobs", b"job %d" % n) for n in range(3)]
    slow = world.node("server", clock=clock, checkpoint_interval=3600)
    slow.open("jobs", jobs[0])
    # The stated bound: a frame accepted within the last interval before a crash can be
    # accepted once more after it (here the interval is an hour).
    unsaved = world.node("server", clock=clock, state_dir=crash_copy(world, tmp_path, "early"))
    assert reason(unsaved, "jobs", jobs[0]) == "accept"
    unsaved.close()
    slow.close()

    node = world.node("server", clock=clock, checkpoint_interval=0.05)
    node.open("jobs", jobs[1])
    snapshot = state_of(world) / "jobs.0.replay"
    key_id = node.public_key.key_id

    def saved() -> bool:
        content = decode_snapshot(snapshot.read_bytes(), key_id, "jobs")
        return any(mark[2] == 1 for mark in content.marks.values())

    wait_for(saved, "a checkpoint")
    restarted = world.node("server", clock=clock, state_dir=crash_copy(world, tmp_path))
    assert [reason(restarted, "jobs", job) for job in jobs] == ["replay", "replay", "accept"]
    restarted.close()
    node.close()


def test_marks_older_than_max_age_are_dropped_so_the_file_stays_bounded(world, clock):
    client = world.node("client", clock=clock)
    with world.node("server", clock=clock) as node:
        for n in range(50):
            node.open("jobs", world.node("client", clock=clock).seal("jobs", b"%d" % n))
    clock.advance(31)  # max_age is 30 s
    with world.node("server", clock=clock) as node:
        receiver = node.receiver("jobs")
        assert receiver.guard.tombstones == 0
        receiver.open(client.seal("jobs", b"new"))
        receiver.close()
    key_id = world.keystore.identity("server").key_id
    for path in state_of(world).glob("*.replay"):
        content = decode_snapshot(path.read_bytes(), key_id, "jobs")
        assert len(content.marks) <= 1


def test_stale_temporary_files_of_its_own_slot_are_removed(world, clock):
    with world.node("server", clock=clock) as node:
        node.open("jobs", world.node("client", clock=clock).seal("jobs", b"job"))
    mine = state_of(world) / ".jobs.0.replay.k2j3h4.tmp"
    theirs = state_of(world) / ".jobs.1.replay.k2j3h4.tmp"
    for temp in (mine, theirs):
        temp.write_bytes(b"half a snapshot")
    with world.node("server", clock=clock) as node:
        node.receiver("jobs").close()
    assert not mine.exists()
    assert theirs.exists()  # slot 1's own receiver cleans it when it starts


# -- hostile files -------------------------------------------------------------------------
def _damage_snapshot(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "a flipped bit":
        path.write_bytes(data[:-20] + bytes([data[-20] ^ 1]) + data[-19:])
    elif how == "garbage":
        path.write_bytes(os.urandom(200))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "a newer format":
        path.write_bytes(MAGIC.replace(b"v1", b"v9") + data[len(MAGIC) :])
    elif how == "a directory":
        path.unlink()
        path.mkdir()
    elif how == "too large":
        with path.open("ab") as handle:
            handle.truncate(65 << 20)


@pytest.mark.parametrize(
    "how",
    [
        "truncated",
        "a flipped bit",
        "garbage",
        "empty",
        "a newer format",
        "a directory",
        "too large",
    ],
)
def test_a_damaged_snapshot_starts_the_receiver_conservatively(world, clock, caplog, how):
    """Nothing tells what a damaged file had accepted: the receiver warns, naming the file,
    refuses every frame stamped before its start (stale), accepts what comes after, and
    replaces the file with its own state."""
    client = world.node("client", clock=clock)
    with world.node("server", clock=clock) as node:
        node.open("jobs", client.seal("jobs", b"accepted before"))
    early = client.seal("jobs", b"queued before the start")
    snapshot = state_of(world) / "jobs.0.replay"
    _damage_snapshot(snapshot, how)
    clock.advance(1)
    caplog.set_level(logging.WARNING, logger="nngsec")
    with world.node("server", clock=clock) as node:
        assert reason(node, "jobs", early) == "stale"
        clock.advance(3)  # past the clock-skew allowance of the start
        assert node.open("jobs", client.seal("jobs", b"after")).payload == b"after"
    assert str(snapshot) in caplog.text
    assert "cannot use this replay state" in caplog.text
    if how != "a directory":  # (that one cannot be replaced by a file: warned again)
        key_id = world.keystore.identity("server").key_id
        assert decode_snapshot(snapshot.read_bytes(), key_id, "jobs").floor > clock.now - 4


def test_a_snapshot_of_another_identity_or_channel_is_not_used(world_factory, clock, caplog):
    world = world_factory(
        CHANNELS + "  more: {pattern: pipeline, pushers: [client], pullers: [server]}\n",
        ["client", "server"],
    )
    client = world.node("client", clock=clock)
    with world.node("server", clock=clock) as node:
        node.open("more", client.seal("more", b"x"))
    early = client.seal("jobs", b"queued before the start")
    os.replace(state_of(world) / "more.0.replay", state_of(world) / "jobs.0.replay")
    caplog.set_level(logging.WARNING, logger="nngsec")
    with world.node("server", clock=clock) as node:
        assert reason(node, "jobs", early) == "stale"
    assert "written for another identity or channel" in caplog.text


def _journal(world, records):
    key_id = world.keystore.identity("server").key_id
    path = state_of(world) / "rpc.0.journal"
    state_of(world).mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(encode_journal_header(key_id, "rpc") + b"".join(records))
    return path


def test_a_journal_torn_by_a_power_loss_keeps_its_complete_records(world, clock, caplog):
    client = world.node("client", clock=clock)
    first, second = (client.seal("rpc", b"request %d" % n) for n in range(2))
    with world.node("server", clock=clock, checkpoint_interval=3600) as node:
        node.open("rpc", first)
        node.open("rpc", second)
        journal = state_of(world) / "rpc.0.journal"
        data = journal.read_bytes()
        crashed = data[:-5]  # the second record was half written when the power went
    shutil.rmtree(state_of(world))
    state_of(world).mkdir(mode=0o700)
    journal.write_bytes(crashed)
    caplog.set_level(logging.WARNING, logger="nngsec")
    with world.node("server", clock=clock) as node:
        assert reason(node, "rpc", first) == "replay"
        assert reason(node, "rpc", second) == "accept"  # within the power-loss bound
    assert "replay state" not in caplog.text


@pytest.mark.parametrize("how", ["a bad checksum", "an empty record", "stray bytes"])
def test_a_damaged_journal_starts_the_receiver_conservatively(world, clock, caplog, how):
    key_id = world.keystore.identity("client").key_id
    record = bytearray(encode_journal_record(key_id, b"s" * 16, 7, clock.now))
    if how == "a bad checksum":
        record[-1] ^= 1
    elif how == "an empty record":
        record = bytearray(b"\x00")
    else:  # a record whose length covers more than its fields
        body = bytes(record[1:-4]) + b"xx"
        import zlib

        record = bytearray(bytes([len(body)]) + body + zlib.crc32(body).to_bytes(4, "big"))
    path = _journal(world, [bytes(record)])
    early = world.node("client", clock=clock).seal("rpc", b"queued before the start")
    caplog.set_level(logging.WARNING, logger="nngsec")
    with world.node("server", clock=clock) as node:
        assert reason(node, "rpc", early) == "stale"
    assert str(path) in caplog.text


def test_an_unusable_state_directory_is_refused_with_its_place(world, clock, tmp_path):
    client = world.node("client", clock=clock)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # (umask)
    node = world.node("server", clock=clock, state_dir=shared)
    with pytest.raises(KeystoreError) as caught:
        node.open("jobs", client.seal("jobs", b"job"))
    assert caught.value.path == str(shared)
    assert "group or others can write it" in str(caught.value)
    assert "state_dir" in caught.value.hint

    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    node = world.node("server", clock=clock, state_dir=not_a_directory)
    with pytest.raises(KeystoreError, match="cannot keep replay state here"):
        node.receiver("jobs")


@pytest.mark.parametrize(
    "options",
    [
        {"state_dir": True},
        {"state_dir": 3},
        {"checkpoint_interval": 0},
        {"checkpoint_interval": -1},
        {"checkpoint_interval": True},
        {"checkpoint_interval": float("nan")},
    ],
)
def test_bad_state_options_are_caller_mistakes(world, options):
    with pytest.raises(UsageError):
        world.node("server", **options)


def test_a_failed_write_through_is_an_error_and_delivers_nothing(world, clock):
    client = world.node("client", clock=clock)
    request = client.seal("rpc", b"request")
    node = world.node("server", clock=clock)
    receiver = node.receiver("rpc")
    (state_of(world) / "rpc.0.journal").mkdir()  # the journal cannot be opened for writing
    with pytest.raises(KeystoreError) as caught:
        receiver.open(request)
    assert caught.value.path == str(state_of(world) / "rpc.0.journal")
    (state_of(world) / "rpc.0.journal").rmdir()
    assert receiver.open(request).payload == b"request"  # it was not recorded either
    receiver.close()


# -- the thread and fork -------------------------------------------------------------------
def test_the_checkpoint_thread_ends_with_the_last_receiver(world, clock):
    import pynng

    before = len(checkpoint_threads())
    node = world.node("server", clock=clock)
    pull = node.attach(pynng.Pull0(), "jobs")
    assert len(checkpoint_threads()) == before + 1
    pull.close()
    wait_for(lambda: len(checkpoint_threads()) == before, "the thread to end")
    with world.node("server", clock=clock) as other:
        other.open("jobs", world.node("client", clock=clock).seal("jobs", b"job"))
        assert len(checkpoint_threads()) == before + 1
    assert len(checkpoint_threads()) == before  # close() joined it


def test_a_forked_child_never_writes_the_parents_state(world, clock):
    client = world.node("client", clock=clock)
    requests = [client.seal("rpc", b"request %d" % n) for n in range(3)]
    node = world.node("server", clock=clock, checkpoint_interval=3600)
    node.open("rpc", requests[0])
    journal = state_of(world) / "rpc.0.journal"
    before = journal.read_bytes()
    pid = os.fork()
    if pid == 0:  # the child: its windows work in memory, its files are the parent's
        code = 1
        try:
            if reason(node, "rpc", requests[0]) == "replay":
                node.open("rpc", requests[1])
                node.close()
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert journal.read_bytes() == before
    assert not (state_of(world) / "rpc.0.replay").exists()
    other = world.node("server", clock=clock).receiver("rpc")
    assert other.replay_slot.number == 1  # the parent still holds slot 0
    other.close()
    node.open("rpc", requests[2])
    node.close()
    with world.node("server", clock=clock) as restarted:
        assert [reason(restarted, "rpc", r) for r in requests] == ["replay"] * 3


def test_a_receiver_collected_without_close_is_written_and_given_back(world, clock):
    """The collector only flags the slot; the checkpoint thread writes and releases it."""
    before = len(checkpoint_threads())
    job = world.node("client", clock=clock).seal("jobs", b"job")
    # Even with checkpoints an hour apart, the slot comes back within a second or so.
    receiver = world.node("server", clock=clock, checkpoint_interval=3600).receiver("jobs")
    receiver.open(job)
    slot = receiver.replay_slot
    del receiver
    gc.collect()
    assert slot.abandoned
    wait_for(lambda: slot.closed, "the thread to close the slot")
    wait_for(lambda: len(checkpoint_threads()) == before, "the thread to end")
    with world.node("server", clock=clock) as node:
        assert node.receiver("jobs").replay_slot.number == 0
        assert reason(node, "jobs", job) == "replay"


@pytest.mark.subprocess
def test_a_receiver_open_at_exit_writes_its_final_state(world, clock, tmp_path):
    job = world.node("client", clock=clock).seal("jobs", b"job")
    script = f"""
import sys
from nngsec import Node
node = Node(
    {str(world.policy_path)!r},
    identity="server",
    keystore={str(world.keystore.directory)!r},
    checkpoint_interval=3600,
    clock=lambda: {clock.now!r},
)
node.open("jobs", bytes.fromhex({job.hex()!r}))
sys.exit(0)  # no close(): the exit handler writes the snapshot
"""
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert (state_of(world) / "jobs.0.replay").exists()
    with world.node("server", clock=clock) as node:
        assert reason(node, "jobs", job) == "replay"


def test_every_pattern_and_scheme_refuses_across_a_restart(world_factory, clock):
    """The red team replayed jobs, publications, pair frames and requests into restarted
    receivers; every channel kind of the suite, forward frames and replies alike."""
    world = world_factory(ALL_CHANNELS, NAMES)
    alice = world.node(ALICE, clock=clock)
    frames = []
    for channel, spec in load_policy(world.policy_path).channels.items():
        receiver = BOB if spec.pattern_spec.symmetric else CAROL
        topic = "t.x" if spec.pattern_spec.has_topic else None
        frames.append((channel, receiver, alice.seal(channel, b"once", topic=topic)))
    with world.node(BOB, clock=clock) as bob, world.node(CAROL, clock=clock) as carol:
        nodes = {BOB: bob, CAROL: carol}
        replies = []
        for channel, receiver, frame in frames:
            request = nodes[receiver].open(channel, frame)
            if load_policy(world.policy_path).channels[channel].pattern_spec.has_replies:
                replies.append((channel, nodes[receiver].reply(request, b"answer")))
        for channel, reply in replies:
            assert alice.open(channel, reply).payload == b"answer"
    alice.close()
    clock.advance(1)
    with world.node(BOB, clock=clock) as bob, world.node(CAROL, clock=clock) as carol:
        nodes = {BOB: bob, CAROL: carol}
        outcomes = {channel: reason(nodes[r], channel, frame) for channel, r, frame in frames}
    assert outcomes == {channel: "replay" for channel, _, _ in frames}
    with world.node(ALICE, clock=clock) as alice:  # and a reply replayed to its client
        assert {reason(alice, channel, reply) for channel, reply in replies} == {"replay"}


# -- the decoders against arbitrary bytes --------------------------------------------------
OWNER = b"r" * 8
VALID_SNAPSHOT = encode_snapshot(
    OWNER,
    "jobs",
    float("-inf"),
    {b"k" * 8: 5.0},
    [(b"k" * 8, b"s" * 16, 7, 9.0), (b"q" * 8, b"t" * 8, 0, 1.5)],
)
VALID_JOURNAL = encode_journal_header(OWNER, "jobs") + b"".join(
    encode_journal_record(b"k" * 8, bytes([n]) * 16, n, 1.0 + n) for n in range(3)
)


def _mutated(data: bytes, draw) -> bytes:
    edits = draw(
        st.lists(
            st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255), st.booleans()),
            min_size=1,
            max_size=4,
        )
    )
    out = bytearray(data)
    for at, value, insert in edits:
        at %= len(out) or 1
        if insert:
            out.insert(at, value)
        else:
            out[at] = value
    return bytes(out[: draw(st.integers(0, len(out)))])


@settings(max_examples=examples(150), deadline=None)
@given(st.data())
def test_any_snapshot_bytes_decode_or_raise_state_damaged(data):
    """Even with a correct digest (whoever writes the file can compute it), the parser
    raises only StateDamaged; what it returns is well formed."""
    body = _mutated(VALID_SNAPSHOT[:-16], data.draw)
    if data.draw(st.booleans()):
        body += hashlib.blake2b(body, digest_size=16).digest()
    try:
        content = decode_snapshot(body, OWNER, "jobs")
    except StateDamaged:
        return
    for (key_id, session), (k, s, highest, newest) in content.marks.items():
        assert (key_id, session) == (k, s) and 0 < len(k) <= 64 and 0 < len(s) <= 64
        assert highest >= 0 and math.isfinite(newest)


@settings(max_examples=examples(150), deadline=None)
@given(st.data())
def test_any_journal_bytes_decode_or_raise_state_damaged(data):
    try:
        content = decode_journal(_mutated(VALID_JOURNAL, data.draw), OWNER, "jobs")
    except StateDamaged:
        return
    assert all(math.isfinite(mark[3]) for mark in content.marks.values())


def test_valid_files_decode_to_what_was_written():
    snapshot = decode_snapshot(VALID_SNAPSHOT, OWNER, "jobs")
    assert snapshot.floor == float("-inf")
    assert snapshot.sender_floors == {b"k" * 8: 5.0}
    assert sorted(snapshot.marks.values()) == [
        (b"k" * 8, b"s" * 16, 7, 9.0),
        (b"q" * 8, b"t" * 8, 0, 1.5),
    ]
    journal = decode_journal(VALID_JOURNAL, OWNER, "jobs")
    assert sorted(m[2] for m in journal.marks.values()) == [0, 1, 2]
    with pytest.raises(StateDamaged, match="another identity or channel"):
        decode_journal(VALID_JOURNAL, OWNER, "other")
    with pytest.raises(ValueError, match="session"):
        encode_snapshot(OWNER, "jobs", 0.0, {}, [(b"k" * 8, b"", 0, 0.0)])


def test_receivers_of_a_closed_node_go_on_in_memory_only(world, clock):
    client = world.node("client", clock=clock)
    node = world.node("server", clock=clock)
    receiver = node.receiver("rpc")
    node.close()
    assert receiver.replay_slot is not None and receiver.replay_slot.closed
    assert receiver.open(client.seal("rpc", b"request")).payload == b"request"
    assert not (state_of(world) / "rpc.0.journal").exists()


def test_slots_are_bounded(world, clock, monkeypatch):
    monkeypatch.setattr(replay_state, "MAX_SLOTS", 2)
    node = world.node("server", clock=clock)
    held = [node.receiver("jobs"), node.receiver("jobs")]
    with pytest.raises(KeystoreError, match="2 receivers of channel 'jobs' already use it"):
        node.receiver("jobs")
    node.receiver("rpc").close()  # another channel has its own slots
    for receiver in held:
        receiver.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory away needs root")
def test_a_state_directory_of_another_user_is_refused(world, clock, tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 12345, 12345)
    node = world.node("server", clock=clock, state_dir=theirs)
    with pytest.raises(KeystoreError, match="belongs to another user"):
        node.receiver("jobs")
