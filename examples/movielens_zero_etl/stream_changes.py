"""A steady stream of realistic changes to the MovieLens database, to watch the mirror follow.

    python stream_changes.py --seconds 30 --rate 50 --seed 7

Each transaction makes one to four changes, drawn from: new ratings, re-ratings (a new rating and
`rated_at`), deleted ratings, new tags, deleted tags and, rarely, a retitled movie ("Matrix, The
(1999)" becomes "The Matrix (1999)"). Ctrl-C or SIGTERM stops it early; either way it prints how
many changes of each kind it committed and the tables' row counts. The same seed on the same
database makes the same changes in the same order. The database is `--dsn`, by default
$MOVIELENS_DSN.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg

Connection = psycopg.Connection[Any]

# Half-star ratings in the proportions of the dataset (percent): mostly 3 to 4 stars.
STARS = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]
WEIGHTS = [1, 3, 2, 7, 6, 20, 13, 27, 8, 13]
RETITLE = r"^(.*), (The|A|An) (\(\d{4}\))$"  # "Matrix, The (1999)" → "The Matrix (1999)"


class Stream:
    """The kinds of change, one statement each; each says whether it changed a row."""

    def __init__(self, con: Connection, rng: random.Random) -> None:
        self.con, self.rng = con, rng
        self.users: list[int] = [r[0] for r in con.execute("SELECT DISTINCT user_id FROM ratings ORDER BY 1")]
        self.vocabulary: list[str] = [r[0] for r in con.execute("SELECT DISTINCT tag FROM tags ORDER BY 1")]
        self.next_user = max(self.users, default=0) + 1

    def user(self) -> int:
        if self.rng.random() < 0.02:  # now and then, somebody new
            self.users.append(self.next_user)
            self.next_user += 1
        return self.rng.choice(self.users)

    def stars(self) -> float:
        return self.rng.choices(STARS, WEIGHTS)[0]

    def new_rating(self) -> bool:
        """A rating of a movie the user has not rated yet."""
        user = self.user()
        inserted = self.con.execute(
            """INSERT INTO ratings
               SELECT %(user)s, movie_id, %(stars)s, now() FROM movies
               WHERE movie_id NOT IN (SELECT movie_id FROM ratings WHERE user_id = %(user)s)
               ORDER BY random() LIMIT 1""",
            {"user": user, "stars": self.stars()},
        )
        return inserted.rowcount == 1

    def re_rating(self) -> bool:
        updated = self.con.execute(
            """UPDATE ratings SET rating = %s, rated_at = now()
               WHERE (user_id, movie_id) = (SELECT user_id, movie_id FROM ratings
                                            WHERE user_id = %s ORDER BY random() LIMIT 1)""",
            (self.stars(), self.rng.choice(self.users)),
        )
        return updated.rowcount == 1

    def deleted_rating(self) -> bool:
        deleted = self.con.execute(
            """DELETE FROM ratings
               WHERE (user_id, movie_id) = (SELECT user_id, movie_id FROM ratings
                                            WHERE user_id = %s ORDER BY random() LIMIT 1)""",
            (self.rng.choice(self.users),),
        )
        return deleted.rowcount == 1

    def new_tag(self) -> bool:
        """A tag from the existing vocabulary, on a movie the user has rated."""
        inserted = self.con.execute(
            """INSERT INTO tags (user_id, movie_id, tag, tagged_at)
               SELECT user_id, movie_id, %s, now() FROM ratings
               WHERE user_id = %s ORDER BY random() LIMIT 1""",
            (self.rng.choice(self.vocabulary), self.rng.choice(self.users)),
        )
        return inserted.rowcount == 1

    def deleted_tag(self) -> bool:
        deleted = self.con.execute(
            "DELETE FROM tags WHERE tag_id = (SELECT tag_id FROM tags ORDER BY random() LIMIT 1)"
        )
        return deleted.rowcount == 1

    def retitled_movie(self) -> bool:
        updated = self.con.execute(
            """UPDATE movies SET title = regexp_replace(title, %(pattern)s, '\\2 \\1 \\3')
               WHERE movie_id = (SELECT movie_id FROM movies WHERE title ~ %(pattern)s
                                 ORDER BY random() LIMIT 1)""",
            {"pattern": RETITLE},
        )
        return updated.rowcount == 1


KINDS: dict[str, tuple[Callable[[Stream], bool], int]] = {
    "new rating": (Stream.new_rating, 40),
    "re-rating": (Stream.re_rating, 25),
    "deleted rating": (Stream.deleted_rating, 10),
    "new tag": (Stream.new_tag, 15),
    "deleted tag": (Stream.deleted_tag, 7),
    "retitled movie": (Stream.retitled_movie, 3),
}


def run(dsn: str, seconds: float, rate: float, seed: int) -> None:
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    rng = random.Random(seed)
    done: Counter[str] = Counter()
    transactions = 0
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute("SELECT setseed(%s)", (rng.uniform(-1, 1),))  # Postgres's random() too
        stream = Stream(con, rng)
        names, weights = list(KINDS), [weight for _, weight in KINDS.values()]
        began = time.monotonic()
        due = began
        while not stopping and time.monotonic() - began < seconds:
            with con.transaction():
                for kind in rng.choices(names, weights, k=rng.randint(1, 4)):
                    if KINDS[kind][0](stream):
                        done[kind] += 1
            transactions += 1
            due += 1 / rate
            time.sleep(max(0.0, due - time.monotonic()))
        elapsed = time.monotonic() - began
        print(f"{transactions:,} transactions in {elapsed:.1f}s ({transactions / elapsed:.1f}/s):")
        for kind in KINDS:
            print(f"  {kind:<15} {done[kind]:>7,}")
        print("rows now:")
        for table in ("movies", "links", "ratings", "tags"):
            row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            print(f"  {table:<15} {row[0] if row else 0:>7,}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", default=os.environ.get("MOVIELENS_DSN"), help="default: $MOVIELENS_DSN")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to run (30)")
    parser.add_argument("--rate", type=float, default=20.0, help="transactions per second (20)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (7)")
    args = parser.parse_args()
    if not args.dsn:
        sys.exit("no database: pass --dsn or export MOVIELENS_DSN=$(python postgres.py dsn)")
    if args.rate <= 0:
        sys.exit("--rate must be positive")
    try:
        run(args.dsn, args.seconds, args.rate, args.seed)
    except psycopg.Error as exc:
        sys.exit(f"stream_changes: {str(exc).strip()}")


if __name__ == "__main__":
    main()
