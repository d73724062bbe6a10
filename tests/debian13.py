"""`make debian13`: README's "Use it in your app" on a fresh Debian 13 (trixie), as a new user would.

Not part of `make test` (the first run takes minutes). A Debian 13 root is built with debootstrap from
Debian's packages and kept under .cache/debian13/ (gitignored), so reruns start from it; the Debian
packages the README names are installed in it with apt-get; then, inside it as root, with its own Python
and Node: a copy of this checkout, `make setup` there, and every code block of the section in order (the
same substitutions as tests/test_adoption.py: the checkout's path, the app's, a port), the Express app
started from another folder, and the README's requests (a cut-out, an ID photo, /api/health). It prints
what each command answered and exits non-zero when one fails.

Run as root (debootstrap, chroot and mounts need it), in a mount namespace of its own so that the mounts
end with it: `unshare --mount --propagation private python -m tests.debian13` (what `make debian13` does).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
from PIL import Image

from tests.test_adoption import checkout_copy, free_port, readme_blocks
from tests.workerproc import REPO

CACHE = REPO / ".cache" / "debian13"
ROOT = CACHE / "root"
MIRROR = "http://deb.debian.org/debian"
SUITE = "trixie"
# Inside the root: the checkout, the user's app, and a folder the app is started from.
CHECKOUT, APP, ELSEWHERE = Path("/root/pyworker"), Path("/root/app"), Path("/root/elsewhere")
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
ENV = {
    "PIP_CERT": "/etc/ssl/certs/host-ca.crt",
    "NODE_EXTRA_CA_CERTS": "/etc/ssl/certs/host-ca.crt",
    "HOME": "/root",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
}


def say(text: str) -> None:
    print(f"[debian13 {time.strftime('%H:%M:%S')}] {text}", flush=True)


def base_root() -> None:
    """A minimal Debian 13 root, built once (debootstrap's .debs are cached beside it)."""
    if (ROOT / "etc" / "debian_version").is_file():
        return
    part = CACHE / "root.part"
    shutil.rmtree(part, ignore_errors=True)
    (CACHE / "debs").mkdir(parents=True, exist_ok=True)
    say(f"debootstrap --variant=minbase {SUITE} from {MIRROR} (once; a few minutes)")
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--cache-dir={CACHE / 'debs'}", SUITE, str(part), MIRROR], check=True
    )
    part.rename(ROOT)


def mount_system() -> None:
    """/proc, /dev and /sys inside the root, private to this process's mount namespace."""
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    for fs, target, args in (
        ("proc", "proc", ["-t", "proc", "proc"]),
        ("dev", "dev", ["--rbind", "/dev"]),
        ("sys", "sys", ["--rbind", "/sys"]),
    ):
        subprocess.run(["mount", *args, str(ROOT / target)], check=True)
        say(f"mounted {fs}")
    shutil.copy("/etc/resolv.conf", ROOT / "etc" / "resolv.conf")
    # The host's trust store, for networks whose TLS goes through a proxy with a CA of its own (this machine's
    # does): pip's and Node's bundled roots would refuse it. On an ordinary network it changes nothing.
    shutil.copy(HOST_CA, ROOT / "etc" / "ssl" / "certs" / "host-ca.crt")


def inside(script: str, cwd: Path = Path("/root"), timeout: float = 1800, check: bool = True) -> str:
    """Run a bash script in the root (its own Python, Node, PATH); print and return its output."""
    done = subprocess.run(
        ["chroot", str(ROOT), "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in ENV.items()), "bash", "-euo", "pipefail"],
        input=f"cd {cwd}\n{script}\n",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = (done.stdout + done.stderr).rstrip()
    for line in out.splitlines()[-40:]:
        print(f"    {line}")
    if check and done.returncode != 0:
        raise SystemExit(f"failed (exit {done.returncode}): {script.strip().splitlines()[-1]}")
    return done.stdout


def readme_apt_line() -> str:
    """The Debian packages the README names for a fresh host."""
    text = (REPO / "README.md").read_text()
    found = re.search(r"`(apt-get install [a-z0-9 .+-]+)`", text[text.index("## Use it in your app") :])
    if found is None:
        raise SystemExit("README's 'Use it in your app' names no `apt-get install ...` line")
    return found.group(1)


def main() -> int:
    if os.geteuid() != 0:
        raise SystemExit("run as root (debootstrap, chroot, mount)")
    base_root()
    mount_system()
    say("the host's packages, as README names them")
    inside(f"apt-get update -qq && {readme_apt_line()} -y -qq >/dev/null && echo installed")
    inside(
        'echo "Debian $(cat /etc/debian_version), $(python3 --version), node $(node --version), npm $(npm --version)"'
    )

    (build, install, app_js, start, use) = (code for _, code in readme_blocks())
    port = free_port()

    def subst(block: str) -> str:
        for placeholder, value in (("/path/to/pyworker", CHECKOUT), ("/path/to/app", APP), ("3000", port)):
            block = block.replace(placeholder, str(value))
        return block

    say("a checkout, then `make setup` in it (README: build both once, in a checkout, after make setup)")
    checkout = ROOT / str(CHECKOUT).lstrip("/")
    checkout.mkdir(parents=True, exist_ok=True)
    checkout_copy(checkout)
    shutil.rmtree(checkout / "dist", ignore_errors=True)
    inside("make setup 2>&1 | tail -5", cwd=CHECKOUT)
    say("README block 1: build the wheel and the npm tarball")
    inside(subst(build), cwd=CHECKOUT)

    say("README block 2: the app's Python environment, both packages, the weights")
    app = ROOT / str(APP).lstrip("/")
    shutil.rmtree(app, ignore_errors=True)  # the app is new each run; the pip and npm caches stay
    app.mkdir(parents=True)
    (ROOT / str(ELSEWHERE).lstrip("/")).mkdir(parents=True, exist_ok=True)
    inside("npm init -y >/dev/null", cwd=APP)
    inside(subst(install), cwd=APP)
    inside("du -sh .venv; .venv/bin/python -m pip list --format=freeze", cwd=APP)

    say("README block 3: server.js")
    (app / "server.js").write_text(app_js)
    say("README block 4: start it from another folder")
    started = subprocess.Popen(
        ["chroot", str(ROOT), "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in ENV.items()), "bash", "-euo", "pipefail"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert started.stdin is not None
    started.stdin.write(f"cd {ELSEWHERE}\n{subst(start)}\n")
    started.stdin.close()
    started.stdin = None  # closed: communicate() below must not flush it
    try:
        health = None
        for _ in range(240):
            done = subprocess.run(
                ["curl", "-s", f"http://127.0.0.1:{port}/api/health"], capture_output=True, text=True, timeout=10
            )
            if done.returncode == 0 and done.stdout:
                health = json.loads(done.stdout)
                if health["status"] != "STARTING":
                    break
            if started.poll() is not None:
                break
            time.sleep(0.5)
        say(f"health once started: {health and health['status']} {health and health.get('reasons')}")
        say("README block 5: the requests (a cut-out, an ID photo, /api/health)")
        shutil.copy(REPO / "samples" / "astronaut.jpg", ROOT / str(ELSEWHERE).lstrip("/") / "photo.jpg")
        inside(subst(use), cwd=ELSEWHERE, check=False)
        for result in sorted((ROOT / str(ELSEWHERE).lstrip("/")).glob("*.png")):
            data = result.read_bytes()
            if data[:8] == b"\x89PNG\r\n\x1a\n":
                with Image.open(result) as img:
                    say(f"{result.name}: PNG {img.size[0]}x{img.size[1]} {img.mode}, {len(data)} bytes")
            else:
                say(f"{result.name}: not a PNG: {data[:400]!r}")
    finally:
        # SIGTERM to the app's node (the README's app then stops its workers), as an operator would.
        family = psutil.Process(started.pid).children(recursive=True)
        for proc in family:
            if proc.name() == "node":
                proc.terminate()
        try:
            out, _ = started.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            for proc in family:
                proc.kill()
            started.kill()
            out, _ = started.communicate()
        say(f"the app exited {started.returncode}")
        say("the app's own output:")
        for line in (out or "").splitlines()[-30:]:
            print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
