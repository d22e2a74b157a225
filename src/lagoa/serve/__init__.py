"""``lagoa serve``: a local web app and JSON API over a project's runs, tables, quality, lineage
and warehouse.

:mod:`.app` assembles the FastAPI application; :mod:`.api` is the JSON API (documented at
``/api/openapi.json``) and :mod:`.pages` the server-rendered pages, both over the same readers
(:mod:`.runs`, :mod:`.tables`, :mod:`.quality`, :mod:`.lineage`, :mod:`.overview`). :mod:`.console`
is the read-only SQL console and :mod:`.security` the token, session and CSRF checks.
"""
