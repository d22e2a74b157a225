"""Lagoa's ground floor: the project file's model, the error tree, time, SQL quoting and the
names of Lagoa's own columns. Core imports no other part of Lagoa."""
