"""Size searches (``model.kwargs.width_mult=auto``): the ``size_search`` section of a run's
``result.json``, as report.md's *Size search* section and ``size_search.png``.

A size search spends ``share`` of the run's budget on pilot runs, one per candidate size, fits
each pilot's validation curve (the metric against the spent budget key) with a power law, picks
the size whose fit predicts the best metric at the end of the budget, and trains it with what
is left. The report shows each pilot's readings and fit, the predictions, the choice, and what
the chosen model then achieved, on one x scale: the chosen model's own spending (its pilot's
plus its final run's).

The section is checked like the rest of ``result.json`` (a number that is not finite or out of
range, a list too long): a malformed one is not shown, with the reason; the run itself stays in
the tables. Pilot runs are never runs of their own (``collect.collect_runs``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugal.report.collect import (
    MAX_AMOUNT,
    MAX_TEXT_CHARS,
    MalformedError,
    Number,
    Skipped,
    _amounts,
    _flag,
    _number,
    _text,
    json_object,
)
from frugal.report.compare import Comparison
from frugal.report.table import _markdown_table, md, md_code
from frugal.report.text import key_amount, key_name, key_unit
from frugal.report.units import percent, plural
from frugal.sweep.curves import FORM, PowerLaw, from_error, lower_is_better

FILE_NAME = "size_search.png"
SECTION = "size_search"
MAX_CANDIDATES = 64
MAX_KNOBS = 8
MAX_POINTS = 100_000  # per curve; a validation every step of a long run is still under this
MAX_METRICS = 64
MAX_PANELS = 8  # size-search runs drawn; report.md lists them all
FIT_POINTS = 120  # samples of a fitted curve, log-spaced

Size = tuple[tuple[str, Number], ...]  # (knob, value) per searched knob, in the search's order


@dataclass(frozen=True)
class Fit:
    """A pilot's fitted learning curve (``frugal.sweep.curves.PowerLaw``): the *error* (the
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
    where = SECTION
    section = _object(section, where)
    knobs = _knobs(section.get("knob"), f"{where}.knob")
    candidates = section.get("candidates")
    if not isinstance(candidates, list):
        raise MalformedError(f"result.json: {where}.candidates is not a list")
    if len(candidates) > MAX_CANDIDATES:
        raise MalformedError(
            f"result.json: {where}.candidates: {len(candidates)} (at most {MAX_CANDIDATES})"
        )
    achieved = _object(section.get("achieved") or {}, f"{where}.achieved")
    choice = section.get("choice")
    return SizeSearch(
        run_dir=run_dir,
        knobs=knobs,
        metric=_text(section, "metric", where) or "metric",
        budget_key=_text(section, "budget_key", where) or "energy_j",
        budget=_number(section, "budget", where),
        share=_number(section, "share", where, high=1.0),
        candidates=[
            _candidate(c, knobs, f"{where}.candidates[{k}]") for k, c in enumerate(candidates)
        ],
        pilot_spent=_spent(section, "pilot_spent", where),
        final_budget=_spent(section, "final_budget", where),
        choice=None if choice is None else _size(choice, knobs, f"{where}.choice"),
        predicted=_number(section, "predicted", where, low=-MAX_AMOUNT),
        predicted_at=_number(section, "predicted_at", where),
        achieved=_metrics(achieved, f"{where}.achieved"),
        final_points=_points(section.get("final_points"), f"{where}.final_points"),
        warm_start=_flag(section, "warm_start", where),
    )


def _knobs(value: Any, where: str) -> tuple[str, ...]:
    """``"width_mult"``, or a list of knobs when several were searched together."""
    if value is None:
        return ("size",)
    names = value if isinstance(value, list) else [value]
    if not names or len(names) > MAX_KNOBS:
        raise MalformedError(f"result.json: {where}: {len(names)} knobs (1 to {MAX_KNOBS})")
    return tuple(_text({"knob": name}, "knob", where.rpartition(".")[0]) or "" for name in names)


def _size(value: Any, knobs: tuple[str, ...], where: str) -> Size:
    """A number for one knob, ``{knob: number}`` for several."""
    if isinstance(value, dict):
        if len(value) > MAX_KNOBS:
            raise MalformedError(f"result.json: {where}: {len(value)} knobs (at most {MAX_KNOBS})")
        size = []
        for knob in value:
            if len(knob) > MAX_TEXT_CHARS:
                raise MalformedError(f"result.json: {where}: a knob of {len(knob)} characters")
            number = _number(value, knob, where)
            if number is None:
                raise MalformedError(f"result.json: {where}.{knob} is missing")
            size.append((knob, number))
        return tuple(size)
    parent, _, name = where.rpartition(".")
    number = _number({name: value}, name, parent)
    if number is None:
        raise MalformedError(f"result.json: {where} is missing")
    return ((knobs[0], number),)


def _candidate(value: Any, knobs: tuple[str, ...], where: str) -> Candidate:
    candidate = _object(value, where)
    fit = candidate.get("fit")
    return Candidate(
        size=_size(candidate.get("size"), knobs, f"{where}.size"),
        dir=_text(candidate, "dir", where),
        status=_text(candidate, "status", where),
        spent=_spent(candidate, "spent", where),
        points=_points(candidate.get("points"), f"{where}.points"),
        fit=None if fit is None else _fit(fit, f"{where}.fit"),
        predicted=_number(candidate, "predicted", where, low=-MAX_AMOUNT),
        predicted_at=_number(candidate, "predicted_at", where),
    )


def _spent(section: Mapping[str, Any], key: str, where: str) -> dict[str, Number | None]:
    """Amounts by budget key (``spent``, ``pilot_spent``, ``final_budget``); absent: unknown."""
    where = f"{where}.{key}"
    return _amounts(_object(section.get(key) or {}, where), where)


def _fit(value: Any, where: str) -> Fit:
    fit = _object(value, where)
    ok = _flag(fit, "ok", where)
    x_scale = _number(fit, "x_scale", where)
    return Fit(
        form=_text(fit, "form", where),
        e=_number(fit, "e", where, low=-MAX_AMOUNT),
        a=_number(fit, "a", where, low=-MAX_AMOUNT),
        alpha=_number(fit, "alpha", where, low=-MAX_AMOUNT),
        x_scale=1.0 if x_scale is None else x_scale,
        ok=ok is not False,
    )


def _points(value: Any, where: str) -> list[tuple[float, float]]:
    """``[[x, y], ...]``: x a spent amount (≥ 0), y a metric (any finite value)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedError(f"result.json: {where} is not a list")
    if len(value) > MAX_POINTS:
        raise MalformedError(f"result.json: {where}: {len(value)} points (at most {MAX_POINTS})")
    points = []
    for k, point in enumerate(value):
        if not isinstance(point, list) or len(point) != 2:
            raise MalformedError(f"result.json: {where}[{k}] is not an [x, y] pair")
        x = _number({"x": point[0]}, "x", f"{where}[{k}]")
        y = _number({"y": point[1]}, "y", f"{where}[{k}]", low=-MAX_AMOUNT)
        if x is not None and y is not None:  # a null reading is unknown: no point
            points.append((float(x), float(y)))
    return points


def _metrics(section: Mapping[str, Any], where: str) -> dict[str, Number]:
    """``{"val/loss": 0.23, ...}``: short names, finite numbers; nulls left out."""
    if len(section) > MAX_METRICS:
        raise MalformedError(
            f"result.json: {where}: {len(section)} metrics (at most {MAX_METRICS})"
        )
    metrics = {}
    for name in section:
        if len(name) > MAX_TEXT_CHARS:
            raise MalformedError(f"result.json: {where}: a name of {len(name)} characters")
        value = _number(section, name, where, low=-MAX_AMOUNT)
        if value is not None:
            metrics[name] = value
    return metrics


def _object(value: Any, where: str) -> Mapping[str, Any]:
    return json_object(value, where, "result.json")


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
    return "\n\n".join((intro, _markdown_table(header, rows), _choice_line(search)))


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


# ---- size_search.png --------------------------------------------------------------------------


def plot_size_search(searches: Sequence[SizeSearch], comparison: Comparison, path: Path) -> None:
    """One panel per size-search run: each candidate's pilot readings (markers) and fitted
    curve (line) out to the end of the budget, its prediction (a diamond), the chosen one bold
    with a ★, what the chosen model then did (black), and the run's budget (dotted); x is the
    spent budget key on a log axis."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from frugal.report import plots

    shown = list(searches)[:MAX_PANELS]
    with matplotlib.rc_context(plots.PAPER_STYLE):
        fig = Figure(figsize=(7.6, 3.3 * len(shown) + 0.9))
        FigureCanvasAgg(fig)
        axes = [fig.add_subplot(len(shown), 1, r + 1) for r in range(len(shown))]
        for ax, search in zip(axes, shown, strict=True):
            _panel(ax, search, comparison)
            key = search.budget_key
            if ax.get_xscale() == "log":
                ax.xaxis.set_major_locator(LogLocator(numticks=8))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _, k=key: key_amount(k, v)))
                low, high = ax.get_xlim()
                if high / low < 1000:  # under 3 decades: label 2× and 5× too
                    ax.xaxis.set_minor_locator(LogLocator(subs=(2, 5)))
                    ax.xaxis.set_minor_formatter(
                        FuncFormatter(lambda v, _, k=key: key_amount(k, v))
                    )
                else:
                    ax.xaxis.set_minor_formatter(NullFormatter())
        handles: list[object] = [
            Line2D(
                [], [], color="0.3", marker="o", linestyle="", markersize=4, label="pilot reading"
            ),
            Line2D([], [], color="0.3", linewidth=1.1, label="fit, out to the budget"),
            plots._sample("D", "prediction at the end", face="white", edge="0.3"),
            Line2D([], [], color="0.3", linewidth=2.4, label="★ chosen size"),
            Line2D(
                [], [], color="black", marker=".", linewidth=1.3, label="what happened (chosen)"
            ),
            plots._sample("*", "achieved", face="black", edge="black"),
            Line2D([], [], color="0.4", linestyle=":", label="run budget"),
        ]
        plots._bottom_legend(fig, handles)
        title = f"Size search: {plural(len(searches), 'run')}"
        if len(searches) > len(shown):
            title += f"; first {len(shown)} shown, all in report.md"
        height_in = fig.get_figheight()
        fig.suptitle(title, y=1 - 0.05 / height_in, va="top")
        fig.tight_layout(rect=(0, 0.55 / height_in, 1, 1))
        fig.savefig(path)


def _panel(ax: Any, search: SizeSearch, comparison: Comparison) -> None:
    from frugal.report import plots

    key, metric = search.budget_key, search.metric
    unit = key_unit(key)
    ax.set_title(
        plots._plain(f"{run_title(search.run_dir, comparison)} · {search.knob} by {metric}", 90),
        loc="left",
        fontweight="bold",
        parse_math=False,
    )
    ax.set_ylabel(plots._plain(metric, 40), parse_math=False)
    chosen = search.chosen
    xs_all: list[float] = []
    dropped = 0
    candidates = sorted(search.candidates, key=lambda c: c.size)
    for k, candidate in enumerate(candidates):
        color = plots.OKABE_ITO[k % (len(plots.OKABE_ITO) - 1)]  # black is "what happened"
        best = candidate is chosen
        label = f"{'★ ' if best else ''}{candidate.label}"
        points = [(x, y) for x, y in candidate.points if x > 0]
        dropped += len(candidate.points) - len(points)
        if points:
            px, py = zip(*points, strict=True)
            ax.plot(
                px,
                py,
                linestyle="",
                marker="o",
                markersize=4.5 if best else 3.2,
                color=color,
                markeredgecolor="black" if best else color,
                markeredgewidth=0.6,
                zorder=3,
            )
            xs_all += px
        end = search.prediction_x(candidate)
        grid: list[float] = []
        fitted: list[float | None] = []
        if candidate.fit is not None and points:
            low = min(x for x, _ in points)
            high = max(end or low, search.budget or low, low * 1.01)
            grid = [low * (high / low) ** (j / (FIT_POINTS - 1)) for j in range(FIT_POINTS)]
            fitted = [search.fitted(candidate, x) for x in grid]
        if any(y is not None for y in fitted):
            ax.plot(
                grid,
                [math.nan if y is None else y for y in fitted],
                color=color,
                linewidth=2.4 if best else 1.1,
                alpha=1.0 if best else 0.85,
                zorder=2.6 if best else 2,
                label=label,
            )
        else:  # readings only: a marker in the key
            label += " (no fit)" if candidate.fit is None else " (fit failed)"
            ax.plot([], [], color=color, linestyle="", marker="o", markersize=3.2, label=label)
        if candidate.predicted is not None and end is not None and end > 0:
            ax.scatter(
                [end],
                [candidate.predicted],
                marker="D",
                s=40 if best else 24,
                facecolors="white",
                edgecolors=color,
                linewidths=1.8 if best else 1.1,
                zorder=4,
            )
            xs_all.append(end)
    final = [(x, y) for x, y in search.final_points if x > 0]
    dropped += len(search.final_points) - len(final)
    if final:
        fx, fy = zip(*final, strict=True)
        ax.plot(fx, fy, color="black", marker=".", markersize=3, linewidth=1.3, zorder=3.5)
        xs_all += fx
    achieved = search.achieved_metric()
    achieved_x = final[-1][0] if final else search.predicted_at
    if achieved is not None and achieved_x:
        ax.scatter([achieved_x], [achieved], marker="*", s=90, color="black", zorder=5)
        xs_all.append(achieved_x)
    if search.budget:
        ax.axvline(search.budget, color="0.4", linestyle=":", linewidth=1.0, zorder=1)
        xs_all.append(search.budget)
    xlabel = f"{key_name(key)} spent" + (f" ({unit}, log)" if unit else " (log)")
    if dropped:
        xlabel += f"\nnot shown: {plural(dropped, 'reading')} at 0 (no log position)"
    ax.set_xlabel(plots._plain(xlabel, 120), parse_math=False)
    if not xs_all:
        plots._empty_panel(ax, "no reading with a positive spend")
        return
    ax.set_xscale("log")
    ax.set_xlim(min(xs_all) / 1.3, max(xs_all) * 1.3)
    if search.higher_is_better and all(0 <= y <= 1 for c in candidates for _, y in c.points):
        plots._percent_axis(ax)
    legend = ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        title=plots._plain(search.knob, 30),
    )
    for text in [*legend.get_texts(), legend.get_title()]:
        text.set_parse_math(False)
