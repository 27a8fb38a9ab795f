"""CPU of the cloud loop's HTTP alone (issue 18): aiohttp (engines/cloud/aio.py) against the httpx async
client it replaced, measured in the same run.

A loopback vendor runs in its own process (asyncio, keep-alive, every answer after ``--latency`` s), so
its CPU is not counted. This process plays ``--jobs`` cloud jobs at once, each as a chain does it: a
JSON create (POST), a poll (GET) and a download of a ``--size`` byte file (streamed GET). It measures
the CPU time of this process (``time.process_time``) for all of them, one client kind after the
other, ``--rounds`` times alternating, and prints the medians per job.

    python bench/cloud_http.py [--jobs 500] [--latency 0.5] [--size 20000] [--rounds 5]

``httpx``: ``httpx.AsyncClient`` pools as before this change (64 of them, a task keeps its own).
``aio``: ``aio.send_json`` and ``aio.stream``, the code the chains run now.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ANSWER = (b'{"request_id":"0f8fad5b-d9cb-469f-a165-70867728950e","output":{"task_id":'
          b'"1c4e8a52-5d0e-4f4b-9b59-2c6f0e0e7a11","task_status":"RUNNING"}}')


def serve(conn, latency: float, size: int) -> None:
    """Child process: a keep-alive HTTP/1.1 server that answers every request after ``latency``."""
    file = b"\x00\x00\x00\x18ftypisom" + bytes(size)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = next((int(v) for k, _, v in (line.partition(":") for line in lines[1:])
                               if k.strip().lower() == "content-length"), 0)
                if length:
                    await reader.readexactly(length)
                await asyncio.sleep(latency)
                body, kind = (file, b"video/mp4") if lines[0].split()[1].startswith("/files/") else (ANSWER, b"application/json")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (kind, len(body)) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
        conn.send(server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        os._exit(0)  # at once: a teardown would cancel every open connection's handler, noisily

    asyncio.run(main())


def httpx_clients() -> list:
    """The 64 pools the loop had before, built once (sharing one TLS context, as it did)."""
    import httpx

    from engines.cloud import http

    tls = httpx.create_ssl_context(trust_env=True)
    return [httpx.AsyncClient(timeout=http.timeouts(), headers={"User-Agent": http.USER_AGENT}, verify=tls,
                              limits=httpx.Limits(max_connections=512, max_keepalive_connections=32),
                              follow_redirects=True, trust_env=True) for _ in range(64)]


CLIENTS: list = []


async def with_httpx(base: str, jobs: int) -> None:
    clients = CLIENTS

    async def job(i: int) -> None:
        client = clients[i % len(clients)]
        answer = await client.post(f"{base}/api/v1/services/aigc/video-generation/video-synthesis",
                                   json={"model": "wan2.6-t2v", "input": {"prompt": "剑仙御剑穿过云海"}},
                                   headers={"Authorization": "Bearer sk-bench", "X-DashScope-Async": "enable"})
        answer.json()
        (await client.get(f"{base}/api/v1/tasks/{i}", headers={"Authorization": "Bearer sk-bench"})).json()
        async with client.stream("GET", f"{base}/files/{i}.mp4?Expires=1&Signature=x") as response:
            async for _ in response.aiter_bytes(1 << 16):
                pass

    await asyncio.gather(*(job(i) for i in range(jobs)))


async def with_aio(base: str, jobs: int) -> None:
    from engines.cloud import aio

    async def job(i: int) -> None:
        await aio.send_json("POST", f"{base}/api/v1/services/aigc/video-generation/video-synthesis", vendor="bench",
                            json={"model": "wan2.6-t2v", "input": {"prompt": "剑仙御剑穿过云海"}},
                            headers={"Authorization": "Bearer sk-bench", "X-DashScope-Async": "enable"})
        await aio.send_json("GET", f"{base}/api/v1/tasks/{i}", vendor="bench", headers={"Authorization": "Bearer sk-bench"})
        async with aio.stream(f"{base}/files/{i}.mp4?Expires=1&Signature=x") as response:
            async for _ in response.aiter_bytes(1 << 16):
                pass

    await asyncio.gather(*(job(i) for i in range(jobs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    os.environ["XIANYING_CLOUD_CONCURRENCY"] = str(args.jobs * 2)
    from engines.cloud import aio

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    vendor = ctx.Process(target=serve, args=(child, args.latency, args.size), daemon=True)
    vendor.start()
    base = f"http://127.0.0.1:{parent.recv()}"
    CLIENTS[:] = httpx_clients()
    kinds = {"httpx": with_httpx, "aio": with_aio}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    wall: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        for _ in range(args.rounds + 1):  # the first round warms both up and is not counted
            for name, fn in kinds.items():
                c0, t0 = time.process_time(), time.perf_counter()
                aio.submit(fn(base, args.jobs)).result(600)
                cpu[name].append(1000 * (time.process_time() - c0) / args.jobs)
                wall[name].append(time.perf_counter() - t0)
    finally:
        parent.send("stop")
        aio.shutdown()
        vendor.join(5)
    floor = 3 * args.latency
    print(f"{args.jobs} jobs at once, each a create, a poll and a {args.size}-byte download; answers after "
          f"{args.latency:g} s (the vendor alone: {floor:g} s); medians of {args.rounds} rounds")
    for name in kinds:
        print(f"  {name:<6} CPU per job {statistics.median(cpu[name][1:]):6.2f} ms   "
              f"wall {statistics.median(wall[name][1:]):5.2f} s   (rounds: "
              + ", ".join(f"{v:.2f}" for v in cpu[name][1:]) + " ms)")
    ratio = statistics.median(cpu["aio"][1:]) / statistics.median(cpu["httpx"][1:])
    print(f"  aio / httpx CPU per job: {ratio:.2f}x")


if __name__ == "__main__":
    main()
