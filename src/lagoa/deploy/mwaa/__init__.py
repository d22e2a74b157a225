"""Amazon MWAA: what its bucket holds for a Lagoa project (:mod:`.package`), and putting it there (:mod:`.upload`)."""
