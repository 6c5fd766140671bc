#!/usr/bin/env python3
"""Writes rocmforge.json, the Grafana dashboard. Edit the panels here, then run
`python3 deploy/grafana/make_dashboard.py` and commit both files. Every metric
queried must be in docs/metrics.md (scripts/validate-deploy.sh checks it against
real scrapes)."""
import json
import os

DS = {"type": "prometheus", "uid": "${datasource}"}


def q(expr, legend):
    return {"expr": expr, "legendFormat": legend, "datasource": DS}


def quantiles(metric, label=""):
    by = "le" + (", " + label if label else "")
    return [q(f'histogram_quantile({p}, sum by ({by}) (rate({metric}_bucket[$__rate_interval])))',
              f"p{int(p * 100)}" + (f" {{{{{label}}}}}" if label else ""))
            for p in (0.5, 0.95, 0.99)]


def panel(pid, title, targets, x, y, w=12, h=8, unit="short", kind="timeseries", desc=""):
    return {
        "id": pid, "type": kind, "title": title, "description": desc, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [dict(t, refId=chr(65 + i)) for i, t in enumerate(targets)],
    }


def row(pid, title, y):
    return {"id": pid, "type": "row", "title": title, "collapsed": False,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []}


panels = [
    row(1, "Traffic", 0),
    panel(2, "Requests by outcome (router)",
          [q('sum by (outcome) (rate(rocmforge_router_requests_total[$__rate_interval]))', "{{outcome}}")],
          0, 1, unit="reqps", desc="Requests as clients see them, by final status."),
    panel(3, "Finished requests by reason (workers)",
          [q('sum by (finish_reason) (rate(rocmforge_requests_total[$__rate_interval]))', "{{finish_reason}}")],
          12, 1, unit="reqps"),
    panel(4, "Tokens per second",
          [q('sum(rate(rocmforge_generation_tokens_total[$__rate_interval]))', "generated"),
           q('sum(rate(rocmforge_prompt_tokens_total[$__rate_interval]))', "prompt"),
           q('sum(rate(rocmforge_router_relayed_tokens_total[$__rate_interval]))', "relayed by routers")],
          0, 9, unit="short"),
    panel(5, "Running and waiting requests",
          [q('sum(rocmforge_requests_running)', "running"), q('sum(rocmforge_requests_waiting)', "waiting")],
          12, 9),
    row(6, "Latency", 17),
    panel(7, "Time to first token (router)", quantiles("rocmforge_router_time_to_first_token_seconds"), 0, 18, w=8, unit="s"),
    panel(8, "Inter-token latency (workers)", quantiles("rocmforge_inter_token_latency_seconds"), 8, 18, w=8, unit="s"),
    panel(9, "End-to-end latency (router)", quantiles("rocmforge_router_request_duration_seconds"), 16, 18, w=8, unit="s"),
    panel(10, "Queue time (workers)", quantiles("rocmforge_queue_time_seconds"), 0, 26, w=8, unit="s"),
    panel(11, "Engine step time", quantiles("rocmforge_step_duration_seconds"), 8, 26, w=8, unit="s"),
    panel(12, "Batch size per step (sequences; tokens incl. prefill chunks)",
          [dict(t, legendFormat="seqs " + t["legendFormat"]) for t in quantiles("rocmforge_batch_size")[::2]] +
          [dict(t, legendFormat="tokens " + t["legendFormat"]) for t in quantiles("rocmforge_batch_tokens")[::2]],
          16, 26, w=8),
    row(13, "KV cache", 34),
    panel(14, "KV cache usage", [q('rocmforge_kv_cache_usage_ratio', "{{instance}}")], 0, 35, w=8, unit="percentunit"),
    panel(15, "Prefix cache hit ratio",
          [q('sum(rate(rocmforge_prefix_cache_hit_tokens_total[$__rate_interval])) / '
             'clamp_min(sum(rate(rocmforge_prompt_tokens_total[$__rate_interval])), 1e-9)', "windowed"),
           q('avg(rocmforge_prefix_cache_hit_ratio)', "since start (avg over workers)")],
          8, 35, w=8, unit="percentunit"),
    panel(16, "Preemptions", [q('sum by (instance) (rate(rocmforge_preemptions_total[$__rate_interval]))', "{{instance}}")],
          16, 35, w=8, unit="ops"),
    row(17, "Workers", 43),
    panel(18, "Worker health (router view)", [q('max by (worker) (rocmforge_router_worker_healthy)', "{{worker}}")],
          0, 44, w=8, desc="1 = SERVING, 0 = not serving, draining or unreachable"),
    panel(19, "Worker load (running + waiting)", [q('max by (worker) (rocmforge_router_worker_load)', "{{worker}}")],
          8, 44, w=8),
    panel(20, "Streams in flight per worker", [q('sum by (worker) (rocmforge_router_worker_in_flight)', "{{worker}}")],
          16, 44, w=8),
    panel(21, "Device memory used",
          [q('rocmforge_device_memory_used_bytes / rocmforge_device_memory_total_bytes', "{{instance}} {{device}}")],
          0, 52, w=8, unit="percentunit"),
    panel(22, "Placement decisions",
          [q('sum by (decision) (rate(rocmforge_router_placements_total[$__rate_interval]))', "{{decision}}")],
          8, 52, w=8, unit="ops"),
    panel(23, "Workers draining", [q('sum(rocmforge_worker_draining)', "draining")], 16, 52, w=8),
    panel(24, "Model served", [q('rocmforge_model_info', "{{model}} {{quantization}} on {{device}}")],
          0, 60, w=24, h=5, kind="table"),
    panel(25, "Engine step time by phase (share of wall time)",
          [q('sum by (instance, phase) (rate(rocmforge_step_phase_seconds_total[$__rate_interval]))',
             "{{instance}} {{phase}}")],
          0, 65, w=24, unit="percentunit",
          desc="plan: scheduling and building the batch; forward: host preparation and kernel enqueue, "
               "then the previous step's tokens handed to their streams; sample: waits for the device, "
               "then samples; stream: committing the step (detokenizing, stop checks). On a GPU worker "
               "plan + stream is host time between two steps' device work."),
]

dashboard = {
    "uid": "rocmforge", "title": "ROCmForge", "tags": ["rocmforge", "llm"],
    "timezone": "browser", "schemaVersion": 39, "version": 1, "refresh": "30s",
    "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": [{
        "name": "datasource", "label": "Data source", "type": "datasource",
        "query": "prometheus", "current": {}, "hide": 0, "refresh": 1,
    }]},
    "annotations": {"list": []},
    "panels": panels,
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rocmforge.json")
with open(out, "w") as f:
    json.dump(dashboard, f, indent=2)
    f.write("\n")
print("wrote", out)
