"""
Benchmark: copying an SES export file into S3 — SesExportToS3Operator against two anchors.

Everything runs on this machine in one run: the SES export emulator (this process) serves a file of
``--size`` bytes, moto's S3 server (a separate process, it keeps objects in memory) receives it.
Each method runs in its own subprocess, which reports its wall time and peak RSS (VmHWM):

* ``operator``: ``SesExportToS3Operator.execute`` (fresh GetExportJob, streamed multipart upload:
  s3transfer's submission thread pulls the export through ``ChunkReader`` as it reads each part);
* ``pipe``: the same operator with the earlier ``DownloadPipe`` (a download thread feeding a bounded
  queue that ``upload_fileobj`` reads from), kept here only to compare the two designs;
* ``naive``: ``requests.get(url).content`` then ``put_object`` (AWS's sample: the file in memory);
* ``floor``: ``curl -o`` to local disk then boto3 ``upload_file`` (the two-step floor; curl's own
  peak RSS is included via ``RUSAGE_CHILDREN``).

Peak RSS is shown whole and as the copy's own share ("copy Δ" = peak minus the RSS after imports,
before the copy: Airflow's import alone is ~120 MiB). Run e.g.::

    python benchmarks/export_transfer.py      # 4 MiB and 256 MiB, each ratio to the floor against its target
    python benchmarks/export_transfer.py --size 100MiB
    python benchmarks/export_transfer.py --size 1GiB
    python benchmarks/export_transfer.py --size 4GiB --methods operator,floor
    python benchmarks/export_transfer.py --size 1GiB --methods operator,pipe
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import queue
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
UNITS = {"": 1, "B": 1, "KIB": 1024, "MIB": MIB, "GIB": 1024 * MIB, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
BUCKET = "bench-exports"
ROWS_PER_JOB = 10_000  # Message Insights' MaxResults ceiling; the emulator's row_multiplier scales it


def parse_size(text: str) -> int:
    """``100MiB`` / ``1GiB`` / ``12345`` to bytes."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).upper() not in UNITS:
        raise argparse.ArgumentTypeError(f"size {text!r}: use e.g. 100MiB, 1GiB, 4GiB")
    return int(float(match.group(1)) * UNITS[match.group(2).upper()])


def vm_kib(field: str) -> int:
    """A ``/proc/self/status`` field (VmRSS, VmHWM) in KiB."""
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def fresh_url(ses_endpoint: str, job_id: str) -> str:
    import boto3

    ses = boto3.client(
        "sesv2",
        endpoint_url=ses_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return ses.get_export_job(JobId=job_id)["ExportDestination"]["S3Url"]


# -- the earlier design, for the ``pipe`` method -------------------------------------------------
_EOF = object()


class _Stopped(Exception):
    """The reading side went away."""


class DownloadPipe:
    """
    The package's earlier reader: a non-seekable file whose ``read(n)`` returns what a background
    thread downloads (through ``transform``, then ``finish``) into a queue of ``max_chunks``.
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        transform: Callable[[bytes], bytes] | None = None,
        finish: Callable[[], bytes] | None = None,
        max_chunks: int = 8,
    ) -> None:
        self._chunks = chunks
        self._transform = transform
        self._finish = finish
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, max_chunks))
        self._stop = threading.Event()
        self._buffer = b""
        self._offset = 0
        self._eof = False
        self.error: BaseException | None = None
        self.bytes_out = 0
        self._thread = threading.Thread(target=self._produce, name="ses-export-download", daemon=True)

    def start(self) -> DownloadPipe:
        self._thread.start()
        return self

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Stopped

    def _produce(self) -> None:
        try:
            for chunk in self._chunks:
                out = self._transform(chunk) if self._transform else chunk
                if out:
                    self._put(out)
            tail = self._finish() if self._finish else b""
            if tail:
                self._put(tail)
            self._put(_EOF)
        except _Stopped:
            pass
        except BaseException as exc:
            self.error = exc
            with contextlib.suppress(_Stopped):
                self._put(_EOF)
        finally:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def _next_item(self) -> bool:
        item = self._queue.get()
        if item is _EOF:
            self._eof = True
            if self.error is not None:
                raise self.error
            return False
        assert isinstance(item, bytes)
        self._buffer, self._offset = item, 0
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self.error is not None and self._eof:
            raise self.error
        parts: list[bytes] = []
        wanted = -1 if size is None or size < 0 else size
        got = 0
        while wanted < 0 or got < wanted:
            if self._offset >= len(self._buffer) and (self._eof or not self._next_item()):
                break
            left = len(self._buffer) - self._offset
            take = left if wanted < 0 else min(wanted - got, left)
            parts.append(self._buffer[self._offset : self._offset + take])
            self._offset += take
            got += take
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.bytes_out += len(data)
        return data

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)
        if self._thread.ident is not None:
            self._thread.join()


def stream_through_pipe(
    upload: Callable[[BinaryIO], object],
    chunks: Iterator[bytes],
    transform: Callable[[bytes], bytes],
    finish: Callable[[], bytes],
) -> int:
    """The operator's ``_stream_into`` as it was with ``DownloadPipe``."""
    pipe = DownloadPipe(chunks, transform=transform, finish=finish).start()
    try:
        upload(pipe)  # type: ignore[arg-type]
    except BaseException:
        if pipe.error is not None:
            raise pipe.error from None
        raise
    finally:
        pipe.close()
    if pipe.error is not None:
        raise pipe.error
    return pipe.bytes_out


# -- workers (run in a subprocess each) ----------------------------------------------------------
def worker(method: str, job_id: str, ses_endpoint: str, s3_endpoint: str, key: str) -> dict[str, Any]:
    import boto3  # noqa: F401  (imports are not part of the copy; clients are created inside the timing)

    if method in ("operator", "pipe"):
        from airflow_provider_sesexport.transfers.ses_export_to_s3 import SesExportToS3Operator

        class PipeOperator(SesExportToS3Operator):
            def _stream_into(self, upload: Any, chunks: Any, transform: Any, finish: Any) -> int:
                return stream_through_pipe(upload, chunks, transform, finish)

        class TI:
            xcom: dict[str, Any] = {}

            def xcom_push(self, key: str, value: Any, **_: Any) -> None:
                self.xcom[key] = value

        op = (PipeOperator if method == "pipe" else SesExportToS3Operator)(
            task_id="copy",
            job_id=job_id,
            s3_bucket=BUCKET,
            s3_key=key,
            aws_conn_id="bench_ses",
            dest_aws_conn_id="bench_s3",
            replace=True,
            **json.loads(os.environ.get("BENCH_OPERATOR_KWARGS") or "{}"),
        )
        baseline, cpu0 = vm_kib("VmRSS"), time.process_time()
        start = time.perf_counter()
        ti = TI()
        op.execute({"ti": ti})  # type: ignore[arg-type]
        wall = time.perf_counter() - start
        size = ti.xcom["size_bytes"]
    elif method == "naive":
        import requests

        baseline, cpu0 = vm_kib("VmRSS"), time.process_time()
        start = time.perf_counter()
        client = s3_client(s3_endpoint)
        body = requests.get(fresh_url(ses_endpoint, job_id), timeout=600).content
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
        wall = time.perf_counter() - start
        size = len(body)
        del body
    elif method == "floor":
        baseline, cpu0 = vm_kib("VmRSS"), time.process_time()
        with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
            path = Path(tmp) / "export.csv"
            start = time.perf_counter()
            client = s3_client(s3_endpoint)
            subprocess.run(["curl", "-sS", "-f", "-o", str(path), fresh_url(ses_endpoint, job_id)], check=True)
            client.upload_file(str(path), BUCKET, key)
            wall = time.perf_counter() - start
            size = path.stat().st_size
    else:
        raise SystemExit(f"unknown method {method}")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = max(vm_kib("VmHWM"), children.ru_maxrss)
    cpu = time.process_time() - cpu0 + children.ru_utime + children.ru_stime
    return {"method": method, "wall": wall, "peak_kib": peak, "baseline_kib": baseline, "size": size, "cpu": cpu}


# -- orchestration -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def moto_server_process() -> Any:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.05)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def conn_json(endpoint: str) -> str:
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"region_name": "us-east-1", "endpoint_url": endpoint},
        }
    )


def create_job(emu: Any) -> tuple[str, int]:
    client = emu.client()
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    job_id = client.create_export_job(
        ExportDataSource={
            "MessageInsightsDataSource": {
                "StartDate": start,
                "EndDate": start + dt.timedelta(days=1),
                "MaxResults": ROWS_PER_JOB,
            }
        },
        ExportDestination={"DataFormat": "CSV"},
    )["JobId"]
    emu.complete_job(job_id)
    stats = client.get_export_job(JobId=job_id)
    url = stats["ExportDestination"]["S3Url"]
    import requests

    size = int(requests.head(url, timeout=30).headers["Content-Length"])
    return job_id, size


def run_method(method: str, job_id: str, ses: str, s3: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", method, "--job-id", job_id, "--ses", ses, "--s3", s3],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{method} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


#: The wall-time ratio to the floor the copy must keep at each size (issue 21): about the largest real export, and big.
TARGETS = {4 * MIB: 1.5, 256 * MIB: 1.1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--size",
        type=lambda text: [parse_size(part) for part in text.split(",")],
        default=[4 * MIB, 256 * MIB],
        help="export file size(s), comma-separated (default 4MiB,256MiB: the sizes with a target)",
    )
    parser.add_argument("--methods", default="operator,naive,floor", help="comma-separated subset")
    parser.add_argument(
        "--operator-kwargs", default="{}", help="JSON of extra operator arguments, e.g. '{\"max_concurrency\": 8}'"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per method; the median wall time is shown")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--job-id", help=argparse.SUPPRESS)
    parser.add_argument("--ses", help=argparse.SUPPRESS)
    parser.add_argument("--s3", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.job_id, args.ses, args.s3, f"bench/{args.worker}.csv")))
        return
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    ratios = {}
    for size in args.size:
        results, actual = measure(size, methods, args.operator_kwargs, args.repeat)
        report(results, actual)
        print()
        if "operator" in results and "floor" in results:
            ratios[size] = results["operator"]["wall"] / results["floor"]["wall"]
    print(f"{'figure':<44} {'ratio':>7} {'target':>7}")
    for size, ratio in ratios.items():
        target = TARGETS.get(size)
        verdict = "" if target is None else f"{'<=' if ratio <= target else '>'} {target:.1f}"
        print(f"{f'wall time vs floor at {size / MIB:g} MiB':<44} {ratio:>7.2f} {verdict:>7}")


def measure(size: int, methods: list[str], operator_kwargs: str, repeat: int) -> tuple[dict[str, Any], int]:
    """Each method's median figures for an export file of about ``size`` bytes, and the file's exact size."""
    sys.path.insert(0, str(REPO))
    from ses_export_emulator import SesExportEmulator

    with SesExportEmulator(port=0, time_scale=0.01, create_rate_limit=None) as probe:
        _, base_size = create_job(probe)
    multiplier = max(1, math.ceil(size / base_size))
    home = tempfile.mkdtemp(prefix="bench-airflow-home-")
    with (
        SesExportEmulator(port=0, time_scale=0.01, create_rate_limit=None, row_multiplier=multiplier) as emu,
        moto_server_process() as s3,
    ):
        job_id, size = create_job(emu)
        s3_client(s3).create_bucket(Bucket=BUCKET)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW_CONN_BENCH_SES": conn_json(emu.endpoint_url),
            "AIRFLOW_CONN_BENCH_S3": conn_json(s3),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "BENCH_OPERATOR_KWARGS": operator_kwargs,
        }
        print(f"export file: {size / MIB:.1f} MiB ({size} bytes); python {sys.version.split()[0]}")
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
        for _ in range(max(1, repeat)):
            for method in methods:  # interleaved, so background load hits every method alike
                result = run_method(method, job_id, emu.endpoint_url, s3, env)
                stored = s3_client(s3).head_object(Bucket=BUCKET, Key=f"bench/{method}.csv")["ContentLength"]
                if result["size"] != size or stored != size:
                    raise SystemExit(f"{method}: copied {result['size']} / stored {stored} bytes, expected {size}")
                s3_client(s3).delete_object(Bucket=BUCKET, Key=f"bench/{method}.csv")  # moto keeps objects in memory
                runs[method].append(result)
    results = {}
    for method, rs in runs.items():
        walls = sorted(r["wall"] for r in rs)
        results[method] = {
            "wall": walls[len(walls) // 2],
            "peak_kib": max(r["peak_kib"] for r in rs),
            "baseline_kib": min(r["baseline_kib"] for r in rs),
            "cpu": sorted(r["cpu"] for r in rs)[len(rs) // 2],
        }
    print(f"{len(next(iter(runs.values())))} run(s) per method, median wall time, highest peak RSS")
    return results, size


def report(results: dict[str, dict[str, Any]], size: int) -> None:
    print(f"{'method':<10} {'wall s':>8} {'MiB/s':>8} {'CPU s':>7} {'peak RSS MiB':>13} {'copy Δ MiB':>11}")
    for method, r in results.items():
        print(
            f"{method:<10} {r['wall']:>8.2f} {size / MIB / r['wall']:>8.1f} {r['cpu']:>7.2f} "
            f"{r['peak_kib'] / 1024:>13.1f} {(r['peak_kib'] - r['baseline_kib']) / 1024:>11.1f}"
        )
    op = results.get("operator")
    if not op:
        return
    print()
    print(f"{'figure':<34} {'operator':>10} {'anchor':>10} {'ratio':>7}")
    for anchor in ("pipe", "floor", "naive"):
        a = results.get(anchor)
        if not a:
            continue
        print(f"{'wall time s vs ' + anchor:<34} {op['wall']:>10.2f} {a['wall']:>10.2f} {op['wall'] / a['wall']:>7.2f}")
        op_peak, a_peak = op["peak_kib"] / 1024, a["peak_kib"] / 1024
        print(f"{'peak RSS MiB vs ' + anchor:<34} {op_peak:>10.1f} {a_peak:>10.1f} {op_peak / a_peak:>7.2f}")
        op_d, a_d = (op["peak_kib"] - op["baseline_kib"]) / 1024, (a["peak_kib"] - a["baseline_kib"]) / 1024
        print(f"{'copy Δ RSS MiB vs ' + anchor:<34} {op_d:>10.1f} {a_d:>10.1f} {op_d / max(a_d, 0.1):>7.2f}")


if __name__ == "__main__":
    main()
