import lagoa


def test_all_names_resolve_and_match_exports() -> None:
    for name in lagoa.__all__:
        assert getattr(lagoa, name) is not None
    public = {n for n in lagoa._EXPORTS} | {"__version__"}
    assert set(lagoa.__all__) == public
