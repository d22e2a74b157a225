"""Seeded generator for the retail lakehouse sample data.

Writes realistic ERP orders, CRM leads and products (CSV) and web events (JSON lines) at any
scale. A small, fixed share of rows is deliberately bad so the quarantine has work to do:
unparseable numbers, impossible dates and lines with the wrong number of columns (caught while
typing), and values that parse but break a business rule — zero or negative quantities, unknown
statuses, lead scores above 100, malformed e-mails, misspelt event types, products without a
category (caught by the expectation suites in ``quality/``). A share of orders and leads is
re-emitted later with a newer ``updated_at`` so de-duplication matters.

    python generate.py --rows 100000 --out samples/

The same seed and row count always give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

EPOCH = np.datetime64("2024-06-01T00:00:00", "s")
CHUNK = 500_000
STATUSES = np.array(["placed", "paid", "shipped", "delivered", "returned"])
CHANNELS = np.array(["web", "store", "referral", "ads", "email"])
LEAD_STATUSES = np.array(["new", "contacted", "qualified", "won", "lost"])
EVENT_TYPES = np.array(["page_view", "page_view", "page_view", "add_to_cart", "purchase"])
CATEGORIES = np.array(["grocery", "apparel", "electronics", "home", "toys", "beauty", "sports"])


@dataclass(frozen=True)
class Scale:
    orders: int
    days: int = 30
    stores: int = 50
    products: int = 500
    bad_share: float = 0.003
    update_share: float = 0.02

    @property
    def customers(self) -> int:
        return max(self.orders // 5, 10)

    @property
    def leads(self) -> int:
        return max(self.orders // 10, 10)

    @property
    def events(self) -> int:
        return max(self.orders * 2, 10)


def _timestamps(rng: np.random.Generator, n: int, days: int) -> np.ndarray:
    offsets = rng.integers(0, days * 86_400, n)
    return EPOCH + offsets.astype("timedelta64[s]")


def _ts_strings(ts: np.ndarray) -> pa.Array:
    return pc.strftime(pa.array(ts.astype("datetime64[s]")), format="%Y-%m-%d %H:%M:%S")


def _plant_bad(rng: np.random.Generator, column: pa.Array, share: float, values: list[str]) -> pa.Array:
    """Replace a seeded share of a string column with bad values."""
    mask = rng.random(len(column)) < share
    if not mask.any():
        return column
    bad = pa.array(rng.choice(values, int(mask.sum())), pa.string())
    return pc.replace_with_mask(column, pa.array(mask), bad)


def _write_csv(path: Path, chunks: Iterator[pa.Table], malformed: list[str]) -> int:
    """Write chunks as one CSV; malformed lines are spliced in between chunks."""
    rows = 0
    with path.open("wb") as out:
        for i, chunk in enumerate(chunks):
            options = pacsv.WriteOptions(include_header=(i == 0), quoting_style="needed")
            pacsv.write_csv(chunk, out, options)
            rows += chunk.num_rows
            if malformed:
                out.write((malformed.pop() + "\n").encode())
    return rows


def order_chunks(scale: Scale, seed: int) -> Iterator[pa.Table]:
    rng = np.random.default_rng(seed)
    next_id = 1
    while next_id <= scale.orders:
        n = min(CHUNK, scale.orders - next_id + 1)
        ids = np.arange(next_id, next_id + n)
        next_id += n
        order_ts = _timestamps(rng, n, scale.days)
        updated = order_ts + rng.integers(0, 3_600, n).astype("timedelta64[s]")
        quantity = rng.integers(1, 8, n)
        price = np.round(rng.gamma(2.0, 15.0, n) + 0.5, 2)
        table = {
            "order_id": pa.array(ids),
            "store_id": pa.array(rng.integers(1, scale.stores + 1, n)),
            "customer_id": pa.array(rng.integers(1, scale.customers + 1, n)),
            "product_id": pa.array(rng.integers(1, scale.products + 1, n)),
            "quantity": pc.cast(pa.array(quantity), pa.string()),
            "unit_price": pc.cast(pa.array(price), pa.string()),
            "status": pa.array(rng.choice(STATUSES[:3], n)),
            "order_ts": _ts_strings(order_ts),
            "updated_at": _ts_strings(updated),
        }
        table["quantity"] = _plant_bad(rng, table["quantity"], scale.bad_share / 3, ["n/a", "two", "3.5"])
        table["unit_price"] = _plant_bad(rng, table["unit_price"], scale.bad_share / 3, ["12,50", "$9.99"])
        table["order_ts"] = _plant_bad(
            rng, table["order_ts"], scale.bad_share / 3, ["2024-02-30 10:00:00", "yesterday"]
        )
        # Parse fine, break the orders suite.
        table["quantity"] = _plant_bad(rng, table["quantity"], scale.bad_share / 3, ["0", "-2"])
        table["status"] = _plant_bad(rng, table["status"], scale.bad_share / 3, ["unknown", "PAID"])
        yield pa.table(table)
        # Later versions of a share of these orders: a newer status and updated_at.
        upd = rng.random(n) < scale.update_share
        if upd.any():
            later = updated[upd] + rng.integers(3_600, 86_400, int(upd.sum())).astype("timedelta64[s]")
            versions = pa.table(table).filter(pa.array(upd))
            versions = versions.set_column(
                versions.schema.get_field_index("status"),
                "status",
                pa.array(rng.choice(STATUSES[2:], int(upd.sum()))),
            )
            versions = versions.set_column(
                versions.schema.get_field_index("updated_at"), "updated_at", _ts_strings(later)
            )
            yield versions


def lead_chunks(scale: Scale, seed: int) -> Iterator[pa.Table]:
    rng = np.random.default_rng(seed + 1)
    n = scale.leads
    created = _timestamps(rng, n, scale.days)
    ids = np.arange(1, n + 1)
    score = pc.cast(pa.array(rng.integers(0, 101, n)), pa.string())
    yield pa.table(
        {
            "lead_id": pa.array(ids),
            "store_id": pa.array(rng.integers(1, scale.stores + 1, n)),
            "email": _plant_bad(
                rng, pa.array([f"lead{i}@example.com" for i in ids]), scale.bad_share, ["lead@", "n/a"]
            ),
            "channel": pa.array(rng.choice(CHANNELS, n)),
            "status": pa.array(rng.choice(LEAD_STATUSES, n)),
            "score": _plant_bad(
                rng, _plant_bad(rng, score, scale.bad_share, ["high", "-"]), scale.bad_share, ["150", "-5"]
            ),
            "created_at": _ts_strings(created),
            "updated_at": _ts_strings(created + rng.integers(0, 86_400, n).astype("timedelta64[s]")),
        }
    )


def product_table(scale: Scale, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed + 2)
    n = scale.products
    ids = np.arange(1, n + 1)
    price = pc.cast(pa.array(np.round(rng.gamma(2.0, 15.0, n) + 0.5, 2)), pa.string())
    return pa.table(
        {
            "product_id": pa.array(ids),
            "name": pa.array([f"Product {i}" for i in ids]),
            "category": _plant_bad(rng, pa.array(rng.choice(CATEGORIES, n)), 0.01, [""]),
            "price": _plant_bad(rng, price, 0.01, ["free"]),
            "updated_at": _ts_strings(np.full(n, EPOCH)),
        }
    )


def write_events(path: Path, scale: Scale, seed: int) -> int:
    """Web events as JSON lines, with a few broken lines."""
    rng = np.random.default_rng(seed + 3)
    n = scale.events
    ts = np.sort(_timestamps(rng, n, scale.days))
    ts_str = _ts_strings(ts).to_pylist()
    sessions = rng.integers(1, max(n // 6, 2), n)
    customers = rng.integers(1, scale.customers + 1, n)
    anonymous = rng.random(n) < 0.3
    stores = rng.integers(1, scale.stores + 1, n)
    products = rng.integers(1, scale.products + 1, n)
    kinds = rng.choice(EVENT_TYPES, n)
    kinds[rng.random(n) < scale.bad_share] = "clik"  # a misspelt event type: parses, breaks the suite
    broken = set(rng.choice(n, max(int(n * scale.bad_share), 1), replace=False).tolist())
    with path.open("w") as out:
        for i in range(n):
            if i in broken:
                out.write(f'{{"event_id": {i + 1}, "session_id": "s{sessions[i]}", "ts": \n')
                continue
            record = {
                "event_id": i + 1,
                "session_id": f"s{sessions[i]}",
                "customer_id": None if anonymous[i] else int(customers[i]),
                "store_id": int(stores[i]),
                "event_type": str(kinds[i]),
                "product_id": int(products[i]),
                "ts": ts_str[i],
            }
            out.write(json.dumps(record) + "\n")
    return n


def generate(out: Path, rows: int, seed: int = 7, days: int = 30) -> dict[str, int]:
    """Write the four sample files into ``out``; returns rows written per file."""
    out.mkdir(parents=True, exist_ok=True)
    scale = Scale(orders=rows, days=days)
    malformed = ["999999999,1,2", "999999998,1,2,3,4,5,6,7,8,9,10"]
    return {
        "erp_orders.csv": _write_csv(out / "erp_orders.csv", order_chunks(scale, seed), malformed),
        "crm_leads.csv": _write_csv(out / "crm_leads.csv", lead_chunks(scale, seed), ["1,2"]),
        "products.csv": _write_csv(out / "products.csv", iter([product_table(scale, seed)]), []),
        "web_events.jsonl": write_events(out / "web_events.jsonl", scale, seed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=2_000, help="number of ERP orders (other files scale with it)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "samples", help="output folder")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument("--days", type=int, default=30, help="days of history from 2024-06-01")
    parser.add_argument(
        "--only", choices=["erp_orders"], help="write only this file (benchmarks use it to save time)"
    )
    args = parser.parse_args()
    if args.only == "erp_orders":
        args.out.mkdir(parents=True, exist_ok=True)
        written = {
            "erp_orders.csv": _write_csv(
                args.out / "erp_orders.csv",
                order_chunks(Scale(orders=args.rows, days=args.days), args.seed),
                ["999999999,1,2"],
            )
        }
    else:
        written = generate(args.out, args.rows, args.seed, args.days)
    for name, count in written.items():
        print(f"{name}: {count:,} rows")


if __name__ == "__main__":
    main()
