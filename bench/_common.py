"""Helpers shared by the bench/ scripts (run as `python bench/<script>.py`, so this folder is
on sys.path): result tables and free ports."""

from __future__ import annotations

import shutil
import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def print_tables(tables: list[tuple[str, list[str], list[list[str]]]], header: str) -> None:
    """Print ``(title, columns, rows)`` tables under ``header``: with rich when installed,
    plain aligned text otherwise."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(header)
        for title, columns, rows in tables:
            widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
            print(f"\n{title}")
            print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
            for row in rows:
                print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
        return
    console = Console(width=max(shutil.get_terminal_size().columns, 170))
    console.print(header, highlight=False)
    for title, columns, rows in tables:
        table = Table(title=title, title_justify="left")
        for i, col in enumerate(columns):
            table.add_column(col, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
