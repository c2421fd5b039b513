"""Regenerate examples/burn-in-24h.csv: a 24 h burn-in of the k2 stack in the step doc's own format.

The step doc's loop appends `docker stats --no-stream --format "{{.Name}},{{.CPUPerc}},{{.MemUsage}},{{.MemPerc}}"`
every 5 minutes: 288 rounds of 13 containers, no header, no timestamps. The figures are simulated with a fixed
seed: steady feed handlers, a busy ClickHouse, Spark idle but for its 15-minute offloads and a maintenance run two
hours in, and one round in which Grafana was not running. Every service stays within its budget, so
`pytest --k2-replay=examples/burn-in-24h.csv` passes; the tests of the plugin build over-budget data of their own.

    python examples/make_burn_in_csv.py > examples/burn-in-24h.csv
"""

from __future__ import annotations

import sys

import numpy as np

ROUNDS = 288  # 24 h at the loop's `sleep 300`
HOST_RAM = 23.54 * 2**30
MiB = 2**20

# service: (mean cores, jitter, RAM start MiB, RAM end MiB)
PROFILE = {
    "feed-handler-binance": (0.18, 0.04, 140, 168),
    "feed-handler-kraken": (0.15, 0.04, 131, 150),
    "feed-handler-coinbase": (0.16, 0.04, 128, 147),
    "redpanda": (0.95, 0.20, 2650, 3010),
    "clickhouse": (2.30, 0.45, 5400, 6650),
    "spark-iceberg": (0.08, 0.03, 1500, 1700),
    "prefect-server": (0.12, 0.03, 290, 318),
    "prefect-worker": (0.06, 0.02, 210, 260),
    "prefect-db": (0.05, 0.02, 180, 205),
    "minio": (0.09, 0.03, 420, 510),
    "iceberg-rest": (0.04, 0.01, 300, 322),
    "prometheus": (0.14, 0.03, 330, 402),
    "grafana": (0.03, 0.01, 96, 118),
}


def docker_size(n_bytes: float) -> str:
    """docker stats' own spelling: four significant digits and an IEC unit."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024 or unit == "GiB":
            return f"{n_bytes:.4g}{unit}"
        n_bytes /= 1024
    raise AssertionError


def main() -> None:
    rng = np.random.default_rng(20260218)
    minutes = np.arange(ROUNDS) * 5
    out = sys.stdout
    for i in range(ROUNDS):
        for service, (mean, jitter, ram_start, ram_end) in PROFILE.items():
            name = f"k2-{service}-1"
            if service == "grafana" and i == 140:
                out.write(f"{name},0.00%,0B / 0B,0.00%\n")
                continue
            cores = max(0.0, rng.normal(mean, jitter))
            if service == "spark-iceberg":
                if minutes[i] % 15 == 0:
                    cores = rng.uniform(1.2, 1.7)  # an offload caught in flight
                if 120 <= minutes[i] < 130:
                    cores = rng.uniform(3.0, 3.4)  # the maintenance run: a brief spike < 2x budget
            ram = (ram_start + (ram_end - ram_start) * i / (ROUNDS - 1)) * MiB * rng.uniform(0.98, 1.02)
            out.write(f"{name},{cores * 100:.2f}%,{docker_size(ram)} / {docker_size(HOST_RAM)},"
                      f"{ram / HOST_RAM * 100:.2f}%\n")


if __name__ == "__main__":
    main()
