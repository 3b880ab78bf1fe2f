"""completion: shell completion scripts for bash, zsh and fish, from the parser itself.

The commands, their options, which options take a value and the values they accept are
read from the argparse parser (the same one that parses the command line), so a new option
completes as soon as it exists. The scripts are static: completing a word never starts
Python. Values without a fixed set of choices complete as file names.

    source <(nngsec completion bash)          # ~/.bashrc
    source <(nngsec completion zsh)           # ~/.zshrc (after compinit)
    nngsec completion fish > ~/.config/fish/completions/nngsec.fish
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from typing import Any

SHELLS = ("bash", "zsh", "fish")


def register(commands: Any) -> None:
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, fish)",
        description="Print a completion script for SHELL: commands, options and their values "
        "complete with Tab. Load it with: source <(nngsec completion bash) in ~/.bashrc, "
        "source <(nngsec completion zsh) in ~/.zshrc, or nngsec completion fish > "
        "~/.config/fish/completions/nngsec.fish",
    )
    completion.add_argument("shell", metavar="SHELL", choices=SHELLS, help=", ".join(SHELLS))
    completion.set_defaults(run=_completion)


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    takes_value: bool
    choices: tuple[str, ...] | None
    help: str
    value: str = "value"  # what the value is called (its metavar)
    repeats: bool = False  # may be given several times (action="append")


@dataclass(frozen=True)
class Positional:
    name: str
    choices: tuple[str, ...] | None
    repeats: bool  # nargs * or +: every further word


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    options: tuple[Option, ...]
    positionals: tuple[Positional, ...]


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = parser._get_formatter()._expand_help(action) if action.help else ""
    return " ".join(text.split())


def _choices(action: argparse.Action) -> tuple[str, ...] | None:
    return tuple(str(choice) for choice in action.choices) if action.choices else None


def _options(parser: argparse.ArgumentParser) -> tuple[tuple[Option, ...], tuple[Positional, ...]]:
    options, positionals = [], []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            options.append(
                Option(
                    tuple(action.option_strings),
                    takes_value=action.nargs != 0,
                    choices=_choices(action),
                    help=_help(parser, action),
                    value=str(action.metavar or action.dest).lower(),
                    repeats=isinstance(action, argparse._AppendAction),
                )
            )
        elif not isinstance(action, argparse._SubParsersAction):
            repeats = action.nargs in ("*", "+", argparse.REMAINDER)
            name = str(action.metavar or action.dest).upper()
            positionals.append(Positional(name, _choices(action), repeats))
    return tuple(options), tuple(positionals)


def describe(parser: argparse.ArgumentParser) -> tuple[tuple[Option, ...], tuple[Command, ...]]:
    """The top-level options and every command of ``parser`` (fully built)."""
    top, _ = _options(parser)
    commands: list[Command] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                options, positionals = _options(sub)
                commands.append(Command(name, summaries.get(name, ""), options, positionals))
    return top, tuple(commands)


# -- bash ---------------------------------------------------------------------------------


def _words(items: Any) -> str:
    return " ".join(items)


def bash_script(top: tuple[Option, ...], commands: tuple[Command, ...]) -> str:
    top_words = [c.name for c in commands] + [flag for o in top for flag in o.flags]
    cases = []
    for command in commands:
        valued = [o for o in command.options if o.takes_value]
        prev_cases = [
            f"                {'|'.join(o.flags)}) "
            + (
                f'COMPREPLY=($(compgen -W "{_words(o.choices)}" -- "$cur")); return ;;'
                if o.choices
                else "return ;;  # a file name (complete -o default)"
            )
            for o in valued
        ]
        flags = _words(flag for o in command.options for flag in o.flags)
        value_flags = "|".join(flag for o in valued for flag in o.flags) or "--"
        positional_cases = [
            f"                {index}) "
            + (
                f'COMPREPLY=($(compgen -W "{_words(p.choices)}" -- "$cur")) ;;'
                if p.choices
                else ";;"
            )
            for index, p in enumerate(command.positionals)
            if p.choices
        ]
        body = [
            f"        {command.name})",
            '            case "$prev" in',
            *prev_cases,
            "            esac",
            '            if [[ "$cur" == -* ]]; then',
            f'                COMPREPLY=($(compgen -W "{flags}" -- "$cur")); return',
            "            fi",
            f'            _nngsec_positional "{value_flags}"',
            '            case "$position" in',
            *positional_cases,
            "            esac",
            "            ;;",
        ]
        cases.extend(body)
    lines = [
        "# bash completion for nngsec (generated by `nngsec completion bash`).",
        "# Load it with: source <(nngsec completion bash)",
        "",
        "_nngsec_positional() {",
        "    # position: how many positional words of the command come before the current one",
        '    local value_flags="$1" i word',
        "    position=0",
        "    for ((i = command_index + 1; i < COMP_CWORD; i++)); do",
        '        word="${COMP_WORDS[i]}"',
        '        if [[ "$word" == -* ]]; then',
        '            [[ "|$value_flags|" == *"|$word|"* ]] && ((i++))',
        "        else",
        "            ((position++))",
        "        fi",
        "    done",
        "}",
        "",
        "_nngsec() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '    local command="" command_index=0 position=0 i',
        "    COMPREPLY=()",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        if [[ "${COMP_WORDS[i]}" != -* ]]; then',
        '            command="${COMP_WORDS[i]}"; command_index=$i; break',
        "        fi",
        "    done",
        '    if [[ -z "$command" ]]; then',
        f'        COMPREPLY=($(compgen -W "{_words(top_words)}" -- "$cur")); return',
        "    fi",
        '    case "$command" in',
        *cases,
        "    esac",
        "}",
        "complete -o default -F _nngsec nngsec",
    ]
    return "\n".join(lines) + "\n"


# -- zsh ----------------------------------------------------------------------------------


def _summary(text: str) -> str:
    """The first sentence of a help text, on one line."""
    return " ".join(text.split(". ", maxsplit=1)[0].split())


def _zsh_text(text: str) -> str:
    """Help text for a zsh spec: no brackets or colons, single-quote safe."""
    return _summary(re.sub(r"[\[\]:]", " ", text)).replace("'", "'\\''")


def _zsh_option(option: Option) -> str:
    names = option.flags
    spec = "{" + ",".join(names) + "}" if len(names) > 1 else names[0]
    exclusive = f"'({' '.join(names)})'" if len(names) > 1 else ""
    repeat = "'*'" if option.repeats else ""
    description = f"'[{_zsh_text(option.help)}]"
    if not option.takes_value:
        return f"{repeat}{exclusive}{spec}{description}'"
    action = f"({' '.join(option.choices)})" if option.choices else "_files"
    value = _zsh_text(option.value) or "value"
    return f"{repeat}{exclusive}{spec}{description}:{value}:{action}'"


def _zsh_positional(index: int, positional: Positional) -> str:
    action = f"({' '.join(positional.choices)})" if positional.choices else "_files"
    where = "*" if positional.repeats else str(index + 1)
    return f"'{where}:{positional.name.lower()}:{action}'"


def zsh_script(top: tuple[Option, ...], commands: tuple[Command, ...]) -> str:
    listing = [f"        '{c.name}:{_zsh_text(c.help)}'" for c in commands]
    cases = []
    for command in commands:
        specs = [_zsh_option(o) for o in command.options]
        specs += [_zsh_positional(i, p) for i, p in enumerate(command.positionals)]
        joined = " \\\n                ".join(specs)
        cases.append(f"            {command.name})\n                _arguments -s {joined} ;;")
    top_specs = " \\\n        ".join(_zsh_option(o) for o in top)
    lines = [
        "#compdef nngsec",
        "# zsh completion for nngsec (generated by `nngsec completion zsh`).",
        "# Load it with: source <(nngsec completion zsh), after compinit",
        "",
        "_nngsec() {",
        "    local state line",
        "    local -a commands",
        "    commands=(",
        *listing,
        "    )",
        f"    _arguments -C \\\n        {top_specs} \\",
        "        '1:command:->command' \\",
        "        '*::argument:->argument'",
        "    case $state in",
        "        command) _describe -t commands 'nngsec command' commands ;;",
        "        argument)",
        "            case $line[1] in",
        *cases,
        "            esac ;;",
        "    esac",
        "}",
        "",
        'if [[ "${funcstack[1]}" == _nngsec ]]; then',
        '    _nngsec "$@"',
        "else",
        "    compdef _nngsec nngsec",
        "fi",
    ]
    return "\n".join(lines) + "\n"


# -- fish ---------------------------------------------------------------------------------


def _fish_text(text: str) -> str:
    """Help text as a fish single-quoted string."""
    return "'" + _summary(text).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_flags(option: Option) -> str:
    parts = []
    for flag in option.flags:
        if flag.startswith("--"):
            parts.append(f"-l {flag[2:]}")
        else:
            parts.append(f"-s {flag[1:]}")
    return " ".join(parts)


def fish_script(top: tuple[Option, ...], commands: tuple[Command, ...]) -> str:
    lines = [
        "# fish completion for nngsec (generated by `nngsec completion fish`).",
        "# Install it with: nngsec completion fish > ~/.config/fish/completions/nngsec.fish",
        "complete -c nngsec -f",
    ]
    for option in top:
        lines.append(
            f"complete -c nngsec -n __fish_use_subcommand {_fish_flags(option)} "
            f"-d {_fish_text(option.help)}"
        )
    for command in commands:
        lines.append(
            f"complete -c nngsec -n __fish_use_subcommand -a {command.name} "
            f"-d {_fish_text(command.help)}"
        )
    for command in commands:
        when = f"-n '__fish_seen_subcommand_from {command.name}'"
        for option in command.options:
            if not option.takes_value:
                value = ""
            elif option.choices:
                value = f" -x -a '{' '.join(option.choices)}'"
            else:
                value = " -r -F"
            lines.append(
                f"complete -c nngsec {when} {_fish_flags(option)}{value} "
                f"-d {_fish_text(option.help)}"
            )
        for positional in command.positionals:
            values = f"-a '{' '.join(positional.choices)}'" if positional.choices else "-F"
            lines.append(f"complete -c nngsec {when} {values}")
    return "\n".join(lines) + "\n"


def script(shell: str) -> str:
    """The completion script for ``shell`` (one of :data:`SHELLS`)."""
    from . import build_parser

    top, commands = describe(build_parser())
    render = {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}[shell]
    return render(top, commands)


def _completion(args: argparse.Namespace) -> int:
    sys.stdout.write(script(args.shell))
    return 0
