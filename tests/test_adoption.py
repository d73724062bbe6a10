"""A new user's adoption, end to end: README.md's "Use it in your app", command by command.

In a temporary directory outside the checkout: build the wheel and the npm tarball from a copy of the
checkout, install both into a fresh venv and a fresh npm project, install the weights into a temporary
U2NET_HOME, start the README's Express app from another directory, upload a photo over real HTTP (a PNG
back) and a text file (a 4xx), SIGTERM the app and find no worker left. The commands are the README's own
code blocks, with these substitutions only: the checkout's path for /path/to/pyworker, the app's for
/path/to/app, a free port for 3000. So the README and this test cannot drift apart.

pip and npm use their caches (npm with prefer-offline); nothing else is downloaded.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from PIL import Image

from .workerproc import REPO

SECTION = "## Use it in your app"
BASH = ["bash", "-euo", "pipefail", "-c"]


def readme_blocks() -> list[tuple[str, str]]:
    """(language, code) of each fenced block of the README's section, in order."""
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end >= 0 else None]
    return re.findall(r"^```(\w+)\n(.*?)^```$", section, flags=re.S | re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def checkout_copy(dest: Path) -> None:
    """The checkout's files as git sees them (tracked and new, not ignored), without build products."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if src.is_file():  # deleted-but-tracked files are listed too
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run(block: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    t0 = time.monotonic()
    done = subprocess.run([*BASH, block], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    print(f"{time.monotonic() - t0:6.1f} s  {block.strip().splitlines()[-1][:100]}")  # shown with pytest -s
    assert done.returncode == 0, f"$ {block}\nexit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


PLAIN_CHECK = r"""
const assert = require('node:assert/strict');
const pyworker = require('pyworker-cutout');
assert.equal(typeof pyworker.createPool, 'function');
assert.equal(typeof pyworker.removeBackgroundBuffer, 'function');
const said = {};
try {
  pyworker.createQueueClient({ redis: 'redis://127.0.0.1:1', queue: 'photos' });
} catch (err) {
  said.queue = { code: err.code, message: err.message };
}
try {
  pyworker.createBatchRouter({ remover: pyworker.getDefaultPool });
} catch (err) {
  said.batches = { code: err.code, message: err.message };
}
console.log(JSON.stringify(said));
"""


def test_the_pool_alone_pulls_neither_bullmq_nor_fflate(tmp_path: Path) -> None:
    """`npm install pyworker-cutout` alone: no queue or zip packages; asking for those features names the fix."""
    checkout, plain = tmp_path / "pyworker", tmp_path / "plain"
    checkout.mkdir()
    plain.mkdir()
    checkout_copy(checkout)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYWORKER_", "npm_"))}
    env["npm_config_prefer_offline"] = "true"
    (checkout / "dist").mkdir()
    tarball = run("npm pack ./node-shim --pack-destination dist --silent", checkout, env).stdout.strip().splitlines()
    run("npm init -y >/dev/null", plain, env)
    run(f"npm install --no-audit --no-fund {checkout / 'dist' / tarball[-1]}", plain, env)
    modules = {p.name for p in (plain / "node_modules").iterdir()}
    assert "pyworker-cutout" in modules and "@msgpack" in modules
    for absent in ("bullmq", "ioredis", "fflate", "express", "multer"):
        assert absent not in modules, f"{absent} came with the plain install: {sorted(modules)}"
    said = json.loads(run(f"node -e {shlex.quote(PLAIN_CHECK)}", plain, env).stdout)
    assert said["queue"]["code"] == "MODULE_NOT_FOUND"
    assert 'npm install "bullmq@^5' in said["queue"]["message"] and "createQueueClient" in said["queue"]["message"]
    assert said["batches"]["code"] == "MODULE_NOT_FOUND"
    assert 'npm install "fflate@^0' in said["batches"]["message"] and "results.zip" in said["batches"]["message"]
    # The consumer's command says the same in one line, and exits 1.
    bin_cmd = [*BASH, "node_modules/.bin/pyworker-queue-worker --redis redis://127.0.0.1:1 --queue photos"]
    consumer = subprocess.run(bin_cmd, cwd=plain, env=env, capture_output=True, text=True, timeout=60)
    assert consumer.returncode == 1, consumer
    assert consumer.stderr.startswith("pyworker-queue-worker: The queue consumer") and consumer.stderr.count("\n") == 1
    assert 'npm install "bullmq@^5' in consumer.stderr
    # The README's Scale-out command adds it, and the queue client is then made (ioredis: bullmq's own copy);
    # closed with no Redis to reach, it lets node exit (bullmq's events connection used to keep reconnecting).
    readme = (REPO / "README.md").read_text()
    scale_out = readme[readme.index("## Scale-out") :]
    add = re.search(r'`(npm install "bullmq@[^"]+")`', scale_out).group(1)  # type: ignore[union-attr]
    run(f"{add} --no-audit --no-fund", plain, env)
    made = "const q = require('pyworker-cutout').createQueueClient({ redis: 'redis://127.0.0.1:1', queue: 'q' });"
    run(f"node -e {shlex.quote(made + ' q.close().then(() => console.log(q.queueName));')}", plain, env, timeout=60)


def test_readme_section_is_the_example_app() -> None:
    blocks = readme_blocks()
    assert [lang for lang, _ in blocks] == ["sh", "sh", "js", "sh", "sh"], blocks
    example = (REPO / "node-shim" / "examples" / "express-app.js").read_text()
    assert blocks[2][1] == example, "README's Express code and node-shim/examples/express-app.js differ"
    assert len(example.strip().splitlines()) <= 14, "the Express part is meant to be about ten lines"


def test_new_user_installs_both_halves_and_serves_from_any_directory() -> None:
    (build, install, app_js, start, use) = (code for _, code in readme_blocks())
    root = Path(tempfile.mkdtemp(prefix="pyworker-adoption-")).resolve()
    assert not root.is_relative_to(REPO)
    checkout, app, elsewhere = root / "pyworker", root / "app", root / "elsewhere"
    for d in (checkout, app, elsewhere):
        d.mkdir()
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYWORKER_", "npm_")) and k not in ("VIRTUAL_ENV", "PYTHONPATH", "U2NET_HOME")
    }
    # Nothing of the checkout on PATH: the app must find its own worker.
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and str(REPO) not in p)
    env["U2NET_HOME"] = str(root / "u2net")
    env["npm_config_prefer_offline"] = "true"

    def subst(block: str) -> str:
        for placeholder, value in (("/path/to/pyworker", checkout), ("/path/to/app", app), ("3000", port)):
            block = block.replace(placeholder, str(value))
        return block

    server = None
    try:
        # 1. Build both packages in a copy of the checkout (its dev venv, which has `build`, borrowed).
        checkout_copy(checkout)
        (checkout / ".venv").symlink_to(REPO / ".venv")
        run(subst(build), checkout, env)
        built = sorted(p.name for p in (checkout / "dist").iterdir())
        assert len(built) == 2 and all(name in install for name in built), (built, install)

        # 2. An existing app (an npm project), then the README's install commands in it.
        run("npm init -y >/dev/null", app, env)
        run(subst(install), app, env)
        assert (app / ".venv" / "bin" / "pyworker").is_file()
        for model in ("u2netp", "modnet"):  # the default models
            assert (root / "u2net" / f"{model}.onnx").is_file(), "weights go to $U2NET_HOME"
        pkg = json.loads((app / "node_modules" / "pyworker-cutout" / "package.json").read_text())
        assert pkg["name"] == "pyworker-cutout" and not (app / "node_modules" / "pyworker").exists()
        for dep in ("@msgpack/msgpack", "@types/node"):
            assert (app / "node_modules" / dep).is_dir(), f"{dep} is a dependency of pyworker-cutout"
        # The queue's packages are optional peers: the README's app does not ask for them.
        for absent in ("bullmq", "ioredis"):
            assert not (app / "node_modules" / absent).exists(), f"{absent} installed without being asked for"
        assert (app / "node_modules" / "fflate").is_dir()  # asked for: the batch router's zips

        # A missing model names the command that installs it for this venv's Python: `pyworker` itself
        # in the README's activated shell, its full path otherwise.
        for activate, command in (("", app / ".venv" / "bin" / "pyworker"), (". .venv/bin/activate && ", "pyworker")):
            missing = subprocess.run(
                [*BASH, f"{activate}{command} remove --model u2net {REPO / 'samples' / 'coffee.jpg'} out.png"],
                cwd=app,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert missing.returncode == 1, missing.stderr
            assert f"; run: {command} models install u2net\n" in missing.stderr, missing.stderr
        # Only the runtime dependencies: no rembg, pytest, ruff in the app's Python.
        freeze = run(".venv/bin/python -m pip freeze", app, env).stdout.lower()
        for heavy in ("rembg", "pytest", "ruff", "hypothesis", "numba", "opencv"):
            assert heavy not in freeze, f"{heavy} installed by the wheel:\n{freeze}"

        # 3. The README's app, started from another directory.
        (app / "server.js").write_text(app_js)
        server = subprocess.Popen(
            [*BASH, subst(start)], cwd=elsewhere, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        health_url = f"http://127.0.0.1:{port}/api/health"
        deadline = time.monotonic() + 120
        health = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(health_url, timeout=5) as resp:
                    health = json.load(resp)
                if health["status"] == "OK":
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert server.poll() is None, f"the app exited:\n{server.stdout.read() if server.stdout else ''}"
        assert health is not None and health["status"] == "OK", health

        # 4. The README's requests: a photo in, a PNG out; then /api/health.
        shutil.copy(REPO / "samples" / "astronaut.jpg", elsewhere / "photo.jpg")
        done = run(subst(use), elsewhere, env, timeout=180)
        said = done.stdout.splitlines()
        assert said[0] == "200 image/png", done.stdout
        out = (elsewhere / "photo.png").read_bytes()
        assert out[:8] == b"\x89PNG\r\n\x1a\n" and len(out) > 1000
        # The ID photo (strict): compliant, 413 x 531 px, or a 422 whose JSON names the failing checks.
        id_photo = (elsewhere / "id-photo.png").read_bytes()
        if said[1] == "200 image/png":
            with Image.open(io.BytesIO(id_photo)) as img:
                assert img.size == (413, 531), img.size
        else:
            assert said[1].startswith("422 application/json"), done.stdout
            assert json.loads(id_photo)["error"]["code"] == "not_compliant", id_photo
        health = json.loads(said[-1])
        assert health["status"] == "OK" and health["workers"], health
        assert all(w["source"] == "proc" and w["peakRssMb"] >= w["rssMb"] > 0 for w in health["workers"]), health

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:  # the batch page
            assert resp.status == 200 and b"<html" in resp.read().lower()

        # A text file is the caller's mistake: 4xx with a JSON error. The declared type decides nothing
        # (issue 11): the worker reads the bytes and finds no image.
        (elsewhere / "notes.txt").write_text("not a photo\n")
        bad = run(
            f"curl -s -o body.json -w '%{{http_code}}' -F image=@notes.txt "
            f"http://127.0.0.1:{port}/api/remove-background",
            elsewhere,
            env,
        )
        assert 400 <= int(bad.stdout) < 500, bad.stdout
        assert json.loads((elsewhere / "body.json").read_text())["error"]["code"] == "invalid_image"

        # 5. SIGTERM: the app finishes, stops its workers, exits; no Python process of it is left.
        # bash execs its last command, so the server's pid may be node's own.
        shell = psutil.Process(server.pid)
        node = next(p for p in [shell, *shell.children(recursive=True)] if p.name() == "node")
        workers = node.children(recursive=True)
        assert workers and all("python" in p.name() for p in workers), workers
        worker_pids = {p.pid for p in workers}
        assert worker_pids == {w["pid"] for w in health["workers"]}
        node.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        assert server.returncode == 0, server.stdout.read() if server.stdout else ""
        _gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, f"workers left behind: {alive}"
        leftovers = [
            p.pid
            for p in psutil.process_iter(["cmdline"])
            if any(str(app) in part for part in (p.info["cmdline"] or []))
        ]
        assert not leftovers, f"processes of the app still running: {leftovers}"
    finally:
        if server is not None and server.poll() is None:
            for p in psutil.Process(server.pid).children(recursive=True):
                p.kill()
            server.kill()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(pytest.main([__file__, "-v"]))
