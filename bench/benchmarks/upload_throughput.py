"""Upload throughput: segments uploaded with tus to ``custos-collector serve`` — streamed, hashed
(sha256), written and made durable (fdatasync), verified against a signed manifest, stored and
receipted — against the slowest of the physical stages that work needs, measured in the same
run on the same machine: sha256 (``openssl speed``), a durable write into the collector's data
directory (``dd … conv=fdatasync``) and loopback TCP (a ``sendfile`` → ``recv_into`` pair).

The client (``bench.tusclient``) sends each file with one ``sendfile``, so it costs the machine
as little as a client can; it still shares the two cores with the server. The references run
before and after the uploads, and the faster of the two runs of each counts, so noise from
other work on the machine makes the ratio smaller, not larger.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench.core import BenchContext, Goal, Quantity, Row
from bench.physical import disk_rate, loopback_rate, sha256_rate
from bench.procstat import cpu_of
from bench.rig import start_broker, start_collector
from bench.tusclient import SegmentStream, UploadTiming, upload, write_segment

DEVICE = "bench-upload"
MB = 1_000_000
MIB = 1024 * 1024
HASH_BLOCK = 8 * MIB
"""The size of the buffers the collector hashes (``collector.evidence.stream.BATCH_BYTES``)."""
CORES = os.cpu_count() or 1


@dataclass(frozen=True)
class UploadThroughput:
    name: str = "upload-throughput"
    description: str = (
        "tus upload to the collector (stream, sha256, write, fdatasync, verify, receipt) "
        "vs the slowest of openssl sha256, dd conv=fdatasync, loopback"
    )

    def run(self, ctx: BenchContext) -> list[Row]:
        size = ctx.scale(256, 32) * MIB
        uploads = ctx.scale(4, 2)
        broker = start_broker(ctx)
        collector = start_collector(ctx, broker, [DEVICE])
        segment = ctx.workdir / "segment.bin"
        write_segment(segment, size)
        stages: dict[str, list[float]] = {
            "sha256": [], "disk": [], "disk_direct": [], "loopback": [],
        }  # fmt: skip

        def references() -> None:
            stages["sha256"].append(sha256_rate(ctx, block=HASH_BLOCK, seconds=ctx.scale(2, 1)))
            for stage, direct in (("disk", False), ("disk_direct", True)):
                rate = disk_rate(ctx, collector.data_dir, ctx.scale(512, 64), direct=direct)
                stages[stage].append(rate)
            stages["loopback"].append(loopback_rate(segment))

        references()
        stream = SegmentStream(DEVICE)
        timings: list[UploadTiming] = []
        server_cpu = 0.0
        for _ in range(uploads):
            signed = stream.next(size, write_segment(segment, size))  # new content each time
            before = cpu_of(collector.pid).total_s
            timings.append(upload("127.0.0.1", collector.port, segment, signed))
            server_cpu += cpu_of(collector.pid).total_s - before
        references()
        best = {stage: max(rates) for stage, rates in stages.items()}
        # The disk's limit is its faster durable path: the collector writes with O_DIRECT, which
        # beats dd through the page cache on this machine's disk.
        best["disk"] = max(best["disk"], best.pop("disk_direct"))
        slowest = min(best, key=lambda stage: best[stage])
        seconds = sum(t.seconds for t in timings)
        gigabytes = uploads * size / 1e9
        rate = uploads * size / seconds
        cpu_per_gb = (server_cpu + sum(t.client_cpu_s for t in timings)) / gigabytes
        ctx.log(f"    upload {rate / MB:,.0f} MB/s; {slowest} {best[slowest] / MB:,.0f} MB/s")
        return [
            Row(
                name="upload throughput / slowest stage",
                figure=Quantity(rate / MB, "MB/s", "tus upload, receipted"),
                reference=Quantity(best[slowest] / MB, "MB/s", slowest),
                goal=Goal(">=", 0.85),
                details={
                    "uploads": uploads,
                    "upload_mib": size // MIB,
                    "upload_mb_per_s_each": ", ".join(
                        f"{t.size / t.seconds / MB:.0f}" for t in timings
                    ),
                    "server_tail_ms_max": round(max(t.answer_wait_s for t in timings) * 1000, 1),
                    "server_cpu_s_per_gb": round(server_cpu / gigabytes, 2),
                    "client_cpu_s_per_gb": round(
                        sum(t.client_cpu_s for t in timings) / gigabytes, 2
                    ),
                    # What the CPUs allow if server and client ran perfectly in parallel on every
                    # core and nothing else ran: the ceiling this machine puts on the figure.
                    "cpu_ceiling_mb_per_s": round(CORES / cpu_per_gb * 1e9 / MB),
                    **{
                        f"{stage}_mb_per_s": ", ".join(f"{r / MB:.0f}" for r in rates)
                        for stage, rates in stages.items()
                    },
                    "slowest_stage": slowest,
                },
            )
        ]


BENCHMARK = UploadThroughput()
