"""Fixtures for the SDK conformance suite.

One `vpnmon serve` runs for the whole session on a free loopback port with a
scratch data directory; every test talks to it through the official Huawei
Cloud Python SDK (huaweicloudsdk* 3.1.219).  The SDK writes
~/.huaweicloud/application_id, so HOME points at a scratch directory before
any SDK module is imported.
"""

import json
import os
import queue
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

_SCRATCH = tempfile.mkdtemp(prefix="vpnmon-sdk-")
_HOME = os.path.join(_SCRATCH, "home")
os.makedirs(_HOME)
os.environ["HOME"] = _HOME

from sdkutil import (  # noqa: E402  (after HOME is set)
    ADMIN_PROJECT,
    ADMIN_USER,
    EIP_POOL,
    Factory,
    make_smn_client,
    make_vpn_client,
)

DEFAULT_BIN = "/work/main/target/debug/vpnmon"
START_TIMEOUT = 60.0


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    log_path = os.path.join(_SCRATCH, "server.log")
    if exitstatus != 0 and os.path.exists(log_path):
        with open(log_path, encoding="utf-8", errors="replace") as f:
            tail = f.readlines()[-40:]
        terminalreporter.section("vpnmon serve log (last 40 lines)")
        terminalreporter.write("".join(tail))


def pytest_unconfigure(config):
    shutil.rmtree(_SCRATCH, ignore_errors=True)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_env(extra=None):
    # Drop VPNMON_* settings inherited from the caller (e.g. a database URL
    # that would override --data-dir); the suite passes everything explicitly.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPNMON_")}
    env["HOME"] = _HOME
    if extra:
        env.update(extra)
    return env


class Server:
    """A running `vpnmon serve` plus its admin CLI on the same data dir."""

    def __init__(self, binary, data_dir, endpoint, admin_password, log_path):
        self.binary = binary
        self.data_dir = data_dir
        self.endpoint = endpoint
        self.admin_password = admin_password
        self.log_path = log_path

    def admin(self, *args, stdin=None):
        """Runs `vpnmon admin ARGS --data-dir DIR -o json` and parses its JSON."""
        cmd = [self.binary, "admin", *args, "--data-dir", self.data_dir, "-o", "json"]
        p = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                           env=_child_env(), timeout=60)
        if p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr}{p.stdout}")
        return json.loads(p.stdout)


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("VPNMON_BIN", DEFAULT_BIN)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.exit(f"vpnmon binary not found or not executable: {binary} "
                    f"(set VPNMON_BIN or run `cargo build -p vpnmon`)", returncode=3)
    data_dir = os.path.join(_SCRATCH, "data")
    os.makedirs(data_dir)
    log_path = os.path.join(_SCRATCH, "server.log")
    port = _free_port()
    password = "Sdk-" + secrets.token_hex(6) + "-Aa1"
    cmd = [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir,
           "--eip-pool", EIP_POOL, "--probe-allow", "127.0.0.0/8",
           # Subscription endpoints on loopback (a local receiver).
           "--notify-allow", "127.0.0.0/8",
           # Fast windows so the CES test sees real probe results within seconds.
           "--probe-interval", "2s", "--probe-timeout", "500ms",
           "--metrics-listen", "off"]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                            env=_child_env({"VPNMON_ADMIN_PASSWORD": password}))

    lines = queue.Queue()

    def pump():
        # Keeps draining stdout for the whole run so the server never blocks on it.
        for raw in proc.stdout:
            lines.put(raw.decode("utf-8", "replace"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    endpoint = None
    seen = []
    deadline = time.monotonic() + START_TIMEOUT
    while endpoint is None:
        left = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(left, 0.01))
        except queue.Empty:
            line = None
            left = 0
        if line is None:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()
            with open(log_path, encoding="utf-8", errors="replace") as f:
                err = f.read()[-4000:]
            pytest.exit("vpnmon serve did not report `listening on` "
                        f"(exit={proc.returncode}, timeout={left <= 0}):\n"
                        f"stdout: {''.join(seen)}\nstderr: {err}", returncode=3)
        seen.append(line)
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            endpoint = m.group(1).rstrip("/")

    srv = Server(binary, data_dir, endpoint, password, log_path)
    try:
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture(scope="session")
def admin_cred(server):
    """AK/SK of the bootstrap admin (role in project local-1)."""
    cred = server.admin("credential", "create", "--user", ADMIN_USER)
    assert cred["user"] == ADMIN_USER
    assert re.fullmatch(r"[0-9a-f]{32}", cred["project_id"]), cred
    return cred


@pytest.fixture(scope="session")
def domain_id(server):
    projects = server.admin("project", "list")
    (p,) = [p for p in projects if p["name"] == ADMIN_PROJECT]
    return p["domain_id"]


@pytest.fixture(scope="session")
def other(server):
    """A second project with its own user (no role in local-1) and credential."""
    name = "sdk-other"
    password = "Oth-" + secrets.token_hex(6) + "-Aa1"
    project = server.admin("project", "create", name)
    user = server.admin("user", "create", "bob", "--project", name, "--password-stdin",
                        stdin=password + "\n")
    cred = server.admin("credential", "create", "--user", "bob")
    assert cred["project_id"] == project["id"], (cred, project)
    return {"project": project, "user": user, "cred": cred, "password": password,
            "project_name": name}


@pytest.fixture(scope="session")
def vpn(server, admin_cred):
    """VpnClient of the admin in its own project."""
    return make_vpn_client(server.endpoint, admin_cred["access"], admin_cred["secret"],
                           admin_cred["project_id"])


@pytest.fixture(scope="session")
def other_vpn(server, other):
    """VpnClient of bob in bob's own project."""
    c = other["cred"]
    return make_vpn_client(server.endpoint, c["access"], c["secret"], c["project_id"])


@pytest.fixture(scope="session")
def smn(server, admin_cred):
    """SmnClient of the admin in its own project."""
    return make_smn_client(server.endpoint, admin_cred["access"], admin_cred["secret"],
                           admin_cred["project_id"])


@pytest.fixture(scope="session")
def other_smn(server, other):
    """SmnClient of bob in bob's own project."""
    c = other["cred"]
    return make_smn_client(server.endpoint, c["access"], c["secret"], c["project_id"])


@pytest.fixture(scope="session")
def factory(vpn):
    return Factory(vpn)
