"""S3 figures: large-object PUT/GET throughput against `dd` on the same disk, small-object (4 KiB)
operations per second against the ASGI echo baseline, and the server's peak RSS while it moves a
large object.

Run: `hearth bench --section s3` (or `.venv/bin/python benchmarks/s3.py`). It starts its own Hearth
server and echo app and stops them. Requests are presigned SigV4 URLs sent with `http.client` in
1 MiB blocks, so the client's own hashing does not count against the server. Figures are wall-clock
on the machine at hand: informative, not pass/fail.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from hearth.bench.servers import BENCH_KEY, start_echo, start_hearth

MiB = 1024 * 1024
BLOCK = MiB


def _client(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=BENCH_KEY[0],
                        aws_secret_access_key=BENCH_KEY[1],
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def _make_file(path: Path, mib: int) -> None:
    chunk = os.urandom(MiB)
    with path.open("wb") as f:
        for _ in range(mib):
            f.write(chunk)


def _send(url: str, method: str, body_path: Path | None = None, body: bytes | None = None) -> tuple[int, int]:
    """(status, bytes read) of one request on a fresh connection."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, blocksize=BLOCK, timeout=600)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        if body_path is not None:
            with body_path.open("rb") as f:
                conn.request(method, target, body=f, headers={"Content-Length": str(body_path.stat().st_size)})
        else:
            conn.request(method, target, body=body)
        resp = conn.getresponse()
        n = 0
        while chunk := resp.read(BLOCK):
            n += len(chunk)
        return resp.status, n
    finally:
        conn.close()


def _dd(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(["dd", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _large(s3: Any, tmp: Path, mib: int) -> dict[str, float]:
    src = tmp / "large.bin"
    _make_file(src, mib)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "bench", "Key": "large"}, ExpiresIn=3600)
    start = time.perf_counter()
    status, _ = _send(put_url, "PUT", body_path=src)
    put_s = time.perf_counter() - start
    assert status == 200, status
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": "large"}, ExpiresIn=3600)
    start = time.perf_counter()
    status, got = _send(get_url, "GET")
    get_s = time.perf_counter() - start
    assert status == 200 and got == mib * MiB, (status, got)
    dd_write_s = _dd([f"if={src}", f"of={tmp / 'dd.out'}", "bs=1M", "conv=fsync"])
    dd_read_s = _dd([f"if={tmp / 'dd.out'}", "of=/dev/null", "bs=1M"])
    (tmp / "dd.out").unlink()
    src.unlink()
    return {"mib": mib, "put_mib_s": mib / put_s, "get_mib_s": mib / get_s, "dd_write_mib_s": mib / dd_write_s,
            "dd_read_mib_s": mib / dd_read_s, "put_ratio": dd_write_s / put_s, "get_ratio": dd_read_s / get_s}


def _ops(urls: Sequence[tuple[str, str, bytes | None]], seconds: float, threads: int) -> tuple[float, int]:
    """(requests per second, requests) over `seconds`, `threads` keep-alive connections taking URLs in
    turn."""
    done = 0
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    position = [0]

    def worker() -> None:
        nonlocal done
        parts = urlsplit(urls[0][1])
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        count = 0
        while time.perf_counter() < stop:
            with lock:
                method, url, body = urls[position[0] % len(urls)]
                position[0] += 1
            p = urlsplit(url)
            conn.request(method, p.path + (f"?{p.query}" if p.query else ""), body=body)
            resp = conn.getresponse()
            resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"{method} answered {resp.status}")
            count += 1
        conn.close()
        with lock:
            done += count

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return done / (time.perf_counter() - start), done


def _small(s3: Any, echo_url: str, seconds: float, threads: int) -> dict[str, float]:
    body = os.urandom(4096)
    puts = [("PUT", s3.generate_presigned_url("put_object", Params={"Bucket": "bench", "Key": f"small/{i}"},
                                              ExpiresIn=3600), body) for i in range(2000)]
    put_ops, written = _ops(puts, seconds, threads)
    gets = [("GET", s3.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": f"small/{i}"},
                                              ExpiresIn=3600), None) for i in range(min(written, len(puts)))]
    get_ops, _ = _ops(gets, seconds, threads)
    echo_ops, _ = _ops([("POST", f"{echo_url}/", body)], seconds, threads)
    return {"put_ops_s": put_ops, "get_ops_s": get_ops, "echo_ops_s": echo_ops, "put_ratio": put_ops / echo_ops,
            "get_ratio": get_ops / echo_ops, "threads": threads}


def _rss(s3: Any, tmp: Path, pid: int, mib: int, idle: float) -> dict[str, float]:
    src = tmp / "rss.bin"
    _make_file(src, mib)
    key = f"rss-{uuid.uuid4().hex}"
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "bench", "Key": key}, ExpiresIn=3600)
    assert _send(put_url, "PUT", body_path=src)[0] == 200
    src.unlink()
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": key}, ExpiresIn=3600)
    assert _send(get_url, "GET")[1] == mib * MiB
    peak = _peak_rss_mib(pid)
    return {"mib_moved": mib, "idle_rss_mib": idle, "peak_rss_mib": peak, "peak_above_idle_mib": peak - idle}


def run(*, large_mib: int = 256, rss_mib: int = 2048, seconds: float = 3.0, threads: int = 4) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hearth-bench-s3-") as tmp_dir:
        tmp = Path(tmp_dir)
        hearth, url = start_hearth(tmp)
        echo, echo_url = start_echo(tmp)
        try:
            s3 = _client(url)
            s3.create_bucket(Bucket="bench")
            idle = _rss_mib(hearth.proc.pid)
            out: dict[str, Any] = {"large": _large(s3, tmp, large_mib)}
            out["small"] = _small(s3, echo_url, seconds, threads)
            out["rss"] = _rss(s3, tmp, hearth.proc.pid, rss_mib, idle)
            return out
        finally:
            echo.stop()
            hearth.stop()
