"""Engine events as plain text lines for the CLI (pure: event in, lines out).

Results (the plan, what was applied, monitors) go to stdout; diagnostics (connections,
host output, failures) to stderr. Words say the state (OK/FAIL, +/-/~), never colour alone.
"""
from __future__ import annotations

from typing import TextIO

from homelab.events import (
    NOT_RUN, ChangeApplied, ChangeFailed, Event, HostConnected, HostFailed, HostOutput, LayerFinished,
    LayerPlanned, LayerStarted, LayerStatus, Progress, RunFinished, RunStarted,
)
from homelab.host_lines import grouped_by_host
from homelab.model import Health, health_counts


class TextRenderer:
    def __init__(self, out: TextIO, err: TextIO, verbose: bool = False) -> None:
        self.out = out
        self.err = err
        self.verbose = verbose
        self.numbers: dict[str, int] = {}
        self.command = ""
        self.not_run: list[str] = []  # layers a cancel left out
        self.hosts: tuple[str, ...] = ()
        self.healths: list[Health] = []  # status: every monitor's, for the last line

    def __call__(self, event: Event) -> None:
        o, e = self.out, self.err
        if isinstance(event, RunStarted):
            self.command = event.command
            self.hosts = event.hosts
            print(f"{event.command}: {len(event.hosts)} host(s): {', '.join(event.hosts) or '-'}", file=e)
        elif isinstance(event, HostConnected):
            print(f"  connected {event.host} ({event.detail})", file=e)
        elif isinstance(event, HostFailed):
            print(f"  FAILED {event.host} [{event.layer}]: {event.error}", file=e)
            if event.hint:
                print(f"    hint: {event.hint}", file=e)
        elif isinstance(event, LayerStarted):
            self.numbers[event.layer] = event.number
        elif isinstance(event, LayerPlanned):
            if self.command != "status":  # status shows monitors, not the diff
                self._plan(event)
        elif isinstance(event, ChangeApplied):
            print(f"  done  {event.change.target}: {event.change.summary}", file=o)
        elif isinstance(event, ChangeFailed):
            print(f"  FAILED {event.change.target}: {event.change.summary}: {event.error}", file=e)
            if event.hint:
                print(f"    hint: {event.hint}", file=e)
        elif isinstance(event, HostOutput):
            print(f"    [{event.host}] {event.line}", file=e)
        elif isinstance(event, Progress):
            print(f"  ... {event.message}", file=e)
        elif isinstance(event, LayerStatus):
            num = self.numbers.get(event.layer, 0)
            print(f"layer {num} {event.layer}:", file=o)
            for m in event.monitors:
                print(f"  {m.health.value:<7} {m.subject}: {m.name}: {m.reason}", file=o)
                self.healths.append(m.health)
            if not event.monitors:
                print("  (no monitors)", file=o)
        elif isinstance(event, LayerFinished):
            if event.skipped_reason == NOT_RUN:
                self.not_run.append(event.layer)
            elif event.skipped_reason and self.verbose:
                print(f"layer {self.numbers.get(event.layer, 0)} {event.layer}: skipped, {event.skipped_reason}", file=e)
            elif event.changed or event.failed:
                print(f"  {event.layer}: {event.changed} applied, {event.failed} failed", file=e)
        elif isinstance(event, RunFinished):
            self._finished(event)

    def _plan(self, event: LayerPlanned) -> None:
        plan = event.plan
        num = self.numbers.get(event.layer, 0)
        o = self.out
        if plan.changes:
            print(f"layer {num} {event.layer}: {len(plan.changes)} change(s)", file=o)
            for c in plan.changes:
                # an erasing change says so on its own line: the apply refuses it without --confirm-delete
                mark = "  [DESTRUCTIVE: apply needs --confirm-delete]" if c.destructive else ""
                print(f"  {c.symbol} {c.target}: {c.summary}{mark}", file=o)
                for line in c.detail:
                    print(f"      {line}", file=o)
        elif plan.unplanned:  # it could not look at some hosts: "no changes" would be a guess
            print(f"layer {num} {event.layer}: NOT PLANNED on {len(plan.unplanned)} host(s)", file=o)
        else:
            why = f" ({len(plan.unchanged)} checked)" if plan.unchanged else ""
            print(f"layer {num} {event.layer}: no changes{why}", file=o)
        for line in plan.unplanned:
            print(f"  ? {line.partition(': ')[0]}: not planned, {line.partition(': ')[2]}", file=o)
        for note in plan.notes:
            print(f"    {note}", file=o)
        if self.verbose:
            for line in plan.unchanged:
                print(f"    = {line}", file=o)
        for w in grouped_by_host(plan.warnings, self.hosts):
            print(f"  WARNING: {w}", file=self.err)
        for b in plan.blocked:
            print(f"  BLOCKED: {b}", file=self.err)

    def _finished(self, event: RunFinished) -> None:
        e, o = self.err, self.out
        if event.command in ("apply", "destroy"):  # the summary is the result: stdout, once
            print("summary:", file=o)
            for h in event.hosts:
                extra = f" ({h.changes} change(s))" if h.changes else ""
                err = f": {h.error}" if h.error else ""
                print(f"  {h.host:<16} {h.result}{extra}{err}", file=o)
            if self.not_run:
                print(f"  not run (cancelled): {', '.join(self.not_run)}", file=o)
        # status: a FAIL anywhere is a failed status (exit 1), however well the run itself went
        failing = event.command == "status" and Health.FAIL in self.healths
        verdict = "cancelled" if event.cancelled else "ok" if event.ok and not failing else "FAILED"
        done = "done" if event.command in ("apply", "destroy") and event.cancelled else ""
        what = health_counts(self.healths) if event.command == "status" else f"{event.changes} change(s)"
        print(f"{event.command} {verdict}: {what}{' ' + done if done else ''}"
              f"{'' if event.ok or event.cancelled or not event.message else f' ({event.message})'}", file=e)
        if not event.ok and event.log_path:
            print(f"log: {event.log_path}", file=e)
