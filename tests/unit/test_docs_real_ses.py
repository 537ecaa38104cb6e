"""docs/real_ses.md ("What SES really returns"): all 14 facts, each naming tests that exist (it cannot go stale)."""

from __future__ import annotations

import re

from tests.conftest import REPO

TESTS = REPO / "tests"


def section() -> str:
    page = (REPO / "docs" / "real_ses.md").read_text()
    assert page.startswith("# What SES really returns\n")
    return page


def rows() -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for line in section().splitlines():
        match = re.match(r"\| (\d+) \|", line)
        if match:
            found[int(match.group(1))] = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
    return found


def named_tests(cell: str) -> list[tuple[str, str | None]]:
    """``(file, test)`` for each ``path.py::name`` in a cell and each bare ``name`` after it; ``(file, None)``."""
    out: list[tuple[str, str | None]] = []
    current: str | None = None
    for token in re.findall(r"`([^`]+)`", cell):
        if "::" in token:
            current, name = token.split("::")
            out.append((current, name))
        elif token.endswith(".py"):
            current = token
            out.append((token, None))
        elif current is not None and re.fullmatch(r"test_\w+", token):
            out.append((current, token))
    return out


def test_every_fact_has_a_row_with_a_source_and_what_the_provider_does() -> None:
    table = rows()
    assert sorted(table) == list(range(1, 15))
    for number, cells in table.items():
        assert len(cells) == 5, (number, cells)
        _, fact, source, provider, _ = cells
        assert fact and provider, number
        assert re.search(r"\b(API|model|guide|sample|probe)\b", source), (number, source)


def test_every_test_the_table_names_exists() -> None:
    checked = 0
    for number, cells in rows().items():
        for path, name in named_tests(cells[-1]):
            file = TESTS / path
            assert file.is_file(), (number, path)
            if name is not None:
                assert re.search(rf"^(async )?def {name}\(", file.read_text(), re.M), (number, path, name)
                checked += 1
    assert checked >= 15  # the table names tests, not just files


def test_every_fact_has_an_emulator_conformance_test() -> None:
    source = "".join(p.read_text() for p in (TESTS / "integration" / "emulator").glob("test_real_*.py"))
    missing = [n for n in range(1, 15) if not re.search(rf"^def test_fact{n:02d}_", source, re.M)]
    assert missing == []
