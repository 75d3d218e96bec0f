"""Declarative rules: rule files (rules/files/**) and their evaluation, a pure function of
(facts known, as-of date, rule versions, working-day calendar)."""
