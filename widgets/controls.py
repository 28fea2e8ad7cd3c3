"""Controls generated from a Config's `spec` metadata: the declared ranges are the only ranges.

    form = ConfigForm(Config, exclude=("seed",), visible={"n_heads": lambda c: c.model == "transformer"})
    form.observe(lambda config: ...)      # called with each new valid config
    form.config                           # the current, validated frozen dataclass

Field kinds -> widgets: `choices` -> Dropdown; `check="activation"` -> a Combobox (pick a name or
type an expression) validated on Enter; bool -> Checkbox; tuple -> Text of comma-separated numbers; a number
-> a typed entry (IntText / FloatText: no bounds, so the browser never clamps what is typed) and, in a range, a
slider beside it over the field's soft span (`spec(soft=...)`, what a demo needs; the declared range where none
is given): int with `log` -> SelectionSlider over powers of two; other ints -> IntSlider (entry alone beyond 1024
values); float with `log` -> FloatLogSlider; other floats -> FloatSlider. The slider has no readout: the entry is
the readout, and a typed value beyond the soft span widens the slider's span to show it. Fields listed in
`advanced` go into a collapsed "more settings" section; fields in `visible` show only while their predicate holds.
Invalid input never reaches the Config (nothing is clamped): the message (the Config's own ValueError, naming the
field and its range) appears in red under the control, and the last valid config stays in force.
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
_SLIDER = dict(width="214px")  # beside a 70 px entry in the 290 px row
_ENTRY = dict(width="70px")


def _kind(field: dataclasses.Field[Any], default: object) -> type:
    names = {"int": int, "float": float, "bool": bool, "str": str, "tuple": tuple}
    kind = field.type if isinstance(field.type, type) else names.get(str(field.type).split("[")[0])
    return kind or type(default)


def _powers_of_two(lo: int, hi: int, default: int) -> list[int]:
    """The powers of two in [lo, hi], the ends themselves and the default."""
    values = {2**k for k in range(max(0, math.ceil(math.log2(max(lo, 1)))), int(math.log2(max(hi, 1))) + 1)}
    return sorted(values | {lo, hi, default})


def _span(meta: dict[str, Any]) -> tuple[float, float] | None:
    """The slider's span: the soft range within the declared one (which a group's limits may narrow), else the
    declared range; None where there is no range to slide over."""
    lo, hi = meta["lo"], meta["hi"]
    if lo is None or hi is None:
        return None
    a, b = meta.get("soft") or (lo, hi)
    a, b = max(a, lo), min(b, hi)
    return (a, b) if a < b else (lo, hi)


def _slider(kind: type, meta: dict[str, Any], value: Any, common: dict[str, Any]) -> w.ValueWidget | None:
    """A slider over the field's span, widened to show `value`; None for a number that is only typed."""
    span = _span(meta)
    if span is None or kind not in (int, float):
        return None
    a, b = span
    if kind is int and meta["log"]:
        return w.SelectionSlider(options=_powers_of_two(int(a), int(b), value), value=value, **common)
    if kind is int and b - a <= 1024:
        step = meta["step"] or 1
        return w.IntSlider(value=value, min=min(a, value), max=max(b, value), step=step, **common)
    if kind is float and meta["log"]:
        a = a if a > 0 else b * 1e-10  # an open lower bound at 0: ten decades below the top
        low, high = math.log10(min(a, value) if value > 0 else a), math.log10(max(b, value))
        return w.FloatLogSlider(value=value, min=low, max=high, step=0.05, **common)
    if kind is float:
        step = meta["step"] or (b - a) / 100
        return w.FloatSlider(value=value, min=min(a, value), max=max(b, value), step=step, **common)
    return None


def make_control(name: str, kind: type, meta: dict[str, Any], value: Any) -> tuple[w.ValueWidget, w.Widget]:
    """The control of a field, whose value is the field's value (tuples as text), and the widget to show: the
    control itself, or for a number in a range a row of a slider over its soft span and the control as its
    typed entry (the caller keeps the two in step, as `ConfigForm` does)."""
    common = dict(description=name.replace("_", " "), style=_STYLE, tooltip=meta["doc"])
    if meta["choices"]:
        control = w.Dropdown(options=list(meta["choices"]), value=value, **common)
    elif meta["check"] == "activation":
        control = w.Combobox(
            value=str(value),
            options=list(SUGGESTIONS),
            ensure_option=False,
            continuous_update=False,
            placeholder="name or expression in x",
            **common,
        )
    elif kind is bool:
        control = w.Checkbox(value=value, indent=False, **common)
    elif kind is tuple:
        control = w.Text(value=", ".join(map(str, value)), continuous_update=False, **common)
    elif kind in (int, float):
        slider = _slider(kind, meta, value, dict(common, readout=False, continuous_update=False))
        entry = w.IntText if kind is int else w.FloatText
        if slider is None:
            control = entry(value=value, continuous_update=False, **common)
        else:
            tip = f"type any value in {_range(meta)}; the slider spans what a demo needs"
            control = entry(value=value, continuous_update=False, tooltip=tip, layout=w.Layout(**_ENTRY))
            assert isinstance(slider, w.DOMWidget)  # every slider has a layout
            _lay_out(slider, _SLIDER)
            return control, w.HBox([slider, control], layout=w.Layout(**_LAYOUT)).add_class("wb-soft")
    else:
        control = w.Text(value=str(value), continuous_update=False, **common)
    _lay_out(control, _LAYOUT)
    return control, control


def _lay_out(widget: w.DOMWidget, props: dict[str, Any]) -> None:
    """Set layout properties on the widget's own Layout (a replaced Layout model would stay open: a leak)."""
    for key, value in props.items():
        setattr(widget.layout, key, value)


def _range(meta: dict[str, Any]) -> str:
    """'[lo, hi]' or '(lo, hi]', as the Config's errors write it."""
    return f"{'(' if meta['lo_open'] else '['}{meta['lo']:g}, {meta['hi']:g}]"


def _fit(slider: w.ValueWidget, value: Any) -> None:
    """Widen a slider's span so that it shows `value` exactly (a slider clamps what lies outside its track)."""
    if isinstance(slider, w.SelectionSlider):
        if value not in slider.options:
            slider.options = sorted(set(slider.options) | {value})
    elif isinstance(slider, w.FloatLogSlider):
        if value > 0:
            slider.min, slider.max = min(slider.min, math.log10(value)), max(slider.max, math.log10(value))
    elif isinstance(slider, (w.FloatSlider, w.IntSlider)):
        slider.min, slider.max = min(slider.min, value), max(slider.max, value)


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
        self.controls: dict[str, w.ValueWidget] = {}  # each field's value: an entry, a dropdown, a checkbox, ...
        self.sliders: dict[str, w.ValueWidget] = {}  # a number's slider over its soft span, beside its entry
        self.rows: dict[str, w.Widget] = {}  # what shows a field: its control, or its slider and entry
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
            control, self.rows[name] = make_control(f.name, self._kinds[name], meta, value)
            control.observe(functools.partial(self._changed, name), names="value")
            self.controls[name] = control
            row = self.rows[name]
            if isinstance(row, w.HBox):  # make_control's row: the slider, then the entry
                slider = row.children[0]
                assert isinstance(slider, w.ValueWidget)
                slider.observe(functools.partial(self._slid, name), names="value")
                self.sliders[name] = slider
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
            target.extend([self.rows[name], self.errors[name]] + extra)
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

    def _slid(self, name: str, change: dict[str, Any]) -> None:
        """A slider moved: its value (a float to 3 significant digits) goes into the entry, and so to the config."""
        if not self._silent:
            value = change["new"]
            self.controls[name].value = float(f"{value:.3g}") if isinstance(value, float) else value

    def _show_on_slider(self, name: str, value: Any) -> None:
        """Move a field's slider to `value`, widening its span where the value lies beyond it."""
        slider = self.sliders.get(name)
        if slider is None:
            return
        silent, self._silent = self._silent, True
        try:
            _fit(slider, value)
            slider.value = value
        finally:
            self._silent = silent

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
        self._show_on_slider(name, get_path(config, name))
        self.config = config
        self._show_applicable()
        for callback in self._callbacks:
            callback(config)

    def _show_applicable(self) -> None:
        """Hide the controls whose field does not apply to the current config (`visible`: name -> predicate)."""
        for name, applies in self.visible.items():
            row = self.rows[name]
            assert isinstance(row, w.DOMWidget)  # every row `make_control` builds has a layout
            row.layout.display = "" if applies(self.config) else "none"

    def set_config(self, config: C) -> None:
        """Show `config` in the controls (one change notification, not one per field)."""
        self._silent = True
        try:
            for name, control in self.controls.items():
                value = get_path(config, name)
                if self._kinds[name] is tuple:
                    value = ", ".join(map(str, value))
                control.value = value
                self._show_on_slider(name, value)
                self.show_error(name, "")
        finally:
            self._silent = False
        self.config = config
        self._show_applicable()
        for callback in self._callbacks:
            callback(config)
