#!/usr/bin/env python3
"""Runs the code blocks of Markdown files, so that a README whose example stopped working
fails a test.

Every fenced block is either run, checked, or explicitly marked as not runnable; a block
that is none of these fails the run ("unmarked"), so a new example cannot slip in untested.

By the fence's language:
  python, py          run with .venv/bin/python of the file's work directory when an
                      earlier sh block of the file made one, else with $SNIPPET_PYTHON
                      (default: this interpreter)
  js, cjs / mjs       written to a .cjs / .mjs file and run with node, in the file's work
                      directory when it has node_modules (an earlier sh block ran npm
                      install), else in $SNIPPET_NODE_PROJECT
  c                   compiled against the installed C SDK (pkg-config presence, from
                      $PKG_CONFIG_PATH), with -Wall -Wextra -Werror, and run
  sh, bash, shell     run with bash -euo pipefail
  json                parsed
  text, console, output
                      never run: the fence says the block is not code
Anything else fails unless marked.

Marks, on the line before the fence (blank lines between are allowed):
  <!-- snippet: skip REASON -->   not run; the reason is required and printed
  <!-- snippet: file NAME -->     written to NAME in the work directory, not run; a later
                                  block (e.g. the sh block that compiles it) uses it
  <!-- snippet: server -->        a server: run with PORT=0 until it prints "listening",
                                  then stopped
The fence's info string may also carry `norun` (```python norun) for a block that is
not meant to run.

Each file gets its own work directory (under --work, kept for inspection, else a
temporary one), where its blocks run in document order; `dist` there links to $DIST_DIR
when that is set, so install commands such as `pip install dist/...whl` run as written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RUNNABLE = {
    "python": "python",
    "py": "python",
    "js": "cjs",
    "javascript": "cjs",
    "cjs": "cjs",
    "mjs": "mjs",
    "c": "c",
    "sh": "sh",
    "bash": "sh",
    "shell": "sh",
    "json": "json",
}
NOT_CODE = {"text", "txt", "console", "output"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
MARK = re.compile(r"^\s*<!--\s*snippet:\s*(?P<body>.*?)\s*-->\s*$")
TIMEOUT_S = 180


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    flags: list[str]
    code: str
    mark: str | None  # the text after "snippet:", if any

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass
class Outcome:
    block: Block
    status: str  # ran | checked | skipped | written | FAILED | UNMARKED
    detail: str = ""
    seconds: float = 0.0
    output: str = field(default="", repr=False)


def parse(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m["indent"], m["fence"], m["info"].strip()
        words = info.split()
        lang = words[0].lower() if words else ""
        mark = None
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and (mm := MARK.match(lines[j])):
            mark = mm["body"]
        body: list[str] = []
        k = i + 1
        closing = re.compile(r"^[ \t]*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$")
        while k < len(lines) and not closing.match(lines[k]):
            line = lines[k]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            k += 1
        if k == len(lines):
            raise SystemExit(f"{path}:{i + 1}: unclosed code fence")
        blocks.append(Block(path, i + 1, lang, words[1:], "\n".join(body) + "\n", mark))
        i = k + 1
    return blocks


def classify(b: Block) -> tuple[str, str]:
    """(action, detail): action is run/check/skip/file/server/unmarked."""
    if b.mark is not None:
        verb, _, rest = b.mark.partition(" ")
        if verb == "skip":
            if not rest.strip():
                return "unmarked", "`snippet: skip` needs a reason"
            return "skip", rest.strip()
        if verb == "file":
            if not rest.strip() or "/" in rest.strip():
                return "unmarked", "`snippet: file` needs a plain file name"
            return "file", rest.strip()
        if verb == "server":
            if RUNNABLE.get(b.lang) not in ("cjs", "mjs", "python"):
                return "unmarked", f"`snippet: server` is for js/mjs/python blocks, not {b.lang or 'an untagged block'}"
            return "server", ""
        return "unmarked", f"unknown mark `snippet: {b.mark}`"
    if "norun" in b.flags:
        return "skip", "norun"
    if b.lang in NOT_CODE:
        return "skip", f"{b.lang}: not code"
    kind = RUNNABLE.get(b.lang)
    if kind is None:
        what = f"language `{b.lang}`" if b.lang else "no language"
        return "unmarked", f"{what}: cannot run it; mark it (see tests/snippets/run.py)"
    return ("check" if kind == "json" else "run"), kind


class Runner:
    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work = work
        self.env = env
        self.counter = 0

    def python(self) -> str:
        venv = self.work / ".venv" / "bin" / "python"
        return str(venv) if venv.exists() else self.env.get("SNIPPET_PYTHON", sys.executable)

    def node_dir(self) -> Path:
        if (self.work / "node_modules").is_dir():
            return self.work
        project = self.env.get("SNIPPET_NODE_PROJECT")
        return Path(project) if project else self.work

    def command(self, b: Block, kind: str) -> tuple[list[str], Path]:
        self.counter += 1
        stem = f"snippet-{self.counter}-line{b.line}"
        if kind == "python":
            f = self.work / f"{stem}.py"
            f.write_text(b.code)
            return [self.python(), str(f)], self.work
        if kind in ("cjs", "mjs"):
            d = self.node_dir()
            f = d / f"{stem}.{kind}"
            f.write_text(b.code)
            return [self.env.get("NODE", "node"), str(f)], d
        if kind == "sh":
            f = self.work / f"{stem}.sh"
            f.write_text(b.code)
            return ["bash", "-euo", "pipefail", str(f)], self.work
        if kind == "c":
            src = self.work / f"{stem}.c"
            src.write_text(b.code)
            exe = self.work / stem
            script = (
                'set -euo pipefail\nlibdir=$(pkg-config --variable=libdir presence)\n'
                f'cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags presence) "{src}" '
                f'$(pkg-config --libs presence) -Wl,-rpath,"$libdir" -o "{exe}"\n"{exe}"\n'
            )
            return ["bash", "-c", script], self.work
        raise AssertionError(kind)

    def run(self, b: Block) -> Outcome:
        action, detail = classify(b)
        if action == "unmarked":
            return Outcome(b, "UNMARKED", detail)
        if action == "skip":
            return Outcome(b, "skipped", detail)
        if action == "file":
            (self.work / detail).write_text(b.code)
            return Outcome(b, "written", detail)
        if action == "check":
            try:
                json.loads(b.code)
            except json.JSONDecodeError as e:
                return Outcome(b, "FAILED", f"not JSON: {e} (fence it as text if it is not meant to be)")
            return Outcome(b, "checked", "json")
        kind = RUNNABLE[b.lang] if action == "server" else detail
        cmd, cwd = self.command(b, kind)
        start = time.monotonic()
        if action == "server":
            return self.serve(b, cmd, cwd, start)
        try:
            r = subprocess.run(
                cmd, cwd=cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as e:
            out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
            return Outcome(b, "FAILED", f"still running after {TIMEOUT_S} s", time.monotonic() - start, out)
        took = time.monotonic() - start
        if r.returncode != 0:
            return Outcome(b, "FAILED", f"{kind} exited with {r.returncode}", took, r.stdout)
        return Outcome(b, "ran", kind, took, r.stdout)

    def serve(self, b: Block, cmd: list[str], cwd: Path, start: float) -> Outcome:
        env = dict(self.env, PORT="0")
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out: list[str] = []
        try:
            deadline = time.monotonic() + 60
            assert p.stdout is not None
            while time.monotonic() < deadline:
                line = p.stdout.readline()
                if not line:
                    break
                out.append(line)
                if "listening" in line:
                    return Outcome(b, "ran", "server, listening", time.monotonic() - start, "".join(out))
            return Outcome(b, "FAILED", "the server never printed `listening`", time.monotonic() - start, "".join(out))
        finally:
            p.kill()
            p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--list", action="store_true", help="only classify the blocks (fails on unmarked ones)")
    ap.add_argument("--work", type=Path, help="keep each file's work directory under this directory")
    args = ap.parse_args()

    env = dict(os.environ)
    outcomes: list[Outcome] = []
    for path in args.files:
        blocks = parse(path)
        if args.list:
            for b in blocks:
                action, detail = classify(b)
                status = "UNMARKED" if action == "unmarked" else action
                outcomes.append(Outcome(b, status, detail))
            continue
        if args.work:
            work = args.work / str(path).strip("/").replace("/", "_")
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
        else:
            work = Path(tempfile.mkdtemp(prefix="snippets-"))
        if env.get("DIST_DIR"):
            (work / "dist").symlink_to(Path(env["DIST_DIR"]).resolve())
        runner = Runner(work.resolve(), env)
        try:
            for b in blocks:
                o = runner.run(b)
                outcomes.append(o)
                took = f" ({o.seconds:.1f} s)" if o.seconds else ""
                print(f"{b.where}: {b.lang or '-'}: {o.status}{took}" + (f": {o.detail}" if o.detail else ""), flush=True)
                if o.status == "FAILED":
                    print("".join(f"    | {line}\n" for line in o.output.splitlines()[-40:]), end="", flush=True)
        finally:
            if not args.work:
                shutil.rmtree(work, ignore_errors=True)

    if args.list:
        for o in outcomes:
            print(f"{o.block.where}: {o.block.lang or '-'}: {o.status}" + (f": {o.detail}" if o.detail else ""))
    bad = [o for o in outcomes if o.status in ("FAILED", "UNMARKED")]
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    print("snippets: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for o in bad:
        print(f"{o.block.where}: {o.status}: {o.detail}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
