"""Controls generated from a Config's `spec` metadata: the declared ranges are the only ranges.

    form = ConfigForm(Config, exclude=("seed",), visible={"n_heads": lambda c: c.model == "transformer"})
    form.observe(lambda config: ...)      # called with each new valid config
    form.config                           # the current, validated frozen dataclass

Field kinds -> widgets: `choices` -> Dropdown; `check="activation"` -> a Combobox (pick a name or
type an expression) validated on Enter; bool -> Checkbox; int with `log` -> SelectionSlider over
powers of two; int in a range of <= 1024 values -> IntSlider; other ints -> BoundedIntText; float
with `log` -> FloatLogSlider; float in [lo, hi] -> FloatSlider; tuple -> Text of comma-separated
numbers. Fields listed in `advanced` go into a collapsed "more settings" section; fields in `visible` show
only while their predicate holds. Invalid input never reaches the Config: the message (the Config's own
ValueError) appears in red under the control, and the last valid config stays in force.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import math
from collections.abc import Callable, Collection, Iterable
from typing import Any, Generic, TypeVar

import ipywidgets as w

from workbench.core.activations import ALLOWED_HELP, SUGGESTIONS
from workbench.core.config import Config, get_path, leaves

_STYLE = {"description_width": "110px"}
_LAYOUT = dict(width="290px")  # a 300 px form column (widgets.panel.FORM_WIDTH) leaves room for a figure


def _kind(field: dataclasses.Field[Any], default: object) -> type:
    names = {"int": int, "float": float, "bool": bool, "str": str, "tuple": tuple}
    kind = field.type if isinstance(field.type, type) else names.get(str(field.type).split("[")[0])
    return kind or type(default)


def _powers_of_two(lo: int, hi: int, default: int) -> list[int]:
    """The powers of two in [lo, hi], the ends themselves and the default: the slider spans the whole range."""
    values = {2**k for k in range(max(0, math.ceil(math.log2(max(lo, 1)))), int(math.log2(hi)) + 1)}
    return sorted(values | {lo, hi, default})


def make_control(name: str, kind: type, meta: dict[str, Any], value: Any) -> w.ValueWidget:
    """One ipywidgets control for a field; the widget's value is the field's value (tuples as text)."""
    common = dict(description=name.replace("_", " "), style=_STYLE, layout=w.Layout(**_LAYOUT), tooltip=meta["doc"])
    lo, hi = meta["lo"], meta["hi"]
    if meta["choices"]:
        return w.Dropdown(options=list(meta["choices"]), value=value, **common)
    if meta["check"] == "activation":
        return w.Combobox(
            value=str(value),
            options=list(SUGGESTIONS),
            ensure_option=False,
            continuous_update=False,
            placeholder="name or expression in x",
            **common,
        )
    if kind is bool:
        return w.Checkbox(value=value, indent=False, **common)
    if kind is tuple:
        return w.Text(value=", ".join(map(str, value)), continuous_update=False, **common)
    if kind is int and lo is not None and hi is not None:
        if meta["log"]:
            return w.SelectionSlider(
                options=_powers_of_two(lo, hi, value), value=value, continuous_update=False, **common
            )
        if hi - lo <= 1024:
            return w.IntSlider(value=value, min=lo, max=hi, step=meta["step"] or 1, continuous_update=False, **common)
        return w.BoundedIntText(value=value, min=lo, max=hi, **common)
    if kind is float and hi is not None:
        if meta["log"]:
            low = lo if lo else hi * 1e-10  # an open lower bound at 0: ten decades below the top
            return w.FloatLogSlider(
                value=value,
                min=math.log10(min(low, value)),
                max=math.log10(hi),
                step=0.05,
                continuous_update=False,
                readout_format=".3g",
                **common,
            )
        if lo is not None:
            return w.FloatSlider(
                value=value,
                min=lo,
                max=hi,
                step=meta["step"] or (hi - lo) / 100,
                continuous_update=False,
                readout_format=".3g",
                **common,
            )
    if kind is int:
        return w.IntText(value=value, **common)
    if kind is float:
        return w.FloatText(value=value, **common)
    return w.Text(value=str(value), continuous_update=False, **common)


def _fit(control: w.ValueWidget, value: Any) -> None:
    """Widen a slider so that it shows `value` exactly (a slider clamps what lies outside its track)."""
    if isinstance(control, w.SelectionSlider):
        if value not in control.options:
            control.options = sorted(set(control.options) | {value})
    elif isinstance(control, w.FloatLogSlider):
        control.min = min(control.min, math.log10(value))
    elif isinstance(control, (w.FloatSlider, w.IntSlider, w.BoundedIntText)):
        control.min, control.max = min(control.min, value), max(control.max, value)


def _parse_tuple(name: str, text: str) -> tuple[int | float, ...]:
    """'64, 256' -> (64, 256); numbers only, never eval."""
    items = [t for t in text.replace(";", ",").split(",") if t.strip()]
    try:
        return tuple(int(t) if t.strip().lstrip("+-").isdigit() else float(t) for t in items)
    except ValueError:
        raise ValueError(f"{name}: expected comma-separated numbers, got {text!r}") from None


C = TypeVar("C", bound=Config)


class ConfigForm(Generic[C]):
    """Controls for the fields of a Config class, kept in sync with one validated config instance."""

    def __init__(
        self,
        config_cls: type[C],
        config: C | None = None,
        *,
        include: Iterable[str] | None = None,
        exclude: Collection[str] = (),
        advanced: Collection[str] = (),
        visible: dict[str, Callable[[C], bool]] | None = None,
    ) -> None:
        self.config_cls = config_cls
        self.config: C = config if config is not None else config_cls()
        path = config_cls.resolve  # fields named by path ('model.width') or by their short name ('width')
        include = None if include is None else [path(n) for n in include]
        exclude, advanced = {path(n) for n in exclude}, {path(n) for n in advanced}
        entries = [e for e in leaves(config_cls) if (include is None or e[0] in include) and e[0] not in exclude]
        if include is not None:
            entries.sort(key=lambda e: include.index(e[0]))
        self.visible = {path(n): applies for n, applies in (visible or {}).items()}
        self.controls: dict[str, w.ValueWidget] = {}
        self.errors: dict[str, w.HTML] = {}
        self._kinds: dict[str, type] = {}
        self._callbacks: list[Callable[[C], object]] = []
        self._silent = False
        self.sections: dict[str, w.Accordion] = {}  # a group's collapsible section, by the group's name
        rows: list[w.Widget] = []
        groups: dict[str, list[w.Widget]] = {}
        more: list[w.Widget] = []
        for name, f, _, meta in entries:
            value = get_path(self.config, name)
            self._kinds[name] = _kind(f, value)
            control = make_control(f.name, self._kinds[name], meta, value)
            control.observe(functools.partial(self._changed, name), names="value")
            self.controls[name] = control
            self.errors[name] = w.HTML("", layout=w.Layout(margin="0 0 0 118px"))
            extra = (
                [
                    w.HTML(
                        f'<details style="font-size:85%;margin-left:8px"><summary>allowed names and '
                        f"functions</summary>{html.escape(ALLOWED_HELP)}</details>",
                        layout=w.Layout(width="290px"),
                    )
                ]
                if meta.get("check") == "activation"
                else []
            )
            head = name.partition(".")[0] if "." in name else ""
            if name in advanced:
                target = more
            elif head:
                if head not in groups:
                    groups[head] = []
                    rows.append(self._section(head))
                target = groups[head]
            else:
                target = rows
            target.extend([control, self.errors[name]] + extra)
        for head, section in groups.items():
            box = self.sections[head].children[0]
            assert isinstance(box, w.VBox)  # the one box `_section` made
            box.children = section
        self._show_applicable()
        if more:
            rows.append(w.Accordion([w.VBox(more)], titles=("more settings",), selected_index=None))
        self.widget = w.VBox(rows, layout=w.Layout(width="300px", flex="0 0 auto"))

    def _section(self, head: str) -> w.Accordion:
        """The collapsible section of one group of fields (`model`, `train`, `data`), open at first; its rows
        are set once the form has made them."""
        field = next(f for f in dataclasses.fields(self.config_cls) if f.name == head)
        self.sections[head] = w.Accordion([w.VBox([])], titles=(field.metadata.get("doc") or head,), selected_index=0)
        return self.sections[head]

    def observe(self, callback: Callable[[C], object]) -> None:
        """Call `callback(config)` after each change that gives a valid config."""
        self._callbacks.append(callback)

    def _value(self, name: str) -> Any:
        raw = self.controls[name].value
        return _parse_tuple(name, raw) if self._kinds[name] is tuple else raw

    def show_error(self, name: str, message: str) -> None:
        self.errors[name].value = (
            f'<span role="alert" style="color:#d62728">{html.escape(message)}</span>' if message else ""
        )

    def _changed(self, name: str, change: dict[str, Any]) -> None:
        if self._silent:
            return
        try:
            config = self.config.replace(**{name: self._value(name)})
        except ValueError as err:
            bad = str(err).split(":", 1)[0]
            self.show_error(bad if bad in self.errors else name, str(err))
            return
        for other in self.errors:
            self.show_error(other, "")
        self.config = config
        self._show_applicable()
        for callback in self._callbacks:
            callback(config)

    def _show_applicable(self) -> None:
        """Hide the controls whose field does not apply to the current config (`visible`: name -> predicate)."""
        for name, applies in self.visible.items():
            control = self.controls[name]
            assert isinstance(control, w.DOMWidget)  # every control `make_control` builds has a layout
            control.layout.display = "" if applies(self.config) else "none"

    def set_config(self, config: C) -> None:
        """Show `config` in the controls (one change notification, not one per field)."""
        self._silent = True
        try:
            for name, control in self.controls.items():
                value = get_path(config, name)
                if self._kinds[name] is tuple:
                    value = ", ".join(map(str, value))
                _fit(control, value)
                control.value = value
                self.show_error(name, "")
        finally:
            self._silent = False
        self.config = config
        self._show_applicable()
        for callback in self._callbacks:
            callback(config)
