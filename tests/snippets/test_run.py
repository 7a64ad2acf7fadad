"""The snippet runner (run.py): what it runs, checks and skips, and that a broken or
unmarked block fails it. Run by `make test-dist` (python3 -m unittest)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

RUNNER = Path(__file__).resolve().with_name("run.py")


def run(markdown: str, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as d:
        md = Path(d) / "DOC.md"
        md.write_text(textwrap.dedent(markdown))
        return subprocess.run(
            [sys.executable, str(RUNNER), *args, str(md)],
            capture_output=True, text=True, timeout=60,
        )


def statuses(out: str) -> list[str]:
    """The status of each block, in document order, from lines `path:line: lang: status...`."""
    result = []
    for line in out.splitlines():
        parts = line.split(": ")
        if len(parts) >= 3 and parts[0].endswith(tuple("0123456789")):
            result.append(parts[2].split(" ")[0])
    return result


class SnippetRunner(unittest.TestCase):
    def test_blocks_run_in_order_in_one_work_directory(self) -> None:
        r = run(
            """
            Write a file, then read it from Python and from a shell block.

            ```sh
            echo hello > greeting.txt
            ```

            <!-- snippet: file data.json -->
            ```json
            {"answer": 42}
            ```

            ```python
            import json, pathlib
            assert pathlib.Path("greeting.txt").read_text() == "hello\\n"
            assert json.loads(pathlib.Path("data.json").read_text()) == {"answer": 42}
            ```

            ```json
            [1, 2, 3]
            ```

            ```text
            not code: never run
            ```
            """
        )
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(statuses(r.stdout), ["ran", "written", "ran", "checked", "skipped"])

    def test_a_failing_block_fails_the_run_and_shows_its_output(self) -> None:
        r = run(
            """
            ```python
            print("about to fail")
            raise SystemExit(3)
            ```

            ```sh
            true
            ```
            """
        )
        self.assertEqual(r.returncode, 1)
        self.assertEqual(statuses(r.stdout), ["FAILED", "ran"])
        self.assertIn("about to fail", r.stdout)
        self.assertIn("python exited with 3", r.stdout)

    def test_invalid_json_fails(self) -> None:
        r = run(
            """
            ```json
            state: {"a": 1}
            ```
            """
        )
        self.assertEqual(r.returncode, 1)
        self.assertIn("not JSON", r.stdout)

    def test_an_unmarked_block_it_cannot_run_fails(self) -> None:
        for block in ("```toml\nx = 1\n```\n", "```\nno language\n```\n", "```cpp\nint main() {}\n```\n"):
            with self.subTest(block=block.splitlines()[0]):
                r = run(block)
                self.assertEqual(r.returncode, 1, r.stdout)
                self.assertEqual(statuses(r.stdout), ["UNMARKED"])

    def test_marked_blocks_are_skipped_and_a_skip_needs_a_reason(self) -> None:
        r = run(
            """
            <!-- snippet: skip needs a redis-server -->

            ```toml
            x = 1
            ```

            ```python norun
            raise SystemExit(1)
            ```
            """
        )
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(statuses(r.stdout), ["skipped", "skipped"])
        self.assertIn("needs a redis-server", r.stdout)
        r = run("<!-- snippet: skip -->\n```python\nraise SystemExit(1)\n```\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("needs a reason", r.stdout)
        r = run("<!-- snippet: maybe -->\n```python\npass\n```\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown mark", r.stdout)

    def test_a_server_block_must_print_listening(self) -> None:
        ok = run(
            """
            <!-- snippet: server -->
            ```python
            import os, time
            print(f"listening on {os.environ['PORT']}", flush=True)
            time.sleep(60)
            ```
            """
        )
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        self.assertIn("server, listening", ok.stdout)
        silent = run("<!-- snippet: server -->\n```python\nprint('started')\n```\n")
        self.assertEqual(silent.returncode, 1)
        self.assertIn("never printed `listening`", silent.stdout)

    def test_list_classifies_without_running(self) -> None:
        r = run("```python\nraise SystemExit(1)\n```\n\n```yaml\na: 1\n```\n", "--list")
        self.assertEqual(r.returncode, 1)
        self.assertIn("python: run", r.stdout)
        self.assertIn("UNMARKED", r.stdout)


if __name__ == "__main__":
    unittest.main()
