"""Prometheus metrics, read from the job table at scrape time (the table is the source of truth,
so the numbers survive restarts and count jobs made by every interface).

    xianying_jobs{engine,status}                 jobs by engine and state
    xianying_queue_depth{lane}                   queued jobs per lane (gpu / io)
    xianying_running_jobs{lane}                  running jobs per lane
    xianying_job_duration_seconds{engine}        histogram of run time of succeeded jobs
    xianying_provider_errors_total{engine,code}  failed cloud jobs by the vendor's error code
    xianying_api_keys_active                     active API keys
    xianying_gpu_memory_bytes{device,kind}       allocated / reserved / total, when torch is
                                                 already loaded and CUDA is in use (never
                                                 imports torch itself)
    xianying_workers{worker,host,role,state}     team mode: the fleet (and running jobs, free VRAM,
                                                 heartbeat age per worker; see app.team.fleet)
"""

from __future__ import annotations

import sys

from peewee import Case, fn
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from app.db import Job, connection
from app.team.fleet import fleet_metrics

from .models import ApiKey

BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)


class StudioCollector:
    def __init__(self, studio):
        self.studio = studio

    def collect(self):
        with connection():
            yield from self._jobs()
            yield from self._durations()
            yield from self._provider_errors()
            keys = GaugeMetricFamily("xianying_api_keys_active", "Active API keys")
            keys.add_metric([], ApiKey.select().where(ApiKey.revoked_at.is_null()).count())
            yield keys
            yield from fleet_metrics(self.studio.settings)  # team mode: xianying_workers{...} and friends
        yield from self._gpu()

    def _jobs(self):
        jobs = GaugeMetricFamily("xianying_jobs", "Jobs by engine and state", labels=["engine", "status"])
        rows = (Job.select(Job.engine, Job.status, fn.COUNT(Job.id).alias("n"))
                .group_by(Job.engine, Job.status).tuples())
        for engine, status, n in rows:
            jobs.add_metric([engine, status], n)
        yield jobs
        depth = GaugeMetricFamily("xianying_queue_depth", "Queued jobs per lane", labels=["lane"])
        running = GaugeMetricFamily("xianying_running_jobs", "Running jobs per lane", labels=["lane"])
        counts = {(lane, status): n for lane, status, n in
                  Job.select(Job.lane, Job.status, fn.COUNT(Job.id)).where(Job.status.in_(("queued", "running")))
                  .group_by(Job.lane, Job.status).tuples()}
        for lane in ("gpu", "io"):
            depth.add_metric([lane], counts.get((lane, "queued"), 0))
            running.add_metric([lane], counts.get((lane, "running"), 0))
        yield depth
        yield running

    def _durations(self):
        hist = HistogramMetricFamily("xianying_job_duration_seconds", "Run time of succeeded jobs",
                                     labels=["engine"])
        run = Job.finished_at - Job.started_at
        columns = [fn.SUM(Case(None, [(run <= b, 1)], 0)) for b in BUCKETS]
        rows = (Job.select(Job.engine, fn.COUNT(Job.id), fn.SUM(run), *columns)
                .where(Job.status == "succeeded", Job.started_at.is_null(False), Job.finished_at.is_null(False))
                .group_by(Job.engine).tuples())
        for engine, count, total, *cumulative in rows:
            buckets = [(str(float(b)), int(c or 0)) for b, c in zip(BUCKETS, cumulative, strict=True)]
            buckets.append(("+Inf", int(count)))
            hist.add_metric([engine], buckets, float(total or 0.0))
        yield hist

    def _provider_errors(self):
        errors = CounterMetricFamily("xianying_provider_errors", "Failed cloud jobs by the vendor's error code",
                                     labels=["engine", "code"])
        rows = (Job.select(Job.engine, Job.error_code, fn.COUNT(Job.id))
                .where(Job.kind == "cloud", Job.status == "failed").group_by(Job.engine, Job.error_code).tuples())
        for engine, code, n in rows:
            errors.add_metric([engine, code or "unknown"], n)
        yield errors

    def _gpu(self):
        torch = sys.modules.get("torch")
        if torch is None:
            return
        try:
            if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
                return
            gauge = GaugeMetricFamily("xianying_gpu_memory_bytes", "GPU memory", labels=["device", "kind"])
            for i in range(torch.cuda.device_count()):
                free, total = torch.cuda.mem_get_info(i)
                gauge.add_metric([str(i), "allocated"], torch.cuda.memory_allocated(i))
                gauge.add_metric([str(i), "reserved"], torch.cuda.memory_reserved(i))
                gauge.add_metric([str(i), "free"], free)
                gauge.add_metric([str(i), "total"], total)
            yield gauge
        except (RuntimeError, AttributeError):  # a driver hiccup must not break the scrape
            return


def build_registry(studio) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StudioCollector(studio))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
