"""The record of metrology administration (计量监管): aggregates, their events and guards.

Nothing here imports from the rest of metrolex, reads the clock, does I/O or logs.
"""
