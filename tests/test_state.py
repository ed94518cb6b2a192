"""Every key the app keeps in st.session_state is declared once, in pages/common/shared.py, with its default."""

from __future__ import annotations

import ast

from pages.common.shared import DEFAULTS, WIDGET_KEYS, WIDGET_PREFIXES

from .conftest import ROOT

ELEMENTS = {"plotly_chart", "dataframe"}  # their key is only their identity on the page, unless they report a selection


def text(node: ast.AST) -> str | None:
    """A key written in the code: a string, or the literal start of an f-string (its prefix), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return node.values[0].value + "{"
    return None


def is_state(node: ast.AST) -> bool:
    """``st.session_state``, or ``s`` (what the pages call it)."""
    return (isinstance(node, ast.Attribute) and node.attr == "session_state") or (
        isinstance(node, ast.Name) and node.id == "s"
    )


def keys_used(tree: ast.AST) -> tuple[set[str], set[str]]:
    """The state keys a file reads or writes, and the widget keys it gives widgets (a prefix ends in "{")."""
    state, widgets = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and is_state(node.value):
            state.add(text(node.slice))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and is_state(node.func.value):
            if node.func.attr in ("get", "pop", "setdefault") and node.args:
                state.add(text(node.args[0]))
        elif isinstance(node, ast.Compare) and len(node.comparators) == 1 and is_state(node.comparators[0]):
            state.add(text(node.left))
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            given = {keyword.arg: keyword.value for keyword in node.keywords}
            if name in ("bound",) and node.args:
                state.add(text(node.args[0]))
            elif name in ("bind", "save") and len(node.args) == 2:
                widgets.add(text(node.args[0]))
                state.add(text(node.args[1]))
            elif "key" in given and not (name in ELEMENTS and "on_select" not in given):
                widgets.add(text(given["key"]))
    return state - {None}, widgets - {None}


def declared_widget(key: str) -> bool:
    """A widget key of WIDGET_KEYS, one with a prefix of WIDGET_PREFIXES, or a setting's (``w_`` + its key)."""
    bound = key.startswith("w_") and key.removeprefix("w_") in DEFAULTS
    return bound or key in WIDGET_KEYS or any(key.startswith(prefix) for prefix in WIDGET_PREFIXES)


def test_every_session_state_key_is_declared_in_one_place():
    files = [ROOT / "app.py", *sorted((ROOT / "pages").rglob("*.py"))]
    for path in files:
        state, widgets = keys_used(ast.parse(path.read_text(encoding="utf-8")))
        unknown = {key for key in state if key not in DEFAULTS and not declared_widget(key)}
        assert not unknown, f"{path.relative_to(ROOT)} keeps {sorted(unknown)} in st.session_state: declare in DEFAULTS"
        unknown = {key for key in widgets if not declared_widget(key)}
        assert not unknown, f"{path.relative_to(ROOT)} keys widgets {sorted(unknown)}: declare them in WIDGET_KEYS"


def test_no_state_key_is_also_a_widget_key():
    """A setting and its widget have different keys (Streamlit drops a widget's state on other pages)."""
    assert not set(DEFAULTS) & set(WIDGET_KEYS)
    assert not any(key.startswith("w_") for key in DEFAULTS)
