"""Names from the data or the file system, made safe to put into Streamlit's markdown.

Streamlit renders every message (st.error, st.warning, st.caption, st.toast, widget and expander
labels) as markdown, with images, emoji and ``:material/...:`` shortcodes, coloured ``:red[...]``
text and ``$`` maths on top.  A field named ``![p](https://host/f.png)`` would make the browser
fetch that address, and a backtick in a folder name ends the code span it is shown in.  Every
name, and every engine message (which quotes names), goes through :func:`literal`.  (Not a code
span: Streamlit rewrites ``:material/...:`` even inside one.)
"""

from __future__ import annotations

import os
import re

# Characters that start markdown anywhere in a line; a backslash makes each one plain text.
_INLINE = re.compile(r"([\\`*_\[\]<>$~|&])")
# Characters that start a block (heading, quote, list) at the start of a line.
_LINE_START = re.compile(r"^(\s*\d*)([#>+=.)-])")
# Streamlit expands :shortcodes: and :colour[...] after escapes are undone, so a backslash before
# ":" is not enough; a character reference is, and line breaks become references too (one line).
_REFERENCES = {":": "&#58;", "\n": "&#10;", "\r": "&#13;"}


def literal(text: object) -> str:
    """``text`` as markdown that shows exactly ``text``: no link, image, emoji, icon, maths or HTML."""
    escaped = _INLINE.sub(r"\\\1", os.fsdecode(text) if isinstance(text, (bytes, os.PathLike)) else str(text))
    escaped = _LINE_START.sub(r"\1\\\2", escaped)
    return "".join(_REFERENCES.get(c, c) for c in escaped)
