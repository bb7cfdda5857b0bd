"""Generate the documentation pages that must not be copied by hand.

* the recipe reference, from each ``recipes/<name>/run.sh`` (its header comment block, its
  ``name=value  # comment`` option lines, the stages it lists and the options each stage depends on),
  ``cmd.sh``, ``utils/parse_options.sh`` and the ``conf/*.conf`` files;
* the tutorial page, from ``docs/tutorial.ipynb`` (markdown cells as they are, code cells as Python blocks);
* one API page per package, listing its modules for mkdocstrings.

``docs/hooks.py`` calls these at build time (nothing generated is stored in git). Run by hand to see a
page: ``python docs/gen_pages.py recipes > /tmp/recipes.md`` (or ``tutorial``, ``api spkrec.gmm``).
"""
import json
import pkgutil
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
API_PACKAGES = ["features", "gmm", "hmm", "ivector", "backend", "eval", "io", "system", "embeddings", "diarization",
                "spoof"]

_OPTION = re.compile(r"""^([a-z_][a-z0-9_]*)=("[^"]*"|'[^']*'|\([^)]*\)|[^\s#]*)\s*(?:#\s?(.*))?$""")
_CONTINUATION = re.compile(r"^\s+#\s?(.*)$")
_STAGE_OPTS = re.compile(r"""^stage_opts\[(\d+)\]="([^"]*)"$""")


def header_comment(path):
    """The comment block at the top of a shell script (after the ``#!`` line), without the ``# ``."""
    lines = []
    for i, line in enumerate(Path(path).read_text().splitlines()):
        if i == 0 and line.startswith("#!"):
            continue
        if not line.startswith("#"):
            break
        lines.append(re.sub(r"^# ?", "", line))
    return lines


def shell_options(path, stop=r"^\. "):
    """``[(name, default, comment)]`` of the top-level ``name=value  # comment`` lines of a script, up to
    the first line matching ``stop`` (run.sh sources cmd.sh and parse_options.sh there). A comment
    continued on the next lines (indented ``#``) is joined to its option."""
    options = []
    for line in Path(path).read_text().splitlines():
        if re.match(stop, line):
            break
        m = _OPTION.match(line)
        if m:
            name, value, comment = m.groups()
            if len(value) > 1 and value[0] in "\"'" and value[-1] == value[0]:
                value = value[1:-1]
            options.append([name, value, (comment or "").strip()])
            continue
        m = _CONTINUATION.match(line)
        if m and options and not line.lstrip().startswith("#!"):
            options[-1][2] = f"{options[-1][2]} {m.group(1).strip()}".strip()
    return [tuple(o) for o in options]


def stage_options(recipe_dir):
    """``{stage: [option, ...]}``: what each stage's outputs depend on (a rerun with other values redoes
    the stage), from run.sh and the ``utils/stage_options.sh`` it sources."""
    result = {}
    run_sh = (recipe_dir / "run.sh").read_text()
    texts = [run_sh]
    if "utils/stage_options.sh" in run_sh:
        texts.insert(0, (recipe_dir / "utils" / "stage_options.sh").read_text())
    for text in texts:
        for line in text.splitlines():
            m = _STAGE_OPTS.match(line.strip())
            if m:
                result[int(m.group(1))] = m.group(2).split()
    return result


def _stage_list(header):
    """The ``Stages:`` part of a header as ``[(stage, text)]`` (continuation lines joined)."""
    stages, inside = [], False
    for line in header:
        if line.strip() == "Stages:":
            inside = True
            continue
        if not inside:
            continue
        m = re.match(r"^\s{1,3}(\d+(?:-\d+)?)\s+(.*)$", line)
        if m:
            stages.append([m.group(1), m.group(2).strip()])
        elif line.startswith("     ") and stages:
            stages[-1][1] += " " + line.strip()
        else:
            break
    return stages


def _md_escape(text):
    return text.replace("|", "\\|").replace("<", "&lt;")


def _flag(name):
    return "--" + name.replace("_", "-")


def _code(value):
    if value.startswith("(") and value.endswith(")"):  # a bash array, e.g. train=()
        return "(empty list; repeat the option)" if value == "()" else f"`{value}` (a list; repeat it)"
    return f"`{value}`" if value else "(empty)"


def recipe_reference(root=ROOT):
    """The recipe reference page (markdown)."""
    root = Path(root)
    out = ["# Recipe reference", "",
           "Generated from the recipes themselves (`docs/gen_pages.py` reads each `run.sh` header, its",
           "`name=value  # comment` option lines, `cmd.sh`, `utils/parse_options.sh` and `conf/`), so it",
           "says what `recipes/<name>/run.sh --help` says. Every option `name=value` is set on the command",
           "line as `--name value` or `--name=value` (underscores become dashes: `num_gauss` is",
           "`--num-gauss`).", ""]
    parse = root / "recipes" / "utils" / "parse_options.sh"
    out += ["## Options every recipe takes", "", "From `recipes/utils/parse_options.sh`:", "", "```text"]
    out += header_comment(parse)
    out += ["```", ""]
    for recipe in sorted(p.parent for p in (root / "recipes").glob("*/run.sh")):
        name = recipe.name
        header = header_comment(recipe / "run.sh")
        out += [f"## `recipes/{name}`", "", "```text", *header, "```", ""]
        stages = _stage_list(header)
        deps = stage_options(recipe)
        if stages:
            out += ["### Stages", "", "| stage | what it does | reruns when these options change |",
                    "|---|---|---|"]
            for num, text in stages:
                dep = deps.get(int(num), []) if num.isdigit() else []
                dep = ", ".join(f"`{_flag(d)}`" for d in dep)
                out.append(f"| {num} | {_md_escape(text)} | {dep} |")
            out.append("")
        out += ["### Options", "", "| option | default | what it does |", "|---|---|---|"]
        for opt, value, comment in shell_options(recipe / "run.sh"):
            out.append(f"| `{_flag(opt)}` | {_code(_md_escape(value))} | {_md_escape(comment)} |")
        out.append("")
        cmd = recipe / "cmd.sh"
        if cmd.exists():
            out += ["Parallel execution (`cmd.sh`):", "", "```text", *header_comment(cmd), "```", "",
                    "| option | default | what it does |", "|---|---|---|"]
            for opt, value, comment in shell_options(cmd, stop=r"^$^"):
                out.append(f"| `--{opt}` | {_code(value)} | {_md_escape(comment)} |")
            out.append("")
        confs = sorted((recipe / "conf").glob("*.conf"))
        if confs:
            out += ["### Configuration files", ""]
            for conf in confs:
                out += [f"`recipes/{name}/conf/{conf.name}`:", "", "```text", conf.read_text().rstrip(),
                        "```", ""]
    return "\n".join(out).rstrip() + "\n"


def tutorial_markdown(path=ROOT / "docs" / "tutorial.ipynb"):
    """The notebook as a page: markdown cells as they are, code cells as Python blocks (no outputs)."""
    nb = json.loads(Path(path).read_text())
    note = ("This page is the notebook [`docs/tutorial.ipynb`](tutorial.ipynb) (download it and run it "
            "with Jupyter from the repository: `jupyter lab docs/tutorial.ipynb`), shown without its "
            "outputs.")
    out = ["!!! note\n    " + note]
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown":
            if len(out) == 1 and src.lstrip().startswith("# "):   # the title goes above the note
                title, _, rest = src.lstrip().partition("\n")
                out.insert(0, title)
                src = rest
            out.append(src.rstrip())
        elif cell["cell_type"] == "code" and src.strip():
            out.append(f"```python\n{src.rstrip()}\n```")
    return "\n\n".join(out) + "\n"


def api_page(package):
    """An API page for ``spkrec.<package>``: its docstring, then every public module (mkdocstrings)."""
    mod = __import__(f"spkrec.{package}", fromlist=["_"])
    out = [f"# `spkrec.{package}`", "", f"::: spkrec.{package}", "    options:", "      members: false",
           "      show_root_heading: false", ""]
    for info in pkgutil.iter_modules(mod.__path__):
        if info.name.startswith("_"):
            continue
        out += [f"## `spkrec.{package}.{info.name}`", "", f"::: spkrec.{package}.{info.name}", "    options:",
                "      show_root_heading: false", "      heading_level: 3", ""]
    return "\n".join(out)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "recipes"
    if what == "recipes":
        sys.stdout.write(recipe_reference())
    elif what == "tutorial":
        sys.stdout.write(tutorial_markdown())
    elif what == "api":
        sys.stdout.write(api_page(sys.argv[2].removeprefix("spkrec.")))
    else:
        sys.exit("usage: python docs/gen_pages.py recipes|tutorial|api PACKAGE")
