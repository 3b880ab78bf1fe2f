"""A crash during a write (simulated by failing the rename) leaves the previous file intact.

``nngsec._formats._atomic.write_atomic`` writes a temporary file beside the target and renames it
into place (``os.replace``; ``os.link`` when it must not overwrite). Here those calls fail,
as a crash or a full disk would make them, and every command that writes is checked.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from nngsec import Keystore, KeystoreError, load_policy
from nngsec._cli import main
from nngsec._formats import _atomic
from nngsec._formats._atomic import write_atomic
from nngsec._policy._admin import revoke, rotate, sign
from tests.support import NOW

BODY = """
channels:
  telemetry:
    pattern: pubsub
    publishers: [sensor]
    subscribers: [dashboard, archiver]
  cells:
    pattern: bus
    members: [sensor, dashboard, archiver]
"""


class Crash(OSError):
    def __init__(self, source: object = None, destination: object = None) -> None:
        super().__init__(errno.EIO, "simulated crash", source, None, destination)


def fail_when(monkeypatch, name: str, target: Callable[[Path], bool] = lambda _: True):
    """Make ``os.<name>`` (as ``nngsec._formats._atomic`` calls it) fail for matching targets."""
    real = getattr(os, name)
    calls: list[Path] = []

    def failing(source, destination, *args, **kwargs):
        if target(Path(destination)):
            calls.append(Path(destination))
            raise Crash(source, destination)
        return real(source, destination, *args, **kwargs)

    monkeypatch.setattr("nngsec._formats._atomic.os." + name, failing)
    return calls


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.rglob(".*") if p.name.endswith(".tmp")]


# -- write_atomic -----------------------------------------------------------------------


@pytest.fixture(autouse=True, params=["unnamed-files", "named-temporaries"])
def both_ways_of_writing(request, monkeypatch):
    """Every test here runs both ways files are written: through an unnamed file (Linux's
    O_TMPFILE) and through a named, locked temporary (other systems)."""
    if request.param == "unnamed-files" and not _atomic.UNNAMED_FILES:
        pytest.skip("this system has no unnamed files")
    monkeypatch.setattr(_atomic, "UNNAMED_FILES", request.param == "unnamed-files")
    return request.param


def test_a_file_system_without_unnamed_files_falls_back_to_named_temporaries(tmp_path, monkeypatch):
    real = os.open

    def no_tmpfile(path, flags, *args, **kwargs):
        if hasattr(os, "O_TMPFILE") and flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported", str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr("nngsec._formats._atomic.os.open", no_tmpfile)
    write_atomic(tmp_path / "a", b"1", overwrite=False)
    write_atomic(tmp_path / "a", b"2")
    assert (tmp_path / "a").read_bytes() == b"2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_a_taken_temporary_name_is_skipped(tmp_path, monkeypatch):
    names = iter(["00000000", "00000000", "11111111"])
    monkeypatch.setattr("nngsec._formats._atomic.secrets.token_hex", lambda n: next(names))
    (tmp_path / ".f.nngsec-00000000.tmp").write_bytes(b"someone else's, being written")
    fd = os.open(tmp_path / ".f.nngsec-00000000.tmp", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held by a live writer, so not stale
        write_atomic(tmp_path / "f", b"mine")
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"mine"


def test_a_failed_rename_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / "file"
    path.write_bytes(b"old")
    calls = fail_when(monkeypatch, "replace")
    with pytest.raises(Crash):
        write_atomic(path, b"new")
    assert calls == [path]
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_failed_write_before_the_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "file"
    path.write_bytes(b"old")

    def failing_fsync(fd: int) -> None:
        raise Crash

    monkeypatch.setattr("nngsec._formats._atomic.os.fsync", failing_fsync)
    with pytest.raises(Crash):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize("existing", [False, True], ids=["new", "replacing"])
def test_the_new_file_is_complete_and_private_before_it_takes_the_name(
    tmp_path, monkeypatch, existing
):
    path = tmp_path / "secret"
    if existing:
        path.write_bytes(b"old")
    seen: list[tuple[str, bytes, int]] = []
    real_replace, real_link = os.replace, os.link

    def replace(source, destination):
        if Path(destination) == path:
            seen.append(("rename", Path(source).read_bytes(), os.stat(source).st_mode & 0o777))
        real_replace(source, destination)

    def link(source, destination, *args, **kwargs):
        if Path(destination) == path:  # an unnamed file (its /proc/self/fd entry) or a named one
            opened = f"/proc/self/fd/{source}" if kwargs.get("src_dir_fd") else source
            seen.append(("link", Path(opened).read_bytes(), os.stat(opened).st_mode & 0o777))
        real_link(source, destination, *args, **kwargs)

    monkeypatch.setattr("nngsec._formats._atomic.os.replace", replace)
    monkeypatch.setattr("nngsec._formats._atomic.os.link", link)
    write_atomic(path, b"x" * 100_000, mode=0o600)
    # The step that gives the name: a link (an unnamed file, new name), or a rename.
    assert [(data, mode) for _, data, mode in seen][-1:] == [(b"x" * 100_000, 0o600)]
    if _atomic.UNNAMED_FILES and not existing:
        assert [step for step, _, _ in seen] == ["link"]
    assert path.read_bytes() == b"x" * 100_000
    assert path.stat().st_mode & 0o777 == 0o600


def test_without_overwrite_an_existing_file_is_never_replaced(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        write_atomic(path, b"new", overwrite=False)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def _symlink(tmp_path: Path, target: Path) -> None:
    (tmp_path / "elsewhere").write_bytes(b"not ours")
    target.symlink_to(tmp_path / "elsewhere")


def _dangling(tmp_path: Path, target: Path) -> None:
    target.symlink_to(tmp_path / "nowhere")


def _hard_link(tmp_path: Path, target: Path) -> None:
    (tmp_path / "elsewhere").write_bytes(b"not ours")
    os.link(tmp_path / "elsewhere", target)


@pytest.mark.parametrize("make", [_symlink, _dangling, _hard_link], ids=lambda f: f.__name__[1:])
def test_a_link_at_the_target_is_replaced_never_written_through(tmp_path, make):
    """The name is replaced by a new regular file: the file a symlink or a second hard link
    points to keeps its bytes, and a dangling symlink creates nothing where it points (a
    write that followed the link, or linked through it, would write or create there)."""
    target = tmp_path / "state.json"
    make(tmp_path, target)
    write_atomic(target, b"new", mode=0o600)
    assert not target.is_symlink() and target.stat().st_nlink == 1
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        {"state.json"} | ({"elsewhere"} if make is not _dangling else set())
    )
    if make is not _dangling:
        assert (tmp_path / "elsewhere").read_bytes() == b"not ours"


def test_a_directory_at_the_target_is_an_error_naming_the_target(tmp_path):
    target = tmp_path / "state.json"
    target.mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        write_atomic(target, b"new")
    assert (caught.value.filename2 or caught.value.filename) == str(target)
    assert target.is_dir() and not any(target.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


# -- every command that writes ----------------------------------------------------------


@pytest.fixture
def world(world_factory):
    return world_factory(BODY, ["sensor", "dashboard", "archiver"])


def test_rotate_crash_keeps_the_previous_channel_keys(world, monkeypatch):
    before = snapshot(world.root)
    fail_when(monkeypatch, "replace")
    with pytest.raises(Crash):
        rotate(world.policy_path, now=NOW)
    assert snapshot(world.root) == before
    assert no_temp_files(world.root)
    monkeypatch.undo()
    world.node("dashboard")  # still a working deployment


def test_revoke_crash_writing_the_keys_changes_nothing(world, monkeypatch):
    before = snapshot(world.root)
    fail_when(monkeypatch, "replace", lambda p: p.name == "policy.keys.json")
    with pytest.raises(Crash):
        revoke(world.policy_path, "archiver", now=NOW)
    assert snapshot(world.root) == before
    assert no_temp_files(world.root)


def test_revoke_crash_writing_the_policy_leaves_new_keys_and_the_old_policy(world, monkeypatch):
    old_policy = world.policy_path.read_bytes()
    old_keys = world.policy_path.with_name("policy.keys.json").read_bytes()
    fail_when(monkeypatch, "replace", lambda p: p == world.policy_path)
    with pytest.raises(Crash):
        revoke(world.policy_path, "archiver", now=NOW)
    monkeypatch.undo()
    # The keys were rotated first, so the identity is already cut off from new epochs;
    # the policy (the second write) is exactly the old one, never half-edited.
    assert world.policy_path.read_bytes() == old_policy
    assert world.policy_path.with_name("policy.keys.json").read_bytes() != old_keys
    assert no_temp_files(world.root)
    node = world.node("archiver")
    assert node.channel_keys["telemetry"].current.secret is None
    assert node.channel_keys["telemetry"].epochs[1].secret is not None  # the previous epoch
    assert load_policy(world.policy_path).revoked == frozenset()
    revoke(world.policy_path, "archiver", now=NOW + 1)  # running it again completes it
    assert load_policy(world.policy_path).revoked == {"archiver"}


def test_sign_crash_keeps_the_previous_signature(world, tmp_path, monkeypatch):
    admin = Keystore(tmp_path / "admin")
    admin.generate("admin")
    sign(world.policy_path, admin.key_path("admin"))
    before = snapshot(world.root)
    rotate(world.policy_path, now=NOW)
    fail_when(monkeypatch, "replace", lambda p: p.suffix == ".sig")
    with pytest.raises(Crash):
        sign(world.policy_path, admin.key_path("admin"))
    after = snapshot(world.root)
    assert after["policy.yaml.sig"] == before["policy.yaml.sig"]
    assert no_temp_files(world.root)


def test_keygen_crash_leaves_no_key_and_no_temporary(tmp_path, monkeypatch):
    fail_when(monkeypatch, "link")  # the private key is linked into place: never overwritten
    keystore = Keystore(tmp_path / "keys")
    with pytest.raises(Crash):
        keystore.generate("sensor")
    assert list((tmp_path / "keys").iterdir()) == []


def test_keygen_crash_writing_the_public_file_keeps_a_complete_private_key(tmp_path, monkeypatch):
    # A new public file is linked to its name (an unnamed file) or renamed into it.
    fail_when(monkeypatch, "replace", lambda p: p.suffix == ".pub")
    fail_when(monkeypatch, "link", lambda p: p.suffix == ".pub")
    keystore = Keystore(tmp_path / "keys")
    with pytest.raises(OSError, match="simulated crash"):
        keystore.generate("sensor")
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["sensor.key"]
    assert Keystore(tmp_path / "keys").identity("sensor") is not None


def test_trust_crash_pins_nothing(tmp_path, monkeypatch):
    admin = Keystore(tmp_path / "admin")
    _, _, public_path = admin.generate("admin")
    node = Keystore(tmp_path / "node")
    node.trust(Keystore(tmp_path / "other").generate("other")[2])
    before = snapshot(tmp_path / "node")
    fail_when(monkeypatch, "replace")
    fail_when(monkeypatch, "link")  # the pinned file is new: linked to its name
    with pytest.raises(OSError, match="simulated crash"):
        node.trust(public_path)
    assert snapshot(tmp_path / "node") == before
    assert no_temp_files(tmp_path / "node")
    monkeypatch.undo()
    assert list(node.trusted_signers()) == ["other"]


def test_rollback_record_crash_keeps_the_previous_record(world, monkeypatch):
    world.keystore.accept_version("factory", 4, "a" * 64, verified=True)
    record = world.keystore.directory / "verified-policies.json"
    before = record.read_bytes()
    fail_when(monkeypatch, "replace")
    with pytest.raises(KeystoreError, match="simulated crash"):
        world.keystore.accept_version("factory", 5, "b" * 64, verified=True)
    assert record.read_bytes() == before
    assert no_temp_files(world.keystore.directory)


@pytest.mark.parametrize(
    "args",
    [
        ["rotate", "{policy}"],
        ["revoke", "{policy}", "archiver"],
        ["keygen", "newcomer", "--keystore", "{keys}"],
    ],
)
def test_a_crash_under_the_cli_is_one_line_exit_2(world, monkeypatch, capsys, args):
    before = snapshot(world.root)
    fail_when(monkeypatch, "replace")
    fail_when(monkeypatch, "link")
    formatted = [a.format(policy=world.policy_path, keys=world.keystore.directory) for a in args]
    assert main(formatted) == 2
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    # The file named is the one being written, not the temporary beside it.
    assert re.match(
        r"^nngsec: error: \S+/(policy\.keys\.json|newcomer\.key): simulated crash", line
    )
    assert line.endswith("(hint: check the path, its permissions and the free disk space)")
    assert "Traceback" not in captured.err
    assert snapshot(world.root) == before
    assert no_temp_files(world.root)
