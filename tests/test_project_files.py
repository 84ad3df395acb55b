""".env.example documents the whole configuration, installs are reproducible, and comments cite
only documents that are in the repository."""

import re
import tomllib

from tests.processes import ROOT

SETTINGS = ROOT / "morosos" / "settings.py"
ENV_EXAMPLE = ROOT / ".env.example"
DOMAIN = ROOT / "docs" / "domain.md"
# Where code, templates and tests live (comments, docstrings, template comments).
SOURCE_DIRS = ("accounts", "cobranza", "morosos", "templates", "scripts", "tests", "static/js")
SOURCE_SUFFIXES = {".py", ".html", ".js", ".txt", ".sh"}

# env("X"), env.str("X", ...), env.db_url("X"), os.environ.get("X"), os.environ["X"], os.getenv("X")
_READS = re.compile(
    r"""(?:\benv(?:\.\w+)?\(\s*|os\.environ\.get\(\s*|os\.environ\[\s*|os\.getenv\(\s*)["']([A-Z][A-Z0-9_]*)["']"""
)


def _documented() -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))


def test_every_variable_settings_reads_is_documented_in_env_example():
    read = set(_READS.findall(SETTINGS.read_text()))
    assert {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "MOROSOS_VAR_DIR"} <= read  # the regex works
    missing = sorted(read - _documented())
    assert not missing, f"settings.py reads these but .env.example does not document them: {missing}"


def test_env_example_sets_nothing_and_holds_no_secret():
    """Copying it to .env must not change `make run`, and it must never carry a real secret."""
    assignments = [
        line for line in ENV_EXAMPLE.read_text().splitlines() if re.match(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=", line)
    ]
    assert not assignments, f"uncommented assignments in .env.example: {assignments}"
    for name in ("SECRET_KEY", "POSTGRES_PASSWORD"):
        values = re.findall(rf"^#\s*{name}=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
        assert values == [""], f"{name} should be listed with an empty value"


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            name = re.sub(r"\[.*\]", "", name)
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


def test_constraints_pin_every_direct_dependency_at_its_pyproject_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = _pins([*project["dependencies"], *project["optional-dependencies"]["dev"]])
    locked = _pins((ROOT / "requirements" / "constraints.txt").read_text().splitlines())
    mismatched = {name: (version, locked.get(name)) for name, version in direct.items() if locked.get(name) != version}
    assert not mismatched, f"run `make lock` (pyproject pin, constraints pin): {mismatched}"
    assert "morosos" not in locked


def _sources():
    for top in SOURCE_DIRS:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in SOURCE_SUFFIXES and path.is_file() and "__pycache__" not in path.parts:
                yield path


def _heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces to
    hyphens, a repeated one numbered (``-1``, ``-2``); fenced code is not a heading."""
    anchors: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def test_every_cited_domain_anchor_exists():
    anchors = _heading_anchors(DOMAIN.read_text())
    assert {"late-payers", "dunning-ladders", "contact-rules", "late-fees", "kpis"} <= anchors
    cited = {
        f"{path.relative_to(ROOT)}: #{anchor}"
        for path in [*_sources(), ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
        for anchor in re.findall(r"docs/domain\.md#([\w-]+)", path.read_text())
        if anchor not in anchors
    }
    # The file's own links ([text](#anchor)).
    cited |= {f"docs/domain.md: #{a}" for a in re.findall(r"\]\(#([\w-]+)\)", DOMAIN.read_text()) if a not in anchors}
    assert not cited, f"cited anchors that are not headings of docs/domain.md: {sorted(cited)}"


# Documents that are not in the repository: the domain articles the project started from, its
# design notes, its issue tracker. Cite docs/domain.md (or say the reason in the comment).
_OUTSIDE = re.compile(r"\bseeds? 0\d\d\b|DESIGN(?:\.md)?\s*§|DESIGN\.md|\bissues? #?\d", re.IGNORECASE)


def test_no_comment_cites_a_document_outside_the_repository():
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _sources()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if _OUTSIDE.search(line)
    ]
    assert not found, "\n".join(found)
