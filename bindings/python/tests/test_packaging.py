"""The package as installed: where it is imported from, what it ships, and that the wheel
works in a fresh virtualenv from outside the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
from importlib import metadata
from pathlib import Path

import pytest

import presence_engine
import presence_engine._native

SOURCE_TREE = Path(__file__).resolve().parents[1]  # bindings/python
PACKAGE_DIR = Path(presence_engine.__file__).resolve().parent
WHEEL = os.environ.get("PRESENCE_ENGINE_WHEEL")


def test_imported_from_the_installation_not_the_source_tree() -> None:
    assert not PACKAGE_DIR.is_relative_to(SOURCE_TREE), PACKAGE_DIR
    assert PACKAGE_DIR.is_relative_to(Path(sys.prefix).resolve())
    assert Path(presence_engine._native.__file__).resolve().parent == PACKAGE_DIR


def test_ships_stubs_and_an_abi3_module() -> None:
    for name in ("py.typed", "__init__.pyi", "_native.pyi", "__init__.py"):
        assert (PACKAGE_DIR / name).is_file(), name
    assert Path(presence_engine._native.__file__).name == "_native.abi3.so"
    dist = metadata.distribution("presence_engine")
    assert dist.version == presence_engine.__version__
    assert dist.metadata["Requires-Python"] == ">=3.10"
    files = {str(f) for f in dist.files or []}
    assert "presence_engine/py.typed" in files


def test_stubs_cover_the_runtime() -> None:
    # Every public runtime name is in the stubs (mypy's stubtest checks signatures too, in
    # make test-python).
    import ast

    stub = ast.parse((PACKAGE_DIR / "_native.pyi").read_text())
    declared = {n.name for n in stub.body if isinstance(n, ast.ClassDef)}
    declared |= {
        t.id for n in stub.body if isinstance(n, ast.AnnAssign) for t in [n.target] if isinstance(t, ast.Name)
    }
    public = {n for n in dir(presence_engine._native) if not n.startswith("_")} | {"__version__"}
    assert public <= declared | {"__version__"}, public - declared
    engine_stub = next(n for n in stub.body if isinstance(n, ast.ClassDef) and n.name == "Engine")
    stub_methods = {n.name for n in engine_stub.body if isinstance(n, ast.FunctionDef)}
    runtime = {n for n in dir(presence_engine._native.Engine) if not n.startswith("_")}
    assert runtime <= stub_methods, runtime - stub_methods


def test_the_module_exports_no_symbol_of_the_c_library() -> None:
    # The extension links the core crate alone; the C library's presence_* functions
    # belong to libpresence, and a copy exported here would be a second, unused C ABI.
    out = subprocess.run(
        ["nm", "-D", "--defined-only", presence_engine._native.__file__],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    exported = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert "PyInit__native" in exported, exported
    assert [name for name in exported if name.startswith("presence_")] == []


@pytest.mark.skipif(not WHEEL, reason="set PRESENCE_ENGINE_WHEEL to the wheel (make test-python does)")
def test_wheel_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    assert WHEEL is not None
    wheel = Path(WHEEL).resolve()
    assert "-cp310-abi3-" in wheel.name, wheel.name
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, clear=True)
    python = env_dir / "bin" / "python"
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", str(wheel)],
        check=True,
        env=clean_env,
        timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = textwrap.dedent(
        f"""
        import asyncio, pathlib, sys
        import presence_engine as pe
        here = pathlib.Path(pe.__file__).resolve()
        assert here.is_relative_to(pathlib.Path(sys.prefix).resolve()), here
        assert not here.is_relative_to(pathlib.Path({str(SOURCE_TREE)!r})), here
        e = pe.Engine(format="phoenix")
        e.track("room", 1, "alice", {{"hi": 1}})
        async def main():
            async for batch in e.diffs():
                return batch
        [d] = asyncio.run(main())
        assert d["payload"]["joins"]["alice"]["metas"][0]["hi"] == 1
        assert e.counts("room") == pe.Counts(0, 1, 1)
        e.close()
        print("ok", pe.__version__)
        """
    )
    out = subprocess.run(
        [python, "-I", "-c", script], cwd=elsewhere, env=clean_env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"ok {presence_engine.__version__}"
