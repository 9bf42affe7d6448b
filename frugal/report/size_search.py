"""Size searches (``model.kwargs.width_mult=auto``): the ``size_search`` section of a run's
``result.json``, as report.md's *Size search* section and ``size_search.png``.

A size search spends ``share`` of the run's budget on pilot runs, one per candidate size, fits
each pilot's validation curve (the metric against the spent budget key) with a power law, picks
the size whose fit predicts the best metric at the end of the budget, and trains it with what
is left. The report shows each pilot's readings and fit, the predictions, the choice, and what
the chosen model then achieved, on one x scale: the chosen model's own spending (its pilot's
plus its final run's).

The section is read through the record's schema (:class:`frugal.core.record.SizeSearchRecord`:
a number that is not finite or out of range, a list too long): a malformed one is not shown,
with the reason; the run itself stays in the tables. Pilot runs are never runs of their own
(``collect.collect_runs``). ``size_search.png``: :mod:`frugal.report.size_search_plot`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugal.core.checked import MalformedError, Number
from frugal.core.curves import FORM, PowerLaw, from_error, lower_is_better
from frugal.core.record import RESULT_FILE, SearchedRun, parse
from frugal.core.record import Candidate as CandidateRecord
from frugal.core.record import Fit as FitRecord
from frugal.core.units import percent
from frugal.report.compare import Comparison
from frugal.report.files import Skipped
from frugal.report.markdown import markdown_table, md, md_code
from frugal.report.text import key_amount, key_name

FILE_NAME = "size_search.png"

Size = tuple[tuple[str, Number], ...]  # (knob, value) per searched knob, in the search's order


@dataclass(frozen=True)
class Fit:
    """A pilot's fitted learning curve (``frugal.core.curves.PowerLaw``): the *error* (the
    loss, or 1 − accuracy) against the spent budget key, ``e + a · (x / x_scale)^−alpha``."""

    form: str | None
    e: Number | None
    a: Number | None
    alpha: Number | None
    x_scale: Number
    ok: bool

    def error_at(self, x: float) -> float | None:
        """The fitted error at ``x``; None when the fit failed, its form is not the power law
        or the value is not finite."""
        if not self.ok or (self.form or FORM).replace(" ", "") != FORM.replace(" ", ""):
            return None
        law = PowerLaw(self.e, self.a, self.alpha, self.x_scale, ok=True)  # type: ignore[arg-type]
        try:
            value = law.predict(x) if x > 0 and self.x_scale > 0 else None
        except (OverflowError, ZeroDivisionError, TypeError):
            return None
        return value if value is not None and math.isfinite(value) else None

    def text(self, key: str) -> str:
        """``e = 0.2, a = 3.1, α = 0.5 (x in 39.8 MFLOP)`` or ``fit failed``; ``key`` is the
        budget key x is spent in."""
        if not self.ok:
            return "fit failed"
        names = (("e", self.e), ("a", self.a), ("α", self.alpha))
        text = ", ".join(f"{name} = {_g(value)}" for name, value in names)
        return text + (f" (x in {key_amount(key, self.x_scale)})" if self.x_scale != 1 else "")


@dataclass(frozen=True)
class Candidate:
    size: Size
    dir: str | None
    status: str | None
    spent: dict[str, Number | None]
    points: list[tuple[float, float]]  # (spent budget key, metric) at each validation
    fit: Fit | None
    predicted: Number | None  # the metric predicted at the end of the budget
    predicted_at: Number | None  # ... at this spend of the budget key

    @property
    def label(self) -> str:
        """``0.25`` for one knob, ``width_mult=0.5 depth=2`` for several."""
        if len(self.size) == 1:
            return _g(self.size[0][1])
        return " ".join(f"{knob}={_g(value)}" for knob, value in self.size)


@dataclass(frozen=True)
class SizeSearch:
    run_dir: Path
    knobs: tuple[str, ...]
    metric: str
    budget_key: str
    budget: Number | None
    share: Number | None
    candidates: list[Candidate]
    pilot_spent: dict[str, Number | None]
    final_budget: dict[str, Number | None]
    choice: Size | None
    predicted: Number | None
    predicted_at: Number | None
    achieved: dict[str, Number]
    final_points: list[tuple[float, float]]
    warm_start: bool | None

    @property
    def knob(self) -> str:
        return ", ".join(self.knobs)

    @property
    def higher_is_better(self) -> bool:
        """Accuracies are maximised, losses (and anything else) minimised, as the search did."""
        return not lower_is_better(self.metric)

    @property
    def chosen(self) -> Candidate | None:
        if self.choice is None:
            return None
        return next((c for c in self.candidates if _same(c.size, self.choice)), None)

    def choice_label(self) -> str:
        assert self.choice is not None
        return ", ".join(f"{knob} = {_g(value)}" for knob, value in self.choice)

    def fitted(self, candidate: Candidate, x: float) -> float | None:
        """The candidate's fit at ``x``, in the metric's own terms (accuracy, not error)."""
        error = candidate.fit.error_at(x) if candidate.fit is not None else None
        return None if error is None else from_error(self.metric, error)

    def prediction_x(self, candidate: Candidate) -> float | None:
        """Where a candidate's prediction lies on the x scale: where the search predicted it
        (``predicted_at``); without that, the chosen one at the search's ``predicted_at`` and
        another at its own pilot spend plus the final run's budget, else at the run's budget."""
        if candidate.predicted_at is not None:
            return candidate.predicted_at
        if candidate is self.chosen and self.predicted_at is not None:
            return self.predicted_at
        own = candidate.spent.get(self.budget_key)
        final = self.final_budget.get(self.budget_key)
        if own is not None and final is not None:
            return own + final
        return self.budget if self.budget is not None else self.predicted_at

    def achieved_metric(self) -> Number | None:
        return self.achieved.get(self.metric)


# ---- reading ----------------------------------------------------------------------------------
def load_size_searches(raw: Mapping[Path, Any]) -> tuple[list[SizeSearch], list[Skipped]]:
    """Check each run's raw ``size_search`` section (``Collected.size_searches``)."""
    searches: list[SizeSearch] = []
    problems: list[Skipped] = []
    for run_dir, section in raw.items():
        try:
            searches.append(parse_size_search(run_dir, section))
        except MalformedError as err:
            problems.append(Skipped(run_dir, str(err)))
    return searches, problems


def parse_size_search(run_dir: Path, section: Any) -> SizeSearch:
    """A :class:`SizeSearch`, or :class:`MalformedError` naming the first bad value."""
    record = parse(SearchedRun, {"size_search": section}, RESULT_FILE).size_search
    knobs = record.knob
    return SizeSearch(
        run_dir=run_dir,
        knobs=knobs,
        metric=record.metric or "metric",
        budget_key=record.budget_key or "energy_j",
        budget=record.budget,
        share=record.share,
        candidates=[_candidate(c, knobs) for c in record.candidates],
        pilot_spent=record.pilot_spent.as_dict(),
        final_budget=record.final_budget.as_dict(),
        choice=None if record.choice is None else _size(record.choice, knobs),
        predicted=record.predicted,
        predicted_at=record.predicted_at,
        achieved=record.achieved,
        final_points=record.final_points,
        warm_start=record.warm_start,
    )


def _size(value: Number | dict[str, Number], knobs: tuple[str, ...]) -> Size:
    """A number for one knob, ``{knob: number}`` for several."""
    return tuple(value.items()) if isinstance(value, dict) else ((knobs[0], value),)


def _candidate(candidate: CandidateRecord, knobs: tuple[str, ...]) -> Candidate:
    return Candidate(
        size=_size(candidate.size, knobs),
        dir=candidate.dir,
        status=candidate.status,
        spent=candidate.spent.as_dict(),
        points=candidate.points,
        fit=None if candidate.fit is None else _fit(candidate.fit),
        predicted=candidate.predicted,
        predicted_at=candidate.predicted_at,
    )


def _fit(fit: FitRecord) -> Fit:
    return Fit(
        form=fit.form,
        e=fit.e,
        a=fit.a,
        alpha=fit.alpha,
        x_scale=1.0 if fit.x_scale is None else fit.x_scale,
        ok=fit.ok is not False,
    )


# ---- report.md --------------------------------------------------------------------------------
def size_search_section(
    searches: Sequence[SizeSearch],
    problems: Sequence[Skipped],
    pilots: Sequence[Path],
    comparison: Comparison,
    plots: bool = True,
) -> str:
    """report.md's *Size search*: per search, a table of its candidates and one line on the
    choice; the searches not shown, with the reason; the pilot runs left out of the tables."""
    if not searches and not problems and not pilots:
        return ""
    parts = [
        "## Size search\n\nA run with a size `auto` trained one short pilot per candidate size "
        "on a share of its budget, fitted each pilot's validation curve with a power law, and "
        "trained the size predicted best at the end of the budget. Pilot runs are part of their "
        "run: they are in no other table or plot."
    ]
    if searches and plots:
        parts.append(f"![size search: pilot curves, fits and predictions]({FILE_NAME})")
    for search in searches:
        parts.append(_search_text(search, comparison))
    if problems:
        parts.append(
            "Not shown (the run is in the tables; its `size_search` is malformed):\n\n"
            + "\n".join(f"- {md_code(p.path)}: {md(p.reason)}" for p in problems)
        )
    searched = [s.run_dir for s in searches] + [p.path for p in problems]
    orphans = [p for p in pilots if not any(p.is_relative_to(d) for d in searched)]
    if orphans:
        parts.append(
            f"Pilot runs without a readable size-search run above them ({len(orphans)}), left "
            "out of the tables:\n\n" + "\n".join(f"- {md_code(p)}" for p in orphans)
        )
    return "\n\n".join(parts)


def run_title(run_dir: Path, comparison: Comparison) -> str:
    """``#3 model=cnn`` for a run in the tables, else its directory."""
    for i, run in enumerate(comparison.runs):
        if run.dir == run_dir:
            return f"#{comparison.numbers[i]} {comparison.labels[i]}"
    return str(run_dir)


def _search_text(search: SizeSearch, comparison: Comparison) -> str:
    key, metric = search.budget_key, search.metric
    better = "higher" if search.higher_is_better else "lower"
    pilots = search.pilot_spent.get(key)
    share = "" if search.share is None else f", {percent(search.share)} for pilots"
    start = ""
    if search.warm_start is not None:
        start = " (warm start from its pilot)" if search.warm_start else " (trained from scratch)"
    spending = (
        f"Budget {key_amount(key, search.budget)}{share}: pilots spent "
        f"{key_amount(key, pilots)}, the final run had "
        f"{key_amount(key, search.final_budget.get(key))}{start}."
    )
    intro = (
        f"### {md(run_title(search.run_dir, comparison))}\n\n"
        f"{md_code(search.run_dir)}: {md_code(search.knob)} chosen by {md_code(metric)} "
        f"({better} is better) against {md(key_name(key))} spent. {spending}"
    )
    chosen = search.chosen
    header = (
        md(search.knob),
        "status",
        "pilot spend",
        "readings",
        f"fit ({md(_form(search))})",
        f"predicted {md(metric)}",
        f"achieved {md(metric)}",
    )
    rows = [
        (
            ("★ " if c is chosen else "") + md(c.label),
            md(c.status or "unknown"),
            key_amount(key, c.spent.get(key)),
            str(len(c.points)),
            "no fit" if c.fit is None else md(c.fit.text(key)),
            _metric(metric, c.predicted),
            _metric(metric, search.achieved_metric()) if c is chosen else "",
        )
        for c in sorted(search.candidates, key=lambda c: c.size)
    ]
    return "\n\n".join((intro, markdown_table(header, rows), _choice_line(search)))


def _choice_line(search: SizeSearch) -> str:
    """One line: the size chosen, the metric predicted for it and the one achieved."""
    metric = search.metric
    if search.choice is None:
        return "**No size was chosen.**"
    text = f"**Chose {md(search.choice_label())}**"
    if search.chosen is None:
        text += " (not among the candidates)"
    at = f" at {key_amount(search.budget_key, search.predicted_at)}" if search.predicted_at else ""
    achieved = search.achieved_metric()
    text += f": predicted {md(metric)} {_metric(metric, search.predicted)}{at}, "
    text += f"achieved {_metric(metric, achieved)}"
    if achieved is not None and search.predicted is not None:
        gap = achieved - search.predicted
        worse = gap < 0 if search.higher_is_better else gap > 0
        if gap == 0:
            text += " (as predicted)"
        else:
            size = _metric(metric, abs(gap), delta=True)
            text += f" ({size} {'worse' if worse else 'better'} than predicted)"
    others = [
        f"{md(name)} {_metric(name, value)}"
        for name, value in search.achieved.items()
        if name != metric
    ]
    return text + (f"; {', '.join(others)}." if others else ".")


def _form(search: SizeSearch) -> str:
    forms = {c.fit.form for c in search.candidates if c.fit is not None and c.fit.form}
    return forms.pop() if len(forms) == 1 else "power law"


def _metric(name: str, value: float | None, delta: bool = False) -> str:
    """An accuracy in percent (points for a difference), anything else to 3 digits."""
    if value is None:
        return "unknown"
    if not lower_is_better(name) and -1 <= value <= 1:
        return f"{100 * value:.1f} points" if delta else percent(value)
    return _g(value)


def _g(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.3g}"


def _same(a: Size, b: Size) -> bool:
    return dict(a).keys() == dict(b).keys() and all(
        math.isclose(value, dict(b)[knob], rel_tol=1e-9, abs_tol=1e-12) for knob, value in a
    )
