#!/usr/bin/env python3
"""Local service stack for Tributary: Apache Kafka (KRaft), PostgreSQL and Redis.

There is no Docker engine on the dev/CI machines, so every service runs as a plain local
process whose state lives in the git-ignored ``<repo>/.stack/`` folder:

    python stack/stackctl.py fetch                 # Kafka jars only (Maven Central -> cache)
    python stack/stackctl.py start [--only kafka]  # idempotent; returns once all are ready
    python stack/stackctl.py status                # running / stopped / external + address
    python stack/stackctl.py stop [--only redis]   # stops exactly what `start` started
    python stack/stackctl.py tools                 # promtool (checks the alert rules)

Only the standard library is required. ``confluent_kafka``, ``redis`` and ``asyncpg`` are
used for the readiness probes when importable (the project virtualenv has them); otherwise
stdlib probes (raw Kafka protocol, psql, raw RESP) are used.

Environment:
    TRIBUTARY_STACK_KAFKA_PORT (9092), TRIBUTARY_STACK_KAFKA_CONTROLLER_PORT (9093),
    TRIBUTARY_STACK_KAFKA_SASL_PORT (9094, a SASL/SCRAM listener),
    TRIBUTARY_STACK_POSTGRES_PORT (55432), TRIBUTARY_STACK_REDIS_PORT (56379)
    TRIBUTARY_STACK_SHARED_DIR (/var/lib/tributary-stack): as root, where PostgreSQL's files go
        when the `postgres` user cannot reach the clone (a clone in a 0700 home directory);
        one folder per clone, keyed by its path, and `.stack/postgres` links to it.
    TRIBUTARY_KAFKA_BOOTSTRAP / TRIBUTARY_DATABASE_URL / TRIBUTARY_REDIS_URL: when set, that
        service is external: it is only probed, never started or stopped.
    KAFKA_HOME: use the jars of an official Kafka distribution instead of the Maven ones.
    JAVA_HOME: java to run the broker with (default: `java` on PATH, 17+ for Kafka 4).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

STACK_DIR = Path(__file__).resolve().parent
REPO_DIR = STACK_DIR.parent
# Resolved, so that a `.stack` linked elsewhere (another disk, a worktree sharing one stack) is
# recognised in the command lines of the servers it started.
STATE_DIR = (REPO_DIR / ".stack").resolve()
CACHE_DIR = STATE_DIR / "cache"
KAFKA_POM = STACK_DIR / "kafka" / "pom.xml"
KAFKA_LOG4J = STACK_DIR / "kafka" / "log4j2.xml"

HOST = "127.0.0.1"
SERVICES = ("kafka", "postgres", "redis")
POLL_S = 0.25
KAFKA_DEADLINE_S = 90.0
DEFAULT_DEADLINE_S = 30.0
STOP_DEADLINE_S = 60.0
LOG_TAIL_LINES = 20
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
PG_OS_USER = "postgres"  # Debian's service account; PostgreSQL refuses to run as root.
SHARED_DIR_DEFAULT = "/var/lib/tributary-stack"
# Dev-only credentials, the same on every machine; TRIBUTARY_DATABASE_URL overrides them all.
DB_NAME = DB_USER = DB_PASSWORD = "tributary"  # noqa: S105
# Idempotent bootstrap of the app's role and database (psql: \gexec runs the generated DDL).
BOOTSTRAP_SQL = """
DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tributary') THEN
    CREATE ROLE tributary LOGIN CREATEDB PASSWORD 'tributary';
  END IF;
END$$;
SELECT 'CREATE DATABASE tributary OWNER tributary'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'tributary')\\gexec
"""


class StackError(Exception):
    """A failure the user can act on; printed without a traceback."""


# --------------------------------------------------------------------------- helpers


def say(message: str) -> None:
    """Print a progress line immediately (output is often piped through make)."""
    print(message, flush=True)


def env_port(name: str, default: int) -> int:
    """Read a port from the environment so parallel checkouts can avoid collisions."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise StackError(f"{name}={raw!r} is not a valid TCP port")
    return int(raw)


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Last lines of a log, so a failure message shows the cause without opening files."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:])


def not_ready(name: str, why: str, log: Path) -> StackError:
    """Build the standard failure message: service, reason, log path and log tail."""
    return StackError(f"{name}: {why}; log: {log}\n--- last lines of {log} ---\n{tail(log)}")


def rotate_log(log: Path) -> None:
    """Keep the previous run's log as <log>.1 so each start has a short, relevant log."""
    if log.exists():
        log.replace(log.with_name(log.name + ".1"))


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_ports_free(name: str, ports: list[int]) -> None:
    """Refuse to start when a foreign process already owns our port (we would not own it)."""
    busy = [p for p in ports if port_open(HOST, p)]
    if busy:
        where = ", ".join(f"{HOST}:{p}" for p in busy)
        raise StackError(
            f"{name}: {where} is already in use by a process this stack did not start; "
            f"stop it or choose other ports (TRIBUTARY_STACK_{name.upper()}_PORT)"
        )


def wait_until(
    check: Callable[[], bool], timeout: float, alive: Callable[[], bool] | None = None
) -> bool:
    """Poll `check` until it passes (True) or the deadline/process death is hit (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if alive is not None and not alive():
            return check()  # one last look: the process may have daemonized meanwhile
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def read_pid(path: Path) -> int | None:
    """First integer in a pid file (also fits postmaster.pid), or None if absent/garbled."""
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def pid_alive(pid: int) -> bool:
    """True if the pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user (e.g. postgres when we are not root)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def pid_matches(pid: int, *needles: str) -> bool:
    """Guard against pid reuse: the live process's command line must contain all needles."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return True  # no procfs: cannot verify, trust the pid file
    return all(n in cmdline for n in needles)


def owned_pid(pid_file: Path, *needles: str) -> int | None:
    """Pid from our pid file if that process is still ours; drop stale pid files."""
    pid = read_pid(pid_file)
    if pid is not None and pid_matches(pid, *needles):
        return pid
    if pid is not None and pid_file.name != "postmaster.pid":  # postgres cleans up its own
        pid_file.unlink(missing_ok=True)  # (an empty/garbled file may be mid-write: keep it)
    return None


def terminate(name: str, pid: int, timeout: float = STOP_DEADLINE_S) -> None:
    """SIGTERM and wait for exit; SIGKILL only if the graceful shutdown hangs."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_until(lambda: not pid_alive(pid), timeout):
        return
    say(f"{name}: pid {pid} ignored SIGTERM for {timeout:.0f}s, sending SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), 10.0)


# Kafka keeps several files open per partition; a suite creates and deletes thousands of them.
KAFKA_OPEN_FILES = 262_144


def raise_open_files_limit() -> None:
    """In the broker's child process: as many open files as allowed, up to KAFKA_OPEN_FILES.

    A root shell may raise its hard limit; anyone else gets at least their own hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    unlimited = resource.RLIM_INFINITY
    for ceiling in (unlimited if hard == unlimited else max(hard, KAFKA_OPEN_FILES), hard):
        wanted = KAFKA_OPEN_FILES if ceiling == unlimited else min(KAFKA_OPEN_FILES, ceiling)
        if soft != unlimited and wanted <= soft:
            return
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, ceiling))
            return
        except (ValueError, OSError):
            continue


def as_user(cmd: list[str], user: str | None) -> list[str]:
    """Prefix a command so it runs as `user` when we are root (PostgreSQL insists on it)."""
    if user and IS_ROOT:
        return ["runuser", "-u", user, "--", *cmd]
    return cmd


def run(
    cmd: list[str],
    *,
    user: str | None = None,
    timeout: float = 120.0,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    new_session: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run a short-lived helper command, capturing output for error messages.

    new_session detaches daemons it spawns from our terminal, so a later Ctrl-C in the
    shell that ran `make` does not reach them.
    """
    return subprocess.run(
        as_user(cmd, user),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd or STATE_DIR,
        check=False,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        start_new_session=new_session,
    )


def apt_install(package: str) -> None:
    """Install a Debian package as root; `apt-get update` only if the plain install fails."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    say(f"installing Debian package {package} …")
    if run(cmd, env=env, timeout=600).returncode == 0:
        return
    run(["apt-get", "update", "-q"], env=env, timeout=600)
    result = run(cmd, env=env, timeout=600)
    if result.returncode != 0:
        raise StackError(f"apt-get install {package} failed:\n{result.stdout}{result.stderr}")


@contextlib.contextmanager
def state_lock() -> Iterator[None]:
    """Serialize concurrent stackctl runs (two `make` targets starting the stack at once)."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with (STATE_DIR / "stackctl.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


# --------------------------------------------------------------------------- Kafka


def kafka_version() -> str:
    """Broker version: of $KAFKA_HOME's jars, else the one pinned in stack/kafka/pom.xml."""
    home = os.environ.get("KAFKA_HOME")
    if home:
        jars = sorted(Path(home, "libs").glob("kafka_2.*-*.jar"))
        match = re.search(r"kafka_2\.\d+-([\w.\-]+?)\.jar$", jars[0].name) if jars else None
        return match.group(1) if match else "unknown"
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*<", KAFKA_POM.read_text())
    if not match:
        raise StackError(f"no <kafka.version> property in {KAFKA_POM}")
    return match.group(1)


def kafka_cache() -> Path:
    """Cache folder keyed by version, so bumping the pom never mixes jar sets."""
    return CACHE_DIR / f"kafka-{kafka_version()}"


def kafka_libs_cached() -> Path | None:
    """Jar folder if usable without network: $KAFKA_HOME/libs or a complete cache."""
    home = os.environ.get("KAFKA_HOME")
    if home:
        libs = Path(home) / "libs"
        if not any(libs.glob("kafka_2.*-*.jar")):
            raise StackError(f"KAFKA_HOME={home} has no libs/kafka_2.*.jar: not a Kafka dist")
        return libs
    cache = kafka_cache()
    return cache / "libs" if (cache / ".complete").exists() else None


def in_local_maven_repo(version: str) -> bool:
    """True when the broker jar is already in ~/.m2, so maven can run offline (-o)."""
    jar = f"org/apache/kafka/kafka_2.13/{version}/kafka_2.13-{version}.jar"
    return (Path.home() / ".m2" / "repository" / jar).exists()


def run_maven_copy(dest: Path, offline: bool) -> subprocess.CompletedProcess[str]:
    """Copy the pom's runtime dependency closure into dest."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise StackError(
            "kafka: `mvn` not found; install Maven (apt-get install maven) "
            "or point KAFKA_HOME at a Kafka distribution"
        )
    cmd = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(KAFKA_POM)]
    cmd += ["-o"] if offline else []
    cmd += [
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={dest}",
    ]
    return run(cmd, timeout=900, cwd=STACK_DIR)


def fetch_kafka() -> Path:
    """Return the jar folder, downloading it with Maven only when not cached yet."""
    cached = kafka_libs_cached()
    if cached is not None:
        return cached
    version = kafka_version()
    cache = kafka_cache()
    partial, libs = cache / "libs.partial", cache / "libs"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(libs, ignore_errors=True)
    offline = in_local_maven_repo(version)
    say(f"kafka: fetching {version} jars with maven{' (offline)' if offline else ''} …")
    began = time.monotonic()
    result = run_maven_copy(partial, offline)
    if result.returncode != 0 and offline:
        result = run_maven_copy(partial, offline=False)
    jars = sorted(partial.glob("*.jar"))
    if result.returncode != 0 or not jars:
        raise StackError(f"kafka: maven could not fetch the jars:\n{result.stdout}{result.stderr}")
    partial.rename(libs)
    (cache / ".complete").write_text("\n".join(j.name for j in jars) + "\n")
    size_mb = sum(j.stat().st_size for j in libs.iterdir()) / 1e6
    elapsed = time.monotonic() - began
    say(f"kafka: {len(jars)} jars ({size_mb:.0f} MB) in {libs} ({elapsed:.1f}s)")
    return libs


def kafka_targets(bootstrap: str) -> list[tuple[str, int]]:
    """Parse 'host:port,host:port' (faust's 'kafka://h:p;h:p' too) into addresses."""
    targets = []
    for item in re.split(r"[,;\s]+", bootstrap.strip()):
        if not item:
            continue
        hostport = item.split("://", 1)[-1].rstrip("/")
        host, _, port = hostport.rpartition(":")
        targets.append((host.strip("[]") or hostport, int(port) if port.isdigit() else 9092))
    return targets


def kafka_request(sock: socket.socket, api_key: int, version: int, body: bytes) -> bytes:
    """Send one non-flexible request (header v1) and return the response after its header."""
    client_id = b"stackctl"
    header = struct.pack(">hhih", api_key, version, 1, len(client_id)) + client_id
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    return recv_exact(sock, size)[4:]  # drop the correlation id


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Read exactly `size` bytes or fail (the broker closed the connection)."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise OSError("connection closed by broker")
        chunks += chunk
    return bytes(chunks)


def kafka_probe_stdlib(host: str, port: int, timeout: float) -> int:
    """Broker count from a raw ApiVersions + Metadata exchange (no client library needed)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        resp = kafka_request(sock, 18, 0, b"")  # ApiVersions v0: understood by every broker
        error, count = struct.unpack(">hi", resp[:6])
        if error:
            raise OSError(f"ApiVersions error {error}")
        versions = {
            key: (low, high)
            for key, low, high in (
                struct.unpack(">hhh", resp[6 + 6 * i : 12 + 6 * i]) for i in range(count)
            )
        }
        low, high = versions.get(3, (0, -1))  # Metadata
        version = max(low, 4)
        if version > min(high, 8):  # v9+ is "flexible" (varints); not worth encoding here
            raise OSError(f"broker offers Metadata v{low}-v{high} only")
        resp = kafka_request(sock, 3, version, struct.pack(">ib", 0, 0))  # no topics
        return int(struct.unpack(">i", resp[4:8])[0])  # after throttle_time_ms: brokers


class KafkaProbe:
    """Answers 'does a broker serve metadata?', with confluent_kafka when it is importable."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.targets = kafka_targets(bootstrap)
        self.count_brokers = self._confluent_counter() or self._stdlib_counter
        self.last_error = ""

    def _confluent_counter(self) -> Callable[[], int] | None:
        """Broker counter on a quiet AdminClient, or None to fall back to the stdlib probe."""
        try:
            from confluent_kafka.admin import AdminClient
        except ImportError:
            return None
        quiet = logging.getLogger("stackctl.librdkafka")  # librdkafka logs every refused
        quiet.addHandler(logging.NullHandler())  # connect while the broker boots
        quiet.propagate = False
        config: dict[str, Any] = {
            "bootstrap.servers": ",".join(f"{h}:{p}" for h, p in self.targets),
            "logger": quiet,
            "error_cb": lambda _err: None,
        }
        admin = AdminClient(config)
        return lambda: len(admin.list_topics(timeout=2).brokers)

    def _stdlib_counter(self) -> int:
        """Most brokers any bootstrap address reports via the raw protocol."""
        return max(self._stdlib_probe(h, p) for h, p in self.targets)

    def __call__(self) -> bool:
        """One probe attempt; remembers the last error for the failure message."""
        if not any(port_open(h, p) for h, p in self.targets):
            self.last_error = "connection refused"
            return False
        try:
            brokers = self.count_brokers()
        except Exception as exc:  # noqa: BLE001 - any client error means "not ready yet"
            self.last_error = str(exc)
            return False
        self.last_error = "" if brokers else "metadata lists no brokers yet"
        return brokers > 0

    def _stdlib_probe(self, host: str, port: int) -> int:
        """Stdlib probe of one address; an unreachable address counts as zero brokers."""
        try:
            return kafka_probe_stdlib(host, port, timeout=2.0)
        except OSError as exc:
            self.last_error = str(exc)
            return 0


def java_binary() -> str:
    """The java to run Kafka with: $JAVA_HOME/bin/java, else `java` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home, "bin", "java")) if java_home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        where = f"JAVA_HOME={java_home}" if java_home else "PATH"
        raise StackError(
            f"kafka: no java in {where}; install a Java 17+ runtime "
            "(Debian: apt-get install openjdk-17-jre-headless)"
        )
    return java


class Kafka:
    """Single-node KRaft broker+controller run from Maven (or $KAFKA_HOME) jars."""

    name = "kafka"
    external_env = "TRIBUTARY_KAFKA_BOOTSTRAP"
    deadline = KAFKA_DEADLINE_S

    def __init__(self) -> None:
        self.port = env_port("TRIBUTARY_STACK_KAFKA_PORT", 9092)
        self.controller_port = env_port("TRIBUTARY_STACK_KAFKA_CONTROLLER_PORT", 9093)
        # A second listener that authenticates clients with SASL/SCRAM (its users are created
        # through the admin API, as a test does), for the clients' SASL settings.
        self.sasl_port = env_port("TRIBUTARY_STACK_KAFKA_SASL_PORT", 9094)
        self.dir = STATE_DIR / "kafka"
        self.data = self.dir / "data"
        self.log = self.dir / "kafka.log"
        self.pid_file = self.dir / "kafka.pid"
        self.props = self.dir / "server.properties"
        self._probes: dict[str, KafkaProbe] = {}

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def running_pid(self) -> int | None:
        return owned_pid(self.pid_file, "kafka.Kafka", str(self.props))

    def server_properties(self) -> str:
        """Broker config; regenerated on every start so port env changes apply."""
        plain, controller = f"{HOST}:{self.port}", f"{HOST}:{self.controller_port}"
        sasl = f"{HOST}:{self.sasl_port}"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://{plain},SASL_PLAINTEXT://{sasl},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{plain},SASL_PLAINTEXT://{sasl}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": (
                "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
            ),
            "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            # KIP-853 dynamic quorum (the 4.x way): the voter set lives in the metadata log,
            # written by `StorageTool format --standalone`; this only says where to find it.
            "controller.quorum.bootstrap.servers": controller,
            "log.dirs": str(self.data),
            "num.partitions": "3",
            "auto.create.topics.enable": "false",  # topics are declared, as in production
            # Single node: every internal topic must accept replication factor / ISR 1.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "min.insync.replicas": "1",
            "group.initial.rebalance.delay.ms": "0",  # consumers get partitions at once
            # A deleted topic's files go at once, not after a minute: the test suite creates and
            # deletes thousands of partitions, and each one holds open files until it is gone.
            "file.delete.delay.ms": "1000",
        }
        header = "# Generated by stack/stackctl.py on every start: edit the script instead.\n"
        return header + "".join(f"{key}={value}\n" for key, value in props.items())

    def java_cmd(self, libs: Path, main: str, *args: str, heap: list[str]) -> list[str]:
        """java command line with our log4j2 config and the jar folder as classpath."""
        return [
            java_binary(), *heap, "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
            "-cp", f"{libs}/*", main, *args,
        ]  # fmt: skip

    def format_storage(self, libs: Path) -> None:
        """Format the KRaft log dir once (meta.properties marks it formatted)."""
        if (self.data / "meta.properties").exists():
            return
        cluster_id = self.new_cluster_id()
        say(f"kafka: formatting storage (cluster id {cluster_id}) …")
        cmd = self.java_cmd(
            libs, "kafka.tools.StorageTool", "format", "-t", cluster_id,
            "-c", str(self.props), "--standalone", heap=["-Xmx256m"],
        )  # fmt: skip
        with self.log.open("a") as out:
            code = subprocess.run(
                cmd,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                timeout=120,
                check=False,
                cwd=self.dir,
            ).returncode
        if code != 0:
            raise not_ready(self.name, f"storage format failed (exit {code})", self.log)

    @staticmethod
    def new_cluster_id() -> str:
        """Same shape as Kafka's Uuid.randomUuid(): url-safe base64, never leading '-'."""
        while True:
            cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            if not cid.startswith("-"):
                return cid

    def start(self) -> None:
        """Start the broker detached and wait until it serves metadata."""
        libs = fetch_kafka()
        self.dir.mkdir(parents=True, exist_ok=True)
        ensure_ports_free(self.name, [self.port, self.controller_port, self.sasl_port])
        self.props.write_text(self.server_properties())
        rotate_log(self.log)
        self.format_storage(libs)
        cmd = self.java_cmd(libs, "kafka.Kafka", str(self.props), heap=["-Xms512m", "-Xmx1g"])
        with self.log.open("a") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                cwd=self.dir,
                start_new_session=True,
                preexec_fn=raise_open_files_limit,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        wait_ready(self, self.local_target(), alive=lambda: proc.poll() is None)

    def local_target(self) -> str:
        return self.address

    def probe(self, target: str) -> tuple[bool, str]:
        """One metadata request; the client is reused across polls (it owns threads)."""
        if target not in self._probes:
            self._probes[target] = KafkaProbe(target)
        probe = self._probes[target]
        return probe(), probe.last_error or "metadata ok"

    def stop(self, pid: int) -> None:
        terminate(self.name, pid)
        self.pid_file.unlink(missing_ok=True)


# --------------------------------------------------------------------------- PostgreSQL


def pg_bin_dir() -> Path | None:
    """Newest Debian server bin dir (/usr/lib/postgresql/<ver>/bin), else initdb on PATH."""
    root = Path("/usr/lib/postgresql")
    versions = [p for p in root.glob("*/bin") if (p / "initdb").exists()] if root.is_dir() else []
    versions.sort(key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0])
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def sql_quote(text: str) -> str:
    """Quote a string literal for postgresql.conf / SQL (paths may contain quotes)."""
    return "'" + text.replace("'", "''") + "'"


def reachable_by(user: str, path: Path) -> bool:
    """True when `user` may traverse into `path` (every directory above it has x for them)."""
    return run(["test", "-x", str(path)], user=user, cwd=Path("/")).returncode == 0


def outside_clone_dir() -> Path:
    """PostgreSQL's folder for this clone outside it, keyed by the clone's path.

    For root in a clone the `postgres` user cannot reach (a 0700 home directory): the folder
    name carries the clone's name, for people, and a hash of its path, so clones never share."""
    shared = Path(os.environ.get("TRIBUTARY_STACK_SHARED_DIR", "").strip() or SHARED_DIR_DEFAULT)
    key = hashlib.sha256(str(STATE_DIR).encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", REPO_DIR.name) or "clone"
    return shared / f"{slug}-{key}" / "postgres"


def postgres_dir() -> Path:
    """Where PostgreSQL's data, socket and log live: in the clone when its server user can
    reach it there, else outside it (see outside_clone_dir), remembered by `.stack/postgres`
    being a link to that folder so status and stop find it again."""
    in_clone = STATE_DIR / "postgres"
    if in_clone.is_symlink():
        return in_clone.resolve()
    if not IS_ROOT or (in_clone / "data" / "PG_VERSION").exists():
        return in_clone
    return in_clone if reachable_by(PG_OS_USER, REPO_DIR) else outside_clone_dir()


class Postgres:
    """Project-local PostgreSQL cluster (Debian binaries) with a `tributary` role and DB."""

    name = "postgres"
    external_env = "TRIBUTARY_DATABASE_URL"
    deadline = DEFAULT_DEADLINE_S

    def __init__(self) -> None:
        self.port = env_port("TRIBUTARY_STACK_POSTGRES_PORT", 55432)
        self.dir = postgres_dir()
        self.data = self.dir / "data"
        self.run_dir = self.dir / "run"  # unix socket directory
        self.log = self.dir / "postgres.log"
        self.user = PG_OS_USER if IS_ROOT else None
        self._bin: Path | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def bin(self) -> Path:
        """Server binaries, installing the Debian package when root and missing."""
        if self._bin is None:
            found = pg_bin_dir()
            if found is None and IS_ROOT and shutil.which("apt-get"):
                apt_install("postgresql")
                found = pg_bin_dir()
            if found is None:
                raise StackError(
                    "postgres: initdb not found; install the PostgreSQL server "
                    "(Debian/Ubuntu: sudo apt-get install postgresql)"
                )
            self._bin = found
        return self._bin

    def running_pid(self) -> int | None:
        return owned_pid(self.data / "postmaster.pid", "postgres", str(self.data))

    def prepare_dirs(self) -> None:
        """Create state dirs the server user owns, and prove that user can reach them."""
        in_clone = STATE_DIR / "postgres"
        outside = self.dir != in_clone.resolve() or in_clone.is_symlink()
        if outside:
            self.link_from_clone(in_clone)
        for path in (self.dir, self.run_dir):
            path.mkdir(parents=True, exist_ok=True)
        if not IS_ROOT:
            return
        if outside:  # folders above ours: root's, traversable by postgres
            for parent in (self.dir.parent, self.dir.parent.parent):
                parent.chmod(parent.stat().st_mode | 0o055)
        else:
            STATE_DIR.chmod(STATE_DIR.stat().st_mode | 0o055)  # traversable by postgres
        for path in (self.dir, self.run_dir):
            shutil.chown(path, PG_OS_USER, PG_OS_USER)
        self.run_dir.chmod(0o700)
        if run(["test", "-w", str(self.dir)], user=PG_OS_USER, cwd=Path("/")).returncode:
            above = self.dir.parents
            blocked = [p for p in above if p.exists() and not p.stat().st_mode & 0o001]
            raise StackError(
                f"postgres: user {PG_OS_USER} cannot reach {self.dir}; "
                f"directories without o+x: {', '.join(map(str, blocked)) or '?'}"
            )

    def link_from_clone(self, in_clone: Path) -> None:
        """`.stack/postgres` -> the folder outside the clone; replaces what an older stackctl
        left there (an empty folder from a start that could not reach it)."""
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        if in_clone.is_symlink():
            if in_clone.resolve() == self.dir:
                return
            in_clone.unlink()
        elif in_clone.exists():
            if (in_clone / "data" / "PG_VERSION").exists():
                raise StackError(f"postgres: {in_clone} holds a cluster; move or remove it")
            shutil.rmtree(in_clone)
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        (self.dir.parent / "clone").write_text(f"{REPO_DIR}\n")  # whose folder this is
        in_clone.symlink_to(self.dir, target_is_directory=True)
        say(f"postgres: {PG_OS_USER} cannot reach {REPO_DIR}; its files go to {self.dir}")

    def init_cluster(self) -> None:
        """initdb once; a half-initialized data dir (no PG_VERSION) is discarded first."""
        if (self.data / "PG_VERSION").exists():
            return
        shutil.rmtree(self.data, ignore_errors=True)
        say(f"postgres: initdb {self.data} …")
        result = run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-E", "UTF8",
             "--no-locale", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"],
            user=self.user, cwd=self.dir,
        )  # fmt: skip
        if result.returncode != 0:
            raise StackError(f"postgres: initdb failed:\n{result.stdout}{result.stderr}")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# Settings of the Tributary dev stack (rewritten on each start):\n")
            conf.write("include_if_exists = 'stackctl.conf'\n")

    def write_conf(self) -> None:
        """Per-start settings, so a changed port env var applies without re-initdb."""
        text = "\n".join(
            [
                "# Generated by stack/stackctl.py on every start.",
                f"listen_addresses = {sql_quote(HOST)}",
                f"port = {self.port}",
                f"unix_socket_directories = {sql_quote(str(self.run_dir))}",
                # Dev stack only: durability traded for speed; a machine crash may lose
                # recent commits or corrupt the cluster (rm -rf .stack/postgres then).
                "fsync = off",
                "synchronous_commit = off",
                "full_page_writes = off",
                "",
            ]
        )
        conf = self.data / "stackctl.conf"
        conf.write_text(text)
        if IS_ROOT:
            shutil.chown(conf, PG_OS_USER, PG_OS_USER)

    def admin_sql(self, sql: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run SQL as the cluster superuser over the unix socket (trust auth)."""
        cmd = [
            str(self.bin / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.run_dir),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ]
        return run(cmd, user=self.user, stdin=sql, timeout=timeout, cwd=self.dir)

    def ensure_role_and_db(self) -> None:
        """Create role and database `tributary` if missing (idempotent, every start)."""
        result = self.admin_sql(BOOTSTRAP_SQL)
        if result.returncode != 0:
            raise not_ready(
                self.name, f"creating role/db failed: {result.stderr.strip()}", self.log
            )

    def start(self) -> None:
        """initdb if needed, start via pg_ctl, bootstrap role/db, wait for SELECT 1."""
        pg_ctl = str(self.bin / "pg_ctl")
        self.prepare_dirs()
        self.init_cluster()
        self.write_conf()
        ensure_ports_free(self.name, [self.port])
        rotate_log(self.log)
        # pg_ctl -w polls postmaster.pid itself and notices a postmaster that dies early;
        # the TCP SELECT 1 below is what proves readiness for the app.
        result = run(
            [pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w",
             "-t", str(int(self.deadline)), "start"],
            user=self.user, timeout=self.deadline + 15, new_session=True, cwd=self.dir,
        )  # fmt: skip
        if result.returncode != 0:
            why = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]
            raise not_ready(self.name, f"pg_ctl start failed ({' '.join(why)})", self.log)
        self.ensure_role_and_db()
        wait_ready(self, self.local_target())

    def local_target(self) -> str:
        return f"postgresql://{DB_USER}:{DB_PASSWORD}@{HOST}:{self.port}/{DB_NAME}"

    def probe(self, target: str) -> tuple[bool, str]:
        """`SELECT 1` over TCP with the app's credentials: what the app itself will need."""
        return pg_select_one(target)

    def stop(self, pid: int) -> None:
        """Fast shutdown (disconnect clients, checkpoint) via pg_ctl, which waits for exit."""
        cmd = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w"]
        cmd += ["-t", str(int(STOP_DEADLINE_S)), "stop"]
        result = run(cmd, user=self.user, timeout=STOP_DEADLINE_S + 10, cwd=self.dir)
        if result.returncode != 0 and pid_alive(pid):
            say(f"postgres: pg_ctl stop failed ({result.stderr.strip()}), signalling {pid}")
            terminate(self.name, pid)


def pg_select_one(dsn: str) -> tuple[bool, str]:
    """Run SELECT 1 with psql (Debian client) or asyncpg; returns (ok, detail)."""
    dsn = re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", dsn)  # SQLAlchemy-style URLs
    bin_dir = pg_bin_dir()
    psql = (
        str(bin_dir / "psql") if bin_dir and (bin_dir / "psql").exists() else shutil.which("psql")
    )
    if psql:
        env = {**os.environ, "PGCONNECT_TIMEOUT": "3"}
        cmd = [psql, "-X", "-A", "-t", "-d", dsn, "-c", "SELECT 1"]
        try:
            result = run(cmd, env=env, timeout=10, cwd=Path("/"))
        except subprocess.TimeoutExpired:
            return False, "psql timed out"
        if result.returncode == 0 and result.stdout.strip() == "1":
            return True, "SELECT 1 ok"
        errors = result.stderr.strip().splitlines()
        return False, errors[-1] if errors else f"psql exit {result.returncode}"
    return pg_select_one_asyncpg(dsn)


def pg_select_one_asyncpg(dsn: str) -> tuple[bool, str]:
    """asyncpg fallback for machines without the PostgreSQL client binaries."""
    try:
        import asyncio

        import asyncpg
    except ImportError:
        return False, "neither psql nor asyncpg available to run SELECT 1"

    async def query() -> object:
        conn = await asyncpg.connect(dsn, timeout=3)
        try:
            return await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    try:
        return asyncio.run(query()) == 1, "SELECT 1 ok"
    except Exception as exc:  # noqa: BLE001 - any driver error means "not ready yet"
        return False, str(exc) or type(exc).__name__


# --------------------------------------------------------------------------- Redis


def redis_url_parts(url: str) -> tuple[str, int, str | None, str | None, bool]:
    """(host, port, username, password, tls) from a redis:// or rediss:// URL."""
    parts = urlsplit(url if "://" in url else f"redis://{url}")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname or HOST, parts.port or 6379, user, password, parts.scheme == "rediss"


def resp_command(*args: str) -> bytes:
    """Encode one command in RESP (the Redis wire protocol)."""
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def redis_ping_stdlib(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """PING over a raw socket (AUTH first when the URL has a password)."""
    host, port, user, password, tls = redis_url_parts(url)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            sock = (
                ssl.create_default_context().wrap_socket(raw, server_hostname=host) if tls else raw
            )
            if password is not None:
                sock.sendall(resp_command("AUTH", *([user] if user else []), password))
                reply = sock.recv(512)
                if not reply.startswith(b"+OK") and b"without any password" not in reply:
                    return False, f"AUTH rejected: {reply.decode(errors='replace').strip()}"
            sock.sendall(resp_command("PING"))
            reply = sock.recv(512)
    except OSError as exc:
        return False, str(exc) or type(exc).__name__
    return reply.startswith(b"+PONG"), reply.decode(errors="replace").strip() or "no reply"


def redis_ping(url: str) -> tuple[bool, str]:
    """PING with redis-py when importable (full URL support), else the stdlib client."""
    try:
        import redis
    except ImportError:
        return redis_ping_stdlib(url)
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return bool(client.ping()), "PONG"
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - any client error means "not ready yet"
        return False, str(exc) or type(exc).__name__


def conf_quote(text: str) -> str:
    """Double-quote a redis.conf value (paths may contain spaces)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Redis:
    """Throwaway Redis (Debian redis-server): no persistence, loopback only."""

    name = "redis"
    external_env = "TRIBUTARY_REDIS_URL"
    deadline = DEFAULT_DEADLINE_S

    def __init__(self) -> None:
        self.port = env_port("TRIBUTARY_STACK_REDIS_PORT", 56379)
        self.dir = STATE_DIR / "redis"
        self.data = self.dir / "data"
        self.log = self.dir / "redis.log"
        self.pid_file = self.dir / "redis.pid"
        self.conf = self.dir / "redis.conf"

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def running_pid(self) -> int | None:
        return owned_pid(self.pid_file, "redis-server")

    @staticmethod
    def binary() -> str:
        """redis-server path, installing the Debian package when root and missing."""
        found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin")
        if found is None and IS_ROOT and shutil.which("apt-get"):
            apt_install("redis-server")
            found = shutil.which("redis-server", path="/usr/bin:/usr/local/bin")
        if found is None:
            raise StackError(
                "redis: redis-server not found; install it "
                "(Debian/Ubuntu: sudo apt-get install redis-server)"
            )
        return found

    def config(self) -> str:
        """redis.conf; regenerated on every start so port env changes apply."""
        return "\n".join(
            [
                "# Generated by stack/stackctl.py on every start.",
                f"port {self.port}",
                f"bind {HOST}",
                "protected-mode yes",
                "daemonize yes",
                f"pidfile {conf_quote(str(self.pid_file))}",
                f"logfile {conf_quote(str(self.log))}",
                f"dir {conf_quote(str(self.data))}",
                'save ""',  # dev stack: no RDB snapshots, no AOF; data is lost on stop
                "appendonly no",
                "",
            ]
        )

    def start(self) -> None:
        """Start redis-server daemonized and wait for its pid file and a PONG."""
        binary = self.binary()
        self.data.mkdir(parents=True, exist_ok=True)
        ensure_ports_free(self.name, [self.port])
        self.conf.write_text(self.config())
        rotate_log(self.log)
        result = run([binary, str(self.conf)], new_session=True, cwd=self.dir)
        if result.returncode != 0:
            why = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]
            raise not_ready(self.name, f"redis-server failed ({' '.join(why)})", self.log)
        wait_ready(self, self.local_target())

    def local_target(self) -> str:
        return f"redis://{self.address}/0"

    def probe(self, target: str) -> tuple[bool, str]:
        """PING must answer PONG; ours must also have written its pid file (for `stop`)."""
        ok, detail = redis_ping(target)
        ours = target == self.local_target() and external_target(self) is None
        if ok and ours and self.running_pid() is None:
            return False, f"no pid file {self.pid_file} yet"
        return ok, detail

    def stop(self, pid: int) -> None:
        terminate(self.name, pid)
        self.pid_file.unlink(missing_ok=True)


# --------------------------------------------------------------------------- tools


PROMTOOL_PACKAGE = "prometheus"  # Debian's; promtool is one static binary inside it


def cached_promtool() -> Path | None:
    """promtool on PATH, else the one `tools` unpacked into the cache."""
    found = shutil.which("promtool")
    if found:
        return Path(found)
    unpacked = sorted(CACHE_DIR.glob("promtool-*/usr/bin/promtool"))
    return unpacked[-1] if unpacked else None


def fetch_promtool() -> Path:
    """promtool from Debian's `prometheus` package, unpacked into the cache, never installed:
    installing it would also start a Prometheus server on hosts with systemd. `apt-get
    download` needs no root; the package lists are refreshed (as root) only if it fails."""
    found = cached_promtool()
    if found is not None:
        return found
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        raise StackError(
            "promtool not found and no apt-get/dpkg-deb to fetch it; install Prometheus's "
            "promtool (Debian/Ubuntu: the prometheus package)"
        )
    debs = CACHE_DIR / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    say(f"promtool: downloading Debian package {PROMTOOL_PACKAGE} …")
    download = ["apt-get", "download", "-q", PROMTOOL_PACKAGE]
    result = run(download, cwd=debs, timeout=600)
    if result.returncode != 0 and IS_ROOT:
        run(["apt-get", "update", "-q"], timeout=600)
        result = run(download, cwd=debs, timeout=600)
    packages = sorted(debs.glob(f"{PROMTOOL_PACKAGE}_*.deb"))
    if result.returncode != 0 or not packages:
        raise StackError(f"promtool: apt-get download failed:\n{result.stdout}{result.stderr}")
    version = packages[-1].name.split("_")[1]
    target = CACHE_DIR / f"promtool-{version}"
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    result = run(["dpkg-deb", "-x", str(packages[-1]), str(partial)], timeout=300)
    if result.returncode != 0:
        raise StackError(f"promtool: dpkg-deb -x failed:\n{result.stdout}{result.stderr}")
    shutil.rmtree(target, ignore_errors=True)
    (target / "usr" / "bin").mkdir(parents=True)
    (partial / "usr" / "bin" / "promtool").rename(target / "usr" / "bin" / "promtool")
    shutil.rmtree(partial)  # the server, its web assets: not needed
    packages[-1].unlink()
    say(f"promtool: {target / 'usr/bin/promtool'} ({version})")
    return target / "usr" / "bin" / "promtool"


# --------------------------------------------------------------------------- commands


class Service(Protocol):
    """What the commands need from Kafka, Postgres and Redis."""

    name: str
    external_env: str
    port: int
    log: Path
    deadline: float

    @property
    def address(self) -> str: ...
    def running_pid(self) -> int | None: ...
    def local_target(self) -> str: ...
    def start(self) -> None: ...
    def probe(self, target: str) -> tuple[bool, str]: ...
    def stop(self, pid: int) -> None: ...


def wait_ready(
    svc: Service, target: str, alive: Callable[[], bool] | None = None, external: bool = False
) -> None:
    """Poll svc.probe(target) until it passes or the deadline; explain failures clearly."""
    detail = ["no answer"]

    def check() -> bool:
        ok, detail[0] = svc.probe(target)
        return ok

    if wait_until(check, svc.deadline, alive):
        return
    if external:
        raise StackError(
            f"{svc.name}: external {redact(target)} not reachable within {svc.deadline:.0f}s "
            f"({detail[0]}); fix or unset {svc.external_env}"
        )
    if alive is not None and not alive():
        raise not_ready(svc.name, "process exited during startup", svc.log)
    raise not_ready(svc.name, f"not ready after {svc.deadline:.0f}s ({detail[0]})", svc.log)


def make_services(only: list[str]) -> list[Service]:
    """Instantiate the selected services in start order."""
    classes: dict[str, Callable[[], Service]] = {
        "kafka": Kafka,
        "postgres": Postgres,
        "redis": Redis,
    }
    return [classes[name]() for name in SERVICES if name in only]


def external_target(svc: Service) -> str | None:
    """The env value naming an external instance of this service, if any."""
    return os.environ.get(svc.external_env, "").strip() or None


def redact(url: str) -> str:
    """Hide the password of a URL before printing it."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def check_external(svc: Service, target: str) -> None:
    """Probe an external service we must not manage, failing clearly when unreachable."""
    say(f"{svc.name}: external ({redact(target)}), checking …")
    began = time.monotonic()
    wait_ready(svc, target, external=True)
    say(f"{svc.name}: external {redact(target)} reachable ({time.monotonic() - began:.1f}s)")


def stop_half_started(svc: Service) -> None:
    """After a failed start, stop what we launched so the next `start` begins afresh."""
    pid = svc.running_pid()
    if pid is not None:
        say(f"{svc.name}: start failed, stopping pid {pid}")
        svc.stop(pid)


def start_one(svc: Service) -> bool:
    """Start one service unless it is external or already running, then prove readiness.

    True when this call started it (so a later failure of the same `start` stops it again)."""
    target = external_target(svc)
    if target:
        check_external(svc, target)
        return False
    began = time.monotonic()
    pid = svc.running_pid()
    if pid is None:
        say(f"{svc.name}: starting …")
        try:
            svc.start()
        except (StackError, KeyboardInterrupt):
            stop_half_started(svc)
            raise
        verb = "ready"
    else:
        wait_ready(svc, svc.local_target())  # a concurrent start may still be booting it
        verb = f"already running (pid {pid}), ready"
    extra = f" ({kafka_version()})" if isinstance(svc, Kafka) else ""
    say(f"{svc.name}: {verb} on {svc.address}{extra} in {time.monotonic() - began:.1f}s")
    return pid is None


def cmd_fetch(_only: list[str]) -> int:
    """`fetch`: make the Kafka jars available offline (a no-op when already cached)."""
    cached = kafka_libs_cached()
    libs = fetch_kafka()
    if cached is not None:
        count = len(list(libs.glob("*.jar")))
        say(f"kafka: {kafka_version()} jars already present: {count} in {libs}")
    return 0


def cmd_start(only: list[str]) -> int:
    """`start`: idempotently bring up the selected services; the first failure stops what this
    run had started (not what was running before it), so the next `start` begins afresh."""
    started: list[Service] = []
    try:
        for svc in make_services(only):
            if start_one(svc):
                started.append(svc)
    except (StackError, KeyboardInterrupt):
        stop_started(started)
        raise
    return 0


def stop_started(started: list[Service]) -> None:
    """Undo a failed start: stop, newest first, the services it had brought up."""
    if not started:
        return
    names = ", ".join(svc.name for svc in started)
    say(f"start failed part-way: stopping what this start had started ({names})")
    for svc in reversed(started):
        pid = svc.running_pid()
        if pid is None:
            continue
        try:
            svc.stop(pid)
        except (StackError, OSError, subprocess.SubprocessError) as exc:
            say(f"{svc.name}: could not stop pid {pid}: {exc}")
            continue
        say(f"{svc.name}: stopped (pid {pid})")


def cmd_stop(only: list[str]) -> int:
    """`stop`: stop what our pid files say we started, in reverse start order."""
    for svc in reversed(make_services(only)):
        if external_target(svc):
            say(f"{svc.name}: external, left alone")
            continue
        pid = svc.running_pid()
        if pid is None:
            say(f"{svc.name}: not running")
            continue
        began = time.monotonic()
        say(f"{svc.name}: stopping pid {pid} …")
        svc.stop(pid)
        if pid_alive(pid):
            raise StackError(f"{svc.name}: pid {pid} still alive after stop; log: {svc.log}")
        say(f"{svc.name}: stopped in {time.monotonic() - began:.1f}s")
    return 0


def cmd_status(only: list[str]) -> int:
    """`status`: one line per service; exit 0 whatever the state (informational)."""
    for svc in make_services(only):
        target = external_target(svc)
        if target:
            say(f"{svc.name:<9} external  {redact(target)}")
            continue
        pid = svc.running_pid()
        if pid is not None:
            say(f"{svc.name:<9} running   {svc.address} (pid {pid})")
        elif port_open(HOST, svc.port):
            say(f"{svc.name:<9} stopped   {svc.address} (port used by a foreign process)")
        else:
            say(f"{svc.name:<9} stopped   {svc.address}")
    return 0


def cmd_tools(_only: list[str]) -> int:
    """`tools`: promtool, which the test suite runs on the alert rules."""
    found = cached_promtool()
    path = fetch_promtool()
    if found is not None:
        say(f"promtool: already present: {path}")
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "fetch": cmd_fetch,
    "tools": cmd_tools,
    "start": cmd_start,
    "stop": cmd_stop,
    "status": cmd_status,
}


def parse_only(value: str) -> list[str]:
    """argparse type for --only: comma-separated subset of SERVICES."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SERVICES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {','.join(SERVICES)}")
    return names


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code (non-zero when a service is not ready)."""
    parser = argparse.ArgumentParser(
        prog="stackctl.py", description="Local Kafka/PostgreSQL/Redis stack for Tributary."
    )
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument(
        "--only",
        type=parse_only,
        default=list(SERVICES),
        help="comma-separated subset of kafka,postgres,redis",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "status":  # read-only: must not wait behind a slow `start`
            return cmd_status(args.only)
        with state_lock():
            return COMMANDS[args.command](args.only)
    except (StackError, OSError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
