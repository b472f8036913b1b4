"""Upload of a large dataset over loopback: client memory growth and throughput.

Writes a chat JSONL file of ``--mb`` megabytes (default 1024), starts ``synth-lab serve`` on a
free loopback port, and uploads the file with ``SynthClient.files.upload`` while a thread
samples the RSS of the client and of
the server every 5 ms. Prints one markdown row: size, seconds, MB/s,
client RSS before and peak growth, and the server's time to validate the file after the
upload. Run from the repository root::

    python benchmarks/remote_upload.py --mb 1024
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from synth_lab.client import SynthClient
from synth_lab.server.process import ServerProcess

_LINE = (
    b'{"messages":[{"role":"system","content":"You are a helpful assistant."},'
    b'{"role":"user","content":"Question %08d: explain the training loss of step %d."},'
    b'{"role":"assistant","content":"%s"}]}\n'
)


def write_dataset(path: Path, megabytes: int) -> int:
    """A valid chat JSONL file of about ``megabytes`` MB; returns the record count."""
    target = megabytes * 1024 * 1024
    written = records = 0
    with path.open("wb", buffering=1 << 20) as handle:
        while written < target:
            line = _LINE % (records, records % 997, b"The loss went down. " * (10 + records % 20))
            handle.write(line)
            written += len(line)
            records += 1
    return records


class RssSampler(threading.Thread):
    """Samples the RSS of this process and of ``other`` until finished; keeps the peaks."""

    def __init__(self, other: int, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.processes = [psutil.Process(), psutil.Process(other)]
        self.interval = interval
        self.peaks = [p.memory_info().rss for p in self.processes]
        self.before = list(self.peaks)
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            for i, process in enumerate(self.processes):
                self.peaks[i] = max(self.peaks[i], process.memory_info().rss)
            time.sleep(self.interval)

    def finish(self) -> list[int]:
        self._done.set()
        self.join()
        return self.peaks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=1024, help="file size in MB")
    parser.add_argument("--dir", help="where to write the file and the server's data")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="synth-lab-upload-", dir=args.dir))
    data = root / "train.jsonl"
    records = write_dataset(data, args.mb)
    size = data.stat().st_size
    limit = str(max(args.mb * 2, 64))
    server = ServerProcess(root / "server", extra_args=["--max-upload-mb", limit])
    with server, SynthClient(api_key=server.api_key, base_url=server.url, dotenv=None) as client:
        client.jobs.list()  # connections and imports warm before the baseline
        assert server.process is not None
        sampler = RssSampler(server.process.pid)
        before, server_before = sampler.before
        sampler.start()
        began = time.perf_counter()
        doc = client.files.upload(data, wait=False)
        seconds = time.perf_counter() - began
        peak, server_peak = sampler.finish()
        checked = time.perf_counter()
        final = client.files.wait_ready(doc["id"], timeout=3600, poll_interval=0.5)
        validation = time.perf_counter() - checked
    assert doc["bytes"] == size, doc
    print(f"records: {records:,}; status after validation: {final['status']}", file=sys.stderr)
    print("| file | upload (s) | MB/s | client RSS before (MB) | client RSS growth (MB) "
          "| server RSS growth (MB) | server validation after upload (s) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {size / 1e6:,.0f} MB | {seconds:.1f} | {size / 1e6 / seconds:,.0f} "
        f"| {before / 1e6:.0f} | {(peak - before) / 1e6:.1f} "
        f"| {(server_peak - server_before) / 1e6:.1f} | {validation:.1f} |"
    )
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
