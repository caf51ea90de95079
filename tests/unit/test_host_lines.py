"""The same warning of many hosts is one line naming them (CLI and TUI)."""
from __future__ import annotations

import io

from homelab.events import LayerPlanned, RunStarted
from homelab.host_lines import grouped_by_host
from homelab.model import LayerPlan
from homelab.render_text import TextRenderer

HOSTS = ("a", "b", "c", "d")


def test_lines_of_the_same_words_are_grouped_in_first_seen_order() -> None:
    lines = ["a: timer masked", "b: disk full", "b: timer masked", "c: timer masked", "a: timer masked",
             "d: disk full"]
    assert grouped_by_host(lines, HOSTS) == ["a, b, c (3 hosts): timer masked", "b, d: disk full"]


def test_a_line_without_a_host_prefix_stays_in_its_place() -> None:
    lines = ["repository nas: no mesh address: rest-server listens on 10.0.0.1", "a: x", "b: x", "zz: x"]
    assert grouped_by_host(lines, HOSTS) == [lines[0], "a, b: x", "zz: x"]  # zz is no host of the run


def test_the_cli_prints_one_warning_for_many_hosts() -> None:
    out, err = io.StringIO(), io.StringIO()
    render = TextRenderer(out, err)
    render(RunStarted("plan", ("permissions",), HOSTS, "", ""))
    render(LayerPlanned("permissions", LayerPlan("permissions", warnings=tuple(f"{h}: timer masked" for h in HOSTS))))
    assert [line for line in err.getvalue().splitlines() if "WARNING" in line] == \
        ["  WARNING: a, b, c, d (4 hosts): timer masked"]
