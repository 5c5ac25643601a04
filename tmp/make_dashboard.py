import json

DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
panels = []
y = 0


def row(title):
    global y
    panels.append({"type": "row", "title": title, "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                   "id": len(panels) + 1, "panels": []})
    y += 1


def ts(title, exprs, unit="short", x=0, w=12, h=8, description="", thresholds=None, stack=False):
    global y
    panel = {
        "type": "timeseries", "title": title, "description": description, "datasource": DS,
        "id": len(panels) + 1, "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 10,
                                                                "stacking": {"mode": "normal" if stack else "none"}}},
                        "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
                    "tooltip": {"mode": "multi"}},
        "targets": [{"datasource": DS, "refId": chr(65 + n), "expr": expr, "legendFormat": legend}
                    for n, (expr, legend) in enumerate(exprs)],
    }
    if thresholds:
        panel["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": [
            {"color": "green", "value": None}, {"color": "red", "value": thresholds}]}
        panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] = {"mode": "line"}
    panels.append(panel)
    if x + w >= 24:
        y += h


row("Callbacks in")
ts("Callbacks stored per second, by platform", [('sum by (platform) (rate(siyu_callbacks_received_total[1m]))', "{{platform}}")],
   "reqps", 0, 12, description="Callbacks verified, stored in the inbox and acknowledged. A burst (a store's QR code) shows here first.")
ts("Callbacks refused per second, by reason", [('sum by (platform, reason) (rate(siyu_callbacks_refused_total[5m]))', "{{platform}} {{reason}}")],
   "reqps", 12, 12, description="bad_signature: a forged callback or a token that differs from the platform console's; undecryptable: the AES key or corp id differs.")
ts("Inbox: rows waiting", [('max(siyu_inbox_pending)', "pending"), ('max(siyu_inbox_failed)', "parked after failing")],
   "short", 0, 12, description="Read from the database at each scrape: the same from every process, hence max().")
ts("Inbox: age of the oldest waiting row", [('max(siyu_inbox_oldest_pending_age_seconds)', "oldest pending")], "s", 12, 12,
   thresholds=20, description="Above a few seconds the workers are behind; a welcome code lives 20 s.")
row("Handling")
ts("Handling latency by update kind (p50, p99)", [
    ('histogram_quantile(0.5, sum by (le, kind) (rate(siyu_update_handling_seconds_bucket[5m])))', "p50 {{kind}}"),
    ('histogram_quantile(0.99, sum by (le, kind) (rate(siyu_update_handling_seconds_bucket[5m])))', "p99 {{kind}}"),
], "s", 0, 12)
ts("Updates handled and failed per second", [
    ('sum by (kind) (rate(siyu_update_handling_seconds_count[1m]))', "{{kind}}"),
    ('sum by (kind) (rate(siyu_update_handling_failures_total[5m]))', "failed {{kind}}"),
], "ops", 12, 12)
row("Sending")
ts("Outbox: rows waiting, by status and route", [('max by (status, route) (siyu_outbox_rows)', "{{status}} {{route}}")],
   "short", 0, 12, stack=True)
ts("Outbox: how late the oldest due row is", [('max(siyu_outbox_oldest_due_age_seconds)', "oldest due")], "s", 12, 12, thresholds=60)
ts("Send latency by route (p50, p99)", [
    ('histogram_quantile(0.5, sum by (le, route) (rate(siyu_send_seconds_bucket[5m])))', "p50 {{route}}"),
    ('histogram_quantile(0.99, sum by (le, route) (rate(siyu_send_seconds_bucket[5m])))', "p99 {{route}}"),
], "s", 0, 12, description="A slow platform API shows here: one send, the client's own retries included.")
ts("Send errors per second, by route and errcode", [
    ('sum by (route, errcode) (rate(siyu_send_errors_total[5m]))', "{{route}} {{errcode}}"),
], "ops", 12, 12, description="WeCom errcodes (45009 frequency, 41050 welcome code expired, 60020 untrusted IP …) or timeout, http_5xx, rate_limited.")
ts("Sends per second, by route and outcome", [('sum by (route, outcome) (rate(siyu_sends_total[1m]))', "{{route}} {{outcome}}")],
   "ops", 0, 12)
ts("Outbox: failed and held over the last day", [('max by (status, route) (siyu_outbox_given_up_rows)', "{{status}} {{route}}")],
   "short", 12, 12)
row("Welcomes")
ts("Welcome latency: callback to send_welcome_msg (p50, p99)", [
    ('histogram_quantile(0.5, sum by (le) (rate(siyu_welcome_latency_seconds_bucket[5m])))', "p50"),
    ('histogram_quantile(0.99, sum by (le) (rate(siyu_welcome_latency_seconds_bucket[5m])))', "p99"),
], "s", 0, 12, thresholds=20, description="WeCom takes a welcome only within 20 s of the new-contact event.")
ts("Welcomes expired (per hour)", [('sum(increase(siyu_welcomes_expired_total[1h]))', "expired")], "short", 12, 12,
   description="Welcomes WeCom refused as too late: each is a new customer who got no greeting.")
row("Policy, scheduler, database")
ts("Delivery holds per minute, by reason", [('sum by (reason) (rate(siyu_delivery_holds_total[5m])) * 60', "{{reason}}")],
   "short", 0, 12, description="opt_out, weekly_cap and monthly_cap hold messages back; quiet_hours defers them to the morning.")
ts("Scheduler leader", [('sum(siyu_scheduler_leader)', "processes leading")], "short", 12, 12,
   description="Exactly one process should lead the scheduled jobs.")
ts("Scheduled jobs: time since the last run", [('time() - max by (job) (siyu_job_last_run_timestamp_seconds)', "{{job}}")],
   "s", 0, 12)
ts("Scheduled jobs: last run's duration", [('max by (job) (siyu_job_last_duration_seconds)', "{{job}}")], "s", 12, 12)
ts("Database connections in use", [('siyu_db_pool_in_use', "{{instance}} {{pool}}"), ('siyu_db_pool_size', "size {{instance}} {{pool}}")],
   "short", 0, 12)
ts("Process CPU and memory", [('rate(process_cpu_seconds_total{job="siyu"}[1m])', "cpu {{instance}}")], "percentunit", 12, 12)

dashboard = {
    "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "pluginId": "prometheus",
                  "pluginName": "Prometheus"}],
    "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
                   {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
                   {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""}],
    "title": "siyu", "uid": "siyu-overview", "description": "siyu: callbacks, handling, sending, welcomes, policy, scheduler (docs/deploy.md)",
    "tags": ["siyu"], "timezone": "browser", "schemaVersion": 39, "version": 1, "editable": True,
    "refresh": "10s", "time": {"from": "now-1h", "to": "now"}, "templating": {"list": []}, "annotations": {"list": []},
    "panels": panels,
}
print(json.dumps(dashboard, ensure_ascii=False, indent=2))
