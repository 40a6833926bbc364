"""Seed data for decision-engine: a demo catalog and a synthetic profile generator."""
