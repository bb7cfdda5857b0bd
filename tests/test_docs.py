"""The documentation site builds with warnings as errors, and its generated pages say what the sources say."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))
import gen_pages  # noqa: E402

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")


def test_site_builds_strict(tmp_path):
    """`mkdocs build --strict`: a broken link, a missing page, a bad include or a docstring mkdocstrings
    cannot render fails the build."""
    site = tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
           "-d", str(site)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for page in ["index.html", "getting-started/index.html", "tutorial/index.html", "backends/index.html",
                 "recipe-reference/index.html", "formats/index.html", "api/gmm/index.html",
                 "speed/index.html",
                 "scale/index.html"]:
        assert (site / page).is_file(), page
    # the README's results table reaches the pages that include it, and the API pages hold the docstrings
    readme = (ROOT / "README.md").read_text()
    first_row = re.search(r"^\| gmm_ubm \|.*$", readme.split("<!-- mini-results -->")[1], re.M).group(0)
    eer = first_row.split("|")[2].strip()
    backends = (site / "backends/index.html").read_text()
    assert "<!-- include" not in backends
    assert re.search(rf"<td[^>]*>{re.escape(eer)}</td>", backends), eer
    assert "Diagonal-covariance Gaussian mixture" in (site / "api/gmm/index.html").read_text()
    assert (site / "tutorial.ipynb").is_file()


def test_docs_stay_inside_the_repository():
    """No page or the README points outside the repository (e.g. ../shared/)."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for m in re.finditer(r"\.\./[\w./-]+", text):
            target = (path.parent / m.group(0)).resolve()
            assert ROOT in target.parents or target == ROOT, f"{path.name}: {m.group(0)} leaves the repo"


def _options_by_hand(run_sh):
    """An independent reading of run.sh's options: run `bash` on its option lines and list the variables."""
    lines = []
    for line in run_sh.read_text().splitlines():
        if line.startswith(". "):
            break
        if re.match(r"^[a-z_][a-z0-9_]*=", line):
            lines.append(line)
    script = "\n".join(lines) + '\nfor v in ' + " ".join(l.split("=")[0] for l in lines) + \
        '; do if declare -p "$v" 2>/dev/null | grep -q "^declare -a"; then echo "$v=(list)"; ' \
        'else printf "%s=%s\\n" "$v" "${!v}"; fi; done\n'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    computed = {line.split("=")[0] for line in lines if "$" in line}  # e.g. here=$(pwd): shown as written
    return {k: v for k, v in (line.split("=", 1) for line in out.splitlines())}, computed


@pytest.mark.parametrize("recipe", sorted(p.parent.name for p in (ROOT / "recipes").glob("*/run.sh")))
def test_recipe_reference_lists_every_option_and_stage(recipe):
    """Every option of run.sh, with the value bash gives it, and every stage its header lists, are in
    the generated recipe reference (and `run.sh --help` names the same options)."""
    run_sh = ROOT / "recipes" / recipe / "run.sh"
    page = gen_pages.recipe_reference()
    section = page.split(f"## `recipes/{recipe}`")[1].split("\n## `recipes/")[0]
    options, computed = _options_by_hand(run_sh)
    assert options
    for name, value in options.items():
        row = re.search(rf"^\| `--{name.replace('_', '-')}` \| ([^|]*) \|", section, re.M)
        assert row, f"--{name} missing from the reference of recipes/{recipe}"
        shown = row.group(1).strip()
        if name in computed:
            continue
        expected = ("(empty list; repeat the option)" if value == "(list)" else f"`{value}`" if value
                    else "(empty)")
        assert shown == expected, (name, value, shown)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    help_text = subprocess.run(["bash", str(run_sh), "--help"], capture_output=True, text=True, env=env).stdout
    for name in options:
        assert f"--{name.replace('_', '-')} " in help_text + " ", name
    table = section.split("### Stages")[1].split("### Options")[0]
    stages = re.findall(r"^\|\s*(\d+(?:-\d+)?)\s*\|", table, re.M)
    header = run_sh.read_text().split("Stages:")[1].split("\nset ")[0]
    assert stages == re.findall(r"^#\s{1,3}(\d+(?:-\d+)?)\s", header, re.M)


def test_readme_links_exist():
    """Every relative link of the README front page points to a file of the repository."""
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    assert links
    for link in links:
        if not link.startswith(("http://", "https://")):
            assert (ROOT / link).exists(), f"README.md links to {link}, which does not exist"
