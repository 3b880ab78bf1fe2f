"""The conventions people expect of a command line: ``-V``, ``--format json`` where output
is data, option help that lists the values, colour that follows NO_COLOR, FORCE_COLOR and
TERM=dumb, and shell completion.

In process through the ``cli`` fixture, except the completion scripts, which run in bash.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from nngsec._cli import COMMANDS, _demo, build_parser
from nngsec._cli._check_commands import use_colour
from nngsec._cli._completion import describe, script
from nngsec._patterns import RELAY_PATTERN_NAMES
from tests.support import ROOT

TOPOLOGY = ROOT / "policies" / "factory.topology.yaml"
COLOUR = "\033["


def test_dash_capital_v_is_the_version(cli):
    short, long = cli("-V"), cli("--version")
    assert short.code == long.code == 0
    assert short.out == long.out and short.out.startswith("nngsec ")


@pytest.mark.parametrize(
    ("args", "as_json"),
    [([], False), (["--format", "text"], False), (["--format", "json"], True), (["--json"], True)],
)
def test_demo_takes_format_json_and_keeps_json_as_an_alias(cli, monkeypatch, args, as_json):
    seen: list[bool] = []

    def main(as_json: bool = False) -> int:
        seen.append(as_json)
        return 0

    monkeypatch.setattr(_demo, "main", main)
    assert cli("demo", *args).code == 0
    assert seen == [as_json]


def test_bench_help_lists_the_values_of_patterns_and_modes(cli):
    out = " ".join(cli("bench", "--help").out.split())
    assert "from pair, pubsub, pipeline, reqrep" in out
    assert "threads" in out and "processes" in out
    assert "--patterns PATTERN,..." in out and "--modes MODE,..." in out


def test_relay_help_states_the_relays_own_default_size(cli):
    from nngsec._formats._units import format_size
    from nngsec._relay import DEFAULT_MAX_MESSAGE_SIZE

    out = " ".join(cli("relay", "--help").out.split())
    assert f"(default: {format_size(DEFAULT_MAX_MESSAGE_SIZE)})" in out
    assert ", ".join(RELAY_PATTERN_NAMES) in out


# -- colour ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "terminal", "colour"),
    [
        ({}, True, True),
        ({}, False, False),
        ({"TERM": "dumb"}, True, False),
        ({"NO_COLOR": "1"}, True, False),
        ({"NO_COLOR": ""}, True, True),  # no-color.org: set *and not empty*
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": "1", "TERM": "dumb"}, False, True),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, True, False),  # NO_COLOR wins
        ({"FORCE_COLOR": ""}, False, False),
    ],
)
def test_auto_colour_follows_the_environment(monkeypatch, env, terminal, colour):
    for name in ("TERM", "NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TERM", env.get("TERM", "xterm-256color"))
    assert use_colour("auto", terminal) is colour
    assert use_colour("always", False) is True
    assert use_colour("never", True) is False


def test_force_color_colours_a_report_that_is_not_on_a_terminal(cli):
    assert COLOUR not in cli("check", TOPOLOGY).out
    assert COLOUR in cli("check", TOPOLOGY, env={"FORCE_COLOR": "1"}).out
    assert COLOUR not in cli("check", TOPOLOGY, env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).out
    assert COLOUR not in cli("check", TOPOLOGY, "--color", "never", env={"FORCE_COLOR": "1"}).out


# -- completion -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bash_completion(tmp_path_factory):
    if shutil.which("bash") is None:
        pytest.fail("bash is needed to test the bash completion")
    path = tmp_path_factory.mktemp("completion") / "nngsec.bash"
    path.write_text(script("bash"))

    def complete(*words: str) -> list[str]:
        """What Tab offers after ``nngsec WORDS`` (the last word is the one completed)."""
        quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in ("nngsec", *words))
        program = (
            f"source {path}\n"
            f"COMP_WORDS=({quoted}); COMP_CWORD={len(words)}\n"
            '_nngsec; printf "%s\\n" "${COMPREPLY[@]}"\n'
        )
        done = subprocess.run(
            ["bash", "--norc", "-c", program],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return [line for line in done.stdout.splitlines() if line]

    return complete


def test_bash_completes_commands(bash_completion):
    assert bash_completion("") == [*COMMANDS, "-h", "--help", "-V", "--version"]
    assert bash_completion("ch") == ["check"]
    assert bash_completion("re") == ["revoke", "relay"]


def test_bash_completes_options_and_their_values(bash_completion):
    assert "--format" in bash_completion("check", "--f")
    assert bash_completion("check", "--format", "") == ["text", "json", "sarif"]
    assert bash_completion("check", "--format", "s") == ["sarif"]
    assert bash_completion("check", "--keystore", "") == []  # a directory: the shell's own
    assert bash_completion("schema", "") == ["policy", "topology", "channel-keys"]
    assert bash_completion("relay", "") == list(RELAY_PATTERN_NAMES)
    assert bash_completion("relay", "pubsub", "--front", "") == []
    assert bash_completion("completion", "") == ["bash", "zsh", "fish"]
    assert set(bash_completion("demo", "--")) == {"--help", "--format", "--json"}


def test_bash_knows_which_words_are_option_values(bash_completion):
    """``relay --front URL <Tab>``: the URL is --front's value, so PATTERN comes next."""
    assert bash_completion("relay", "--front", "tcp://a:1", "") == list(RELAY_PATTERN_NAMES)
    assert bash_completion("relay", "pubsub", "") == []  # past PATTERN: the shell's own


def test_every_option_of_every_command_is_in_each_script():
    _, commands = describe(build_parser())
    scripts = {shell: script(shell) for shell in ("bash", "zsh", "fish")}
    for command in commands:
        for shell, text in scripts.items():
            assert command.name in text, (shell, command.name)
            for option in command.options:
                for flag in option.flags:
                    name = flag.lstrip("-") if shell == "fish" else flag
                    assert name in text, (shell, command.name, flag)
                for choice in option.choices or ():
                    assert choice in text, (shell, command.name, choice)


def test_the_zsh_and_fish_scripts_have_their_shells_structure():
    zsh = script("zsh")
    assert zsh.startswith("#compdef nngsec\n")
    assert "compdef _nngsec nngsec" in zsh
    assert "--format'[text (default), json, or sarif (SARIF 2.1.0, for code scanning in CI)]" in zsh
    assert "'(-V --version)'{-V,--version}" in zsh
    assert "'*'--graph'[" in zsh  # repeatable options may be given again
    fish = script("fish")
    check = "complete -c nngsec -n '__fish_seen_subcommand_from check'"
    assert f"{check} -l format -x -a 'text json sarif'" in fish
    assert "complete -c nngsec -n __fish_use_subcommand -a relay" in fish
    for shell in ("zsh", "fish"):
        if shutil.which(shell):  # not on the CI machine; syntax-checked where installed
            done = subprocess.run([shell, "-n"], input=script(shell), text=True, check=False)
            assert done.returncode == 0, shell


def test_completion_command_prints_the_script(cli):
    result = cli("completion", "bash")
    assert result.code == 0
    assert result.out == script("bash")
    assert "complete -o default -F _nngsec nngsec" in result.out
