"""The tables a CDC source replicates: described, checked that their changes can be matched to
rows, and whether a mirror still needs its copy."""

from __future__ import annotations

from lagoa.core.names import RELATION
from lagoa.lake.catalog import Lake
from lagoa.sources.cdc.lsn import held_lsn
from lagoa.sources.cdc.slot import SlotSession
from lagoa.sources.postgres import SourceTable, describe, table_names


def describe_tables(session: SlotSession) -> list[SourceTable]:
    """The tables (generated columns left out: logical replication does not send them),
    each checked for a replica identity that identifies rows by the mirror's key."""
    tables = [
        describe(session.con, session.name, session.config, table, generated=False)
        for table in table_names(session.con, session.name, session.config)
    ]
    for table in tables:
        qualified = f"{table.schema}.{table.name}"
        if table.nullable_key:
            raise session.error(
                f"key column(s) {', '.join(table.nullable_key)} of `{qualified}` may be NULL, and "
                "changes to rows with a NULL key cannot be matched",
                f"ALTER TABLE {qualified} ALTER COLUMN … SET NOT NULL, or declare other `keys`",
            )
        problem = identity_problem(table)
        if problem:
            raise session.error(
                f"table `{qualified}`: {problem}, so its updates and deletes cannot be matched to rows",
                f"run `ALTER TABLE {qualified} REPLICA IDENTITY {'DEFAULT' if table.primary_key else 'FULL'};`"
                + ("" if table.primary_key else f" (keeping `sources.{session.name}.keys.{table.name}`)"),
            )
    return tables


def listed(session: SlotSession) -> list[str]:
    """The names of the source's tables, without their schema."""
    return [name.split(".")[-1] for name in table_names(session.con, session.name, session.config)]


def identity_problem(table: SourceTable) -> str | None:
    """Why Postgres's replica identity would not carry the mirror's key, if it would not."""
    if table.identity == "f":
        return None
    if table.identity == "n":
        return "its replica identity is NOTHING, so Postgres sends no old row"
    if table.identity == "d":
        return None if table.primary_key else "it has no primary key, so Postgres sends no old row"
    if sorted(table.identity_columns) != sorted(table.key):
        return (
            f"its replica identity index ({', '.join(table.identity_columns)}) is not the key "
            f"({', '.join(table.key)})"
        )
    return None


def needs_copy(lake: Lake, table: SourceTable) -> bool:
    """True when the mirror holds no complete copy, or one of an older table of that name."""
    silver = f"silver.{table.name}"
    if held_lsn(lake, silver) is None:
        return True
    oid = lake.newest(silver, RELATION)
    return oid is not None and int(oid) != table.oid


def catalog_columns(session: SlotSession, oids: list[int]) -> dict[int, dict[str, bool]]:
    """Per table (by oid), its columns as the catalog has them now (generated ones left out), each
    with whether rows may hold a value the change stream never sent: a column added with a
    default (a constant one is kept in ``attmissingval``, a volatile one rewrites the table), an
    identity column, or a domain with a default."""
    columns: dict[int, dict[str, bool]] = {oid: {} for oid in oids}
    for oid, name, filled in session.con.execute(
        "SELECT a.attrelid::int8, a.attname, a.atthasmissing OR d.adrelid IS NOT NULL "
        "OR a.attidentity <> '' OR t.typdefaultbin IS NOT NULL "
        "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' "
        "ORDER BY a.attnum",
        (oids,),
    ).fetchall():
        columns[int(oid)][str(name)] = bool(filled)
    return columns
