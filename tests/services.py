"""Real services for tests: a single-node SLURM cluster and a PostgreSQL server on loopback.

Each context manager starts its own daemons in a fresh temp dir and, on exit (also after a failure),
stops them, waits until they are gone and removes the dir. Nothing system-wide is started or stopped:
the binaries come from .ci/services.sh, the configuration and state live in the temp dir.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# Daemons live in sbin, which a non-login PATH may lack.
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
_SLURM_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "sinfo", "squeue", "scancel")
MUNGE_KEY = Path("/etc/munge/munge.key")
# States after which a job never runs again by itself (scontrol's JobState values).
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


def _which(name: str) -> str | None:
    return shutil.which(name, path=_SEARCH_PATH)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    """A port free right now on 127.0.0.1 (the kernel's pick, so parallel runs do not clash)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError as exc:
        return f"--- {path}: {exc}"
    return f"--- {path} (last {lines} lines)\n" + "\n".join(text)


def pid_alive(pid: int) -> bool:
    """True while pid runs; a zombie waiting for a reaper counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    """Ask politely, then SIGKILL: a daemon that ignores its signal must not outlive the test."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    left = [pid for pid in pids if pid_alive(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [pid for pid in left if pid_alive(pid)]
    return left


def _kill_pids(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def processes_using(root: Path) -> set[int]:
    """Processes whose command line, cwd or open files point into root, and all their descendants.

    slurmd's job steps (slurmstepd) detach from slurmd and survive its death: they hold slurmd's
    log file in root open, and the job's own processes are their children."""
    marker = str(root)
    me = os.getpid()
    hits: set[int] = set()
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        with contextlib.suppress(OSError, IndexError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(pid)
        with contextlib.suppress(OSError):
            links = [os.readlink(entry / "cwd")] + [os.readlink(fd) for fd in (entry / "fd").iterdir()]
            if marker in (entry / "cmdline").read_text(errors="replace") or any(
                    link.startswith(marker) for link in links):
                hits.add(pid)
    todo = list(hits)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in hits:
                hits.add(child)
                todo.append(child)
    return hits


def _sweep(root: Path) -> None:
    """SIGKILL whatever still uses root (slurmstepd ignores SIGTERM) and wait until it is gone."""
    pids = processes_using(root)
    _kill_pids(pids, signal.SIGKILL)
    if left := _wait_gone(pids, 10):
        raise RuntimeError(f"processes under {root} survived SIGKILL: {left}")


# --------------------------------------------------------------------------- SLURM

def skip_reason_slurm() -> str | None:
    """None when a SLURM cluster can be started here, else why not (one line, for pytest.skip)."""
    if os.geteuid() != 0:
        return "SLURM tests need root (slurmd launches jobs, munged runs as user munge)"
    missing = [name for name in _SLURM_BINARIES if not _which(name)]
    if missing:
        return f"SLURM binaries missing ({', '.join(missing)}): run .ci/services.sh"
    if not _user_exists("munge"):
        return "no 'munge' user (package munge not installed): run .ci/services.sh"
    return None


@dataclass
class SlurmCluster:
    """A running one-node cluster. Client commands need env (SLURM_CONF): merge it into os.environ."""

    root: Path            # conf, state, spool and logs
    conf: Path
    node: str
    env: dict[str, str]   # {"SLURM_CONF": ...}; jobs inherit it, so srun inside a job works too

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 30) -> str:
        """A SLURM client command against this cluster; its stdout, or an error with its stderr."""
        proc = subprocess.run(args, cwd=cwd, env={**os.environ, **self.env}, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def sbatch(self, args: Sequence[str], cwd: Path) -> str:
        """Submit (args: sbatch options and the script); returns the job id."""
        return self.run("sbatch", "--parsable", *args, cwd=cwd).strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """scontrol's fields of the job (JobState, Reason, Restarts, ExitCode, StdOut...).
        No accounting daemon here: a finished job is visible for MinJobAge (600 s) only."""
        line = self.run("scontrol", "show", "job", "--oneliner", job_id)
        return dict(re.findall(r"(\S+?)=(\S*)", line))

    def state(self, job_id: str) -> str:
        return self.job(job_id)["JobState"]

    def wait(self, job_id: str, states: str | Iterable[str], timeout: float = 60) -> str:
        """Poll until the job is in one of states; the state reached. Fails fast when the job ends
        in a final state that was not asked for."""
        wanted = {states} if isinstance(states, str) else set(states)
        deadline = time.monotonic() + timeout
        while True:
            info = self.job(job_id)
            state = info["JobState"]
            if state in wanted:
                return state
            if state in FINAL_STATES or time.monotonic() > deadline:
                raise AssertionError(
                    f"job {job_id} is {state} (reason {info.get('Reason')}, exit {info.get('ExitCode')}),"
                    f" waited for {sorted(wanted)} up to {timeout} s\n{self.logs()}")
            time.sleep(0.2)

    def requeue(self, job_id: str) -> None:
        """What Lightning's SIGUSR1 handler does: the batch script runs again from the top with the
        same job id and SLURM_RESTART_COUNT + 1, once the job is eligible again (cred_expire + 1 s)."""
        self.run("scontrol", "requeue", job_id)

    def cancel(self, job_id: str) -> None:
        self.run("scancel", job_id)

    def cancel_all(self, timeout: float = 15) -> None:
        """Cancel every job and wait until none holds a CPU (the node has only nproc of them, so a
        job left running makes the next test's job pend with reason Resources)."""
        if jobs := self.run("squeue", "--noheader", "--format", "%i").split():
            self.run("scancel", *jobs)
        deadline = time.monotonic() + timeout   # KillWait=2 s, then SIGKILL
        while self.run("squeue", "--noheader", "--states", "RUNNING,COMPLETING,CONFIGURING,SUSPENDED").strip():
            if time.monotonic() > deadline:
                raise RuntimeError(f"jobs still running {timeout} s after scancel\n{self.logs()}")
            time.sleep(0.2)

    def logs(self) -> str:
        return "\n".join(_tail(self.root / name) for name in ("slurmctld.log", "slurmd.log"))


# Why each line: the container has no cgroups to track or confine jobs (linuxproc, task/none), no
# accounting daemon, and one node of nproc cores. cred_expire sets how long a requeued job waits before
# it may start again (default 120 s, minimum 5), sched_interval how often pending jobs are looked at
# (default 60 s): a requeued job runs again about 7 s later instead of 2-3 minutes.
_SLURM_CONF = """\
ClusterName=test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket},cred_expire=5
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=sched_interval=1
MpiDefault=none
JobRequeue=1
KillWait=2
MinJobAge=600
ReturnToService=2
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def _ensure_munge_key() -> None:
    """The packaged postinst usually made one; otherwise what munge expects: random, 0400, munge's."""
    if MUNGE_KEY.exists():
        return
    munge = pwd.getpwnam("munge")
    MUNGE_KEY.parent.mkdir(mode=0o700, exist_ok=True)
    os.chown(MUNGE_KEY.parent, munge.pw_uid, munge.pw_gid)
    fd = os.open(MUNGE_KEY, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "wb") as key:
        key.write(secrets.token_bytes(1024))
    os.chown(MUNGE_KEY, munge.pw_uid, munge.pw_gid)


@contextlib.contextmanager
def _munged() -> Iterator[Path]:
    """Our own munged on its own socket: stopping it cannot break a system munged or another cluster.
    Its dir is outside pytest's 0700 tmp dirs (user munge must reach the socket) and 0755 (munged
    refuses a socket dir not executable by all)."""
    _ensure_munge_key()
    munge = pwd.getpwnam("munge")
    root = Path(tempfile.mkdtemp(prefix="test-munge-"))
    os.chmod(root, 0o755)
    os.chown(root, munge.pw_uid, munge.pw_gid)
    sock = root / "munge.socket"
    with open(root / "munged.out", "wb") as log:   # the child keeps its own copy of the fd
        proc = subprocess.Popen(
            [_which("munged"), "--foreground", f"--socket={sock}", f"--pid-file={root}/munged.pid",
             f"--seed-file={root}/munged.seed"],
            user=munge.pw_uid, group=munge.pw_gid, extra_groups=[], stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"munged did not start\n{_tail(root / 'munged.out')}")
            time.sleep(0.05)
        yield sock
    finally:
        _stop_process(proc)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def slurm_cluster(timeout: float = 30) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd (files in a fresh dir directly under the system's temp dir: slurmstepd's
    socket path inside it must stay under 108 bytes, which pytest's per-worker tmp_path can exceed), yield the
    cluster once sinfo shows the node idle; on exit cancel every job, stop the daemons and remove the files."""
    if reason := skip_reason_slurm():
        raise RuntimeError(reason)
    node = socket.gethostname().split(".")[0]
    root = Path(tempfile.mkdtemp(prefix="test-slurm-"))
    daemons: list[subprocess.Popen] = []
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        cleanup.callback(_sweep, root)   # runs after the daemons are stopped (LIFO)
        munge_socket = cleanup.enter_context(_munged())
        conf = root / "slurm.conf"
        for sub in ("state", "spool"):
            (root / sub).mkdir()
        conf.write_text(_SLURM_CONF.format(
            node=node, root=root, munge_socket=munge_socket, cpus=os.cpu_count() or 1,
            ctld_port=_free_port(), slurmd_port=_free_port()))
        cluster = SlurmCluster(root=root, conf=conf, node=node, env={"SLURM_CONF": str(conf)})
        cleanup.callback(_stop_slurm, cluster, daemons)
        # Foreground (-D) children: their pids are ours to stop, no pid-file race.
        for argv in ([_which("slurmctld"), "-D", "-f", str(conf)],
                     [_which("slurmd"), "-D", "-f", str(conf), "-N", node]):
            out = cleanup.enter_context(open(root / f"{Path(argv[0]).name}.out", "wb"))
            daemons.append(subprocess.Popen(argv, env={**os.environ, **cluster.env}, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True))
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                if cluster.run("sinfo", "--noheader", "--nodes", node, "--format", "%T", timeout=5).strip() == "idle":
                    break
            dead = [d.args[0] for d in daemons if d.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"node {node} not idle after {timeout} s"
                # The daemons' own output: it also holds errors from before their log files opened.
                raise RuntimeError(f"SLURM did not start: {why}\n"
                                   + "\n".join(_tail(root / f"{n}.out") for n in ("slurmctld", "slurmd")))
            time.sleep(0.2)
        yield cluster


def _stop_slurm(cluster: SlurmCluster, daemons: list[subprocess.Popen]) -> None:
    """Cancel every job while slurmd still runs (it kills the job steps), then stop the daemons."""
    if daemons and daemons[0].poll() is None:   # slurmctld is up
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            cluster.cancel_all()   # else the sweep below SIGKILLs what is left
    for daemon in reversed(daemons):   # slurmd first: it reports to slurmctld on the way out
        _stop_process(daemon)


# --------------------------------------------------------------------------- PostgreSQL

def _postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin that has a server."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl") if p.parent.parent.name.isdigit()]
    return max(found, key=lambda p: int(p.parent.name), default=None)


def skip_reason_postgres() -> str | None:
    """None when a PostgreSQL server can be started here, else why not (one line, for pytest.skip)."""
    if _postgres_bin() is None:
        return "PostgreSQL server binaries missing (/usr/lib/postgresql/*/bin/pg_ctl): run .ci/services.sh"
    if os.geteuid() == 0 and not _user_exists("postgres"):
        return "running as root without a 'postgres' user (the server refuses to run as root)"
    return None


@dataclass
class PostgresServer:
    root: Path      # data dir, socket dir and server log
    bin_dir: Path   # initdb, pg_ctl, psql of the newest version installed
    port: int
    dbname: str
    user: str = "postgres"   # the superuser; -A trust: no password

    @property
    def url(self) -> str:
        """SQLAlchemy URL (Optuna's storage=...)."""
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.dbname}"

    @property
    def pid(self) -> int:
        """The postmaster's pid (first line of postmaster.pid)."""
        return int((self.root / "data" / "postmaster.pid").read_text().split()[0])

    def psql(self, sql: str) -> str:
        """Run SQL over TCP like a client would; unaligned tuples-only output."""
        proc = subprocess.run(
            [self.bin_dir / "psql", "-X", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
             "-d", self.dbname, "-v", "ON_ERROR_STOP=1", "-A", "-t", "-c", sql],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout


@contextlib.contextmanager
def postgres_server(tmp_dir: Path | None = None, dbname: str = "test") -> Iterator[PostgresServer]:
    """initdb + pg_ctl start on 127.0.0.1:<free port>, createdb dbname; on exit stop (fast) and remove.

    The server may not run as root: then it runs as user postgres, from a dir that user can reach.
    tmp_dir must then be traversable by postgres (pytest's tmp dirs are not: keep the default, the
    system temp dir)."""
    if reason := skip_reason_postgres():
        raise RuntimeError(reason)
    bin_dir = _postgres_bin()
    assert bin_dir is not None
    root = Path(tempfile.mkdtemp(prefix="test-postgres-", dir=tmp_dir))
    os.chmod(root, 0o755)
    as_server: dict = {}
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_server = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
    data = root / "data"
    server = PostgresServer(root=root, bin_dir=bin_dir, port=_free_port(), dbname=dbname)

    def run(*args: str | Path, **kwargs) -> None:
        proc = subprocess.run([str(a) for a in args], cwd=root, env={**os.environ, "HOME": str(root)},
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, **kwargs)
        if proc.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({proc.returncode}): "
                               f"{proc.stdout.strip()}\n{proc.stderr.strip()}\n{_tail(root / 'server.log')}")

    started = False
    try:
        # --no-sync / fsync=off: a throwaway cluster need not survive a power cut.
        run(bin_dir / "initdb", "-D", data, "-U", server.user, "-A", "trust", "--no-sync",
            "--locale=C", "-E", "UTF8", **as_server)
        started = True   # from here a postmaster may exist, even if pg_ctl reports failure
        run(bin_dir / "pg_ctl", "-D", data, "-l", root / "server.log", "-w", "-t", "30", "-o",
            f"-k {root} -p {server.port} -c listen_addresses=127.0.0.1 -c fsync=off", "start", **as_server)
        run(bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(server.port), "-U", server.user, dbname)
        yield server
    finally:
        if started:
            pid = None
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = server.pid
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                run(bin_dir / "pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "20", "stop", **as_server)
            if pid and _wait_gone([pid], 5):
                _kill_pids([pid], signal.SIGKILL)
            _sweep(root)   # backends of a killed postmaster
        shutil.rmtree(root, ignore_errors=True)
