"""CPU seconds and peak memory of a command's whole process tree, from /proc (no psutil).

Ray workers and datatrove's multiprocessing children are grandchildren of the
command, which getrusage() does not see reliably, so the tree is polled: each
process's utime+stime is kept at its latest value; peak memory is the largest
sum of RSS over the tree at any poll.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class TreeUsage:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int


def session_pids(sid: int) -> list[int]:
    """Processes of session `sid` (a run started with start_new_session): what a kill -9 of a whole
    run must reach, Ray's daemons and workers included."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[3]) == sid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _tree(root: int) -> list[int]:
    kids = _children()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def _sample(pid: int) -> tuple[float, float] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    cpu = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    rss = int(fields[21]) * _PAGE / 2**20
    return cpu, rss


def run_measured(cmd: list[str], env: dict | None = None, log: Path | None = None, poll_s: float = 0.1) -> TreeUsage:
    out = open(log, "w") if log else subprocess.DEVNULL
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    cpu: dict[int, float] = {}
    peak = 0.0
    root_ru = None
    while root_ru is None:
        pid_done, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid_done:
            proc.returncode = os.waitstatus_to_exitcode(status)
            root_ru = ru.ru_utime + ru.ru_stime
            break
        rss_now = 0.0
        for pid in _tree(proc.pid):
            s = _sample(pid)
            if s:
                cpu[pid] = max(cpu.get(pid, 0.0), s[0])
                rss_now += s[1]
        peak = max(peak, rss_now)
        time.sleep(poll_s)
    wall = time.perf_counter() - start
    # Only polled self times are summed (wait4's figure would count reaped children twice);
    # what a process spends after its last poll (< poll_s) is not counted, on both sides alike.
    if log:
        out.close()
    return TreeUsage(wall, sum(cpu.values()), peak, proc.returncode)
