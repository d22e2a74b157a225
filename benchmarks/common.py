"""What the benchmark scripts share: running one side in its own process, alternating A and B,
seeded input, and printing the results."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent
DATA = HERE / ".data"
GENERATOR = HERE.parent / "examples" / "retail_lakehouse" / "generate.py"


def side(code: str, *args: str) -> tuple[float, float]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark side failed:\n{done.stderr[-3000:]}")
    seconds, rss_kb = done.stdout.strip().splitlines()[-1].split()
    return float(seconds), float(rss_kb) / 1024


def alternate(
    name: str, a: tuple[str, ...], b: tuple[str, ...], pairs: int, call: Callable[..., tuple[float, float]]
) -> dict[str, object]:
    """Median of per-pair ratios a/b after one warm-up pair (with ``pairs`` 0, the warm-up pair's
    ratio: a smoke run, not a measurement)."""
    warm = call(*a), call(*b)
    ratios, a_rss, b_rss = [], [], []
    for _ in range(pairs):
        a_seconds, a_mb = call(*a)
        b_seconds, b_mb = call(*b)
        ratios.append(a_seconds / b_seconds)
        a_rss.append(a_mb)
        b_rss.append(b_mb)
    if not pairs:
        ratios, a_rss, b_rss = [warm[0][0] / warm[1][0]], [warm[0][1]], [warm[1][1]]
    return ratio_row(name, ratios, a_rss, b_rss)


def ratio_row(name: str, ratios: list[float], a_mb: list[float], b_mb: list[float]) -> dict[str, object]:
    """The row of a ratio measured in pairs: its median, min and max, each side's peak memory."""
    return {
        "benchmark": name,
        "median ratio": round(statistics.median(ratios), 3),
        "min": round(min(ratios), 3),
        "max": round(max(ratios), 3),
        "A peak MB": round(max(a_mb)),
        "B peak MB": round(max(b_mb)),
    }


def generate(rows: int) -> Path:
    """Seeded ERP orders (``rows`` of them) as CSV, generated once and kept in benchmarks/.data."""
    folder = DATA / f"orders-{rows}"
    csv = folder / "erp_orders.csv"
    if not csv.exists():
        print(f"generating {rows:,} orders …", file=sys.stderr)
        DATA.mkdir(exist_ok=True)
        # Generated aside and renamed into place: a benchmark running beside this one (or after a
        # killed one) sees the whole file or none.
        with tempfile.TemporaryDirectory(dir=DATA) as scratch:
            subprocess.run(
                [
                    sys.executable,
                    str(GENERATOR),
                    "--rows",
                    str(rows),
                    "--only",
                    "erp_orders",
                    "--out",
                    scratch,
                ],
                check=True,
                stdout=sys.stderr,  # keep stdout for the figures (--json)
            )
            folder.mkdir(exist_ok=True)
            (Path(scratch) / "erp_orders.csv").replace(csv)
    return csv


def print_table(results: list[dict[str, object]]) -> None:
    header = list(results[0])
    rows: list[dict[str, object]] = [dict(zip(header, header, strict=True)), *results]
    widths = [max(len(str(r[h])) for r in rows) for h in header]
    for row in rows:
        print("  ".join(str(row[h]).ljust(w) for h, w in zip(header, widths, strict=True)))


def figure(
    name: str, value: float, unit: str = "×", *, spread: str = "", peak_mb: float | None = None
) -> dict[str, object]:
    """One measured figure in the shape ``--json`` prints and benchmarks/all.py tabulates; the
    name states its target, e.g. "(target ≤ 1.5)"."""
    return {
        "benchmark": name,
        "value": round(value, 3),
        "unit": unit,
        "spread": spread,
        "peak MB": round(peak_mb) if peak_mb is not None else None,
    }
