"""Thin Typer commands: parse, call the library, print with rich. Nothing imports this package."""
