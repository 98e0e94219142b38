"""Reading the documentation as the tests check it: pages, their code blocks, the commands in them.

A page is README.md, a Markdown file under docs/, or bench/results/history.md (shown inside docs/history.md).
A shell or Python block either runs in a test or carries, on the line right before its opening fence,
`<!-- not run: REASON -->` saying in one line why it cannot run here. `<!-- notebook example -->` marks
the README's Python example, which runs word for word inside examples/quickstart.ipynb
(tests/test_notebooks.py).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
HISTORY = ROOT / "bench" / "results" / "history.md"

SHELL = ("bash", "sh", "shell", "console")
NOT_RUN = re.compile(r"^<!-- not run: (?P<reason>[^\n]*?) -->$")
NOTEBOOK_EXAMPLE = "<!-- notebook example -->"
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^```\s*$", re.S | re.M)
# Words a reader fills in (RUN, FILE.pt, SECTION, `...`, `[overrides]`): such a command is prose, not a command.
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]+\b|\.\.\.|\[")
PLACEHOLDER_WORDS = ("OLD.pt", "RUN_A", "RUN_B")
NAMES_IN_CAPITALS = ("BiT-M-R50x1", "BiT-M-R50x3")  # official weights names, not placeholders
VERB_MENTIONS = {"cifarlab sweep --launcher slurm", "cifarlab tune --launcher slurm", "cifarlab robustness make",
                 "cifarlab robustness eval"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    body: str
    marker: str  # the HTML comment on the line before the fence, or ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def not_run_reason(self) -> str | None:
        match = NOT_RUN.match(self.marker)
        return match.group("reason").strip() if match else None


def pages() -> list[Path]:
    """Every page a reader sees: the README, each Markdown file of docs/, and the history docs/ includes."""
    return [README, *sorted(DOCS.rglob("*.md")), HISTORY]


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        found.append(Block(page, text.count("\n", 0, match.start()) + 1, match.group("lang").lower(),
                           match.group("body"), before if before.startswith("<!--") else ""))
    return found


def runnable_blocks(lang: tuple[str, ...]) -> list[Block]:
    return [block for page in pages() for block in blocks(page) if block.lang in lang]


def shell_lines(block: Block) -> list[str]:
    """The block's command lines, trailing comments removed."""
    lines = [re.sub(r"\s+#\s.*$", "", line.strip()) for line in block.body.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def without_fences(text: str) -> str:
    return FENCE.sub("", text)


def inline_commands(page: Path) -> list[str]:
    """`cifarlab ...` commands written inline in the page's prose and tables, less those a reader fills in."""
    text = without_fences(page.read_text()).replace("\\|", "|")
    commands = [" ".join(match.split()) for match in re.findall(r"`{1,2}\s?(cifarlab [^`]+?)\s?`{1,2}", text)]
    # `cifarlab VERB` alone names a verb in prose; a command has more.
    return sorted({c for c in commands if len(c.split()) > 2 and c not in VERB_MENTIONS and not is_placeholder(c)})


def is_placeholder(command: str) -> bool:
    text = command
    for name in NAMES_IN_CAPITALS:
        text = text.replace(name, "")
    return bool(PLACEHOLDER.search(text)) or any(word in command for word in PLACEHOLDER_WORDS)


def cifarlab_argv(line: str) -> list[str] | None:
    """The arguments after `cifarlab` of a command line (also under `torchrun ... -m cifarlab`), else None."""
    words = shlex.split(line)
    if words[:1] == ["cifarlab"]:
        return words[1:]
    if words[:1] == ["torchrun"] and "-m" in words and words[words.index("-m") + 1:][:1] == ["cifarlab"]:
        return words[words.index("-m") + 2:]
    return None


def check_command(argv: list[str]) -> None:
    """Parse a documented `cifarlab` command as the CLI does and resolve the recipe, sweep, study or tune file it
    names, from the current folder. Nothing is trained; an AssertionError or CifarlabError says what is wrong."""
    from cifarlab.cli import build_parser
    from cifarlab.cli.words import is_override
    from cifarlab.config import load_recipe

    try:
        args, extra = build_parser().parse_known_args(argv)
    except SystemExit as exit_:
        assert exit_.code == 0 and (argv == ["--version"] or "--help" in argv), f"does not parse: {argv}"
        return
    assert all(is_override(word) for word in extra), f"not options nor key=value overrides: {extra}"
    overrides = list(getattr(args, "overrides", []) or []) + extra
    if args.verb in ("train", "lr-find") and args.recipe:
        load_recipe(args.recipe, overrides, check_machine=False)  # a documented GPU command checks here too
    elif args.verb == "sweep":
        from cifarlab.sweeps.grid_sweep import sweep_spec

        assert sweep_spec(args.recipe, args.grid or [], overrides).recipe.is_file()
    elif args.verb == "fewshot":
        load_recipe(args.recipe or "bit_fewshot", overrides, check_machine=False)
    elif args.verb == "compare":
        from cifarlab.studies.lockstep import read_study

        read_study(args.study)
    elif args.verb == "tune":
        from cifarlab.tuning.tune_file import read_tune_file

        # The tune file check loads the recipe for this machine; a documented GPU study names its device.
        read_tune_file(args.tune_file, [word for word in overrides if not word.startswith("train.device=cuda")])
    elif args.verb == "study":
        from cifarlab.studies.lockstep import study_path

        load_recipe(study_path(args.recipe), overrides, check_machine=False)
    elif args.verb == "data" and args.action == "augment-grid":
        load_recipe(args.name, overrides, check_machine=False)
