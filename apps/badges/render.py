"""What a badge says and how it is drawn: pure functions, no ORM or HTTP.

A badge is a label (the check's name or the tag) and a message that states the status in
words ("up", "down", "2 down", "late", "paused"), so it reads the same without colour. The
colour only repeats the message.

For a tag, the worst status among its checks wins, in this order: down, late, unknown, up,
new, paused. A tag with checks down or late counts them ("2 down").
"""

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from xml.sax.saxutils import escape


class Tone(StrEnum):
    GOOD = "good"
    WARNING = "warning"
    BAD = "bad"
    NEUTRAL = "neutral"


# (hex for our SVG, name for shields.io's endpoint badge)
COLOURS = {
    Tone.GOOD: ("#2e7d32", "brightgreen"),
    Tone.WARNING: ("#b26a00", "yellow"),
    Tone.BAD: ("#c62828", "red"),
    Tone.NEUTRAL: ("#6b6b6b", "lightgrey"),
}
STATUS_TONES = {
    "up": Tone.GOOD,
    "late": Tone.WARNING,
    "down": Tone.BAD,
    "unknown": Tone.NEUTRAL,
    "new": Tone.NEUTRAL,
    "paused": Tone.NEUTRAL,
}
# Worst first: the first status a tag's checks have is the tag's.
SEVERITY_ORDER = ("down", "late", "unknown", "up", "new", "paused")
COUNTED = ("down", "late")
NO_CHECKS = "no checks"
MAX_LABEL = 40
# Characters XML 1.0 forbids (an SVG with one does not render at all).
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Badge:
    label: str
    message: str
    tone: Tone


def check_badge(name: str, status: str) -> Badge:
    return Badge(name, status, STATUS_TONES.get(status, Tone.NEUTRAL))


def two_state(statuses: list[str]) -> list[str]:
    """Healthchecks' plain badges: a late check still counts as up."""
    return ["up" if status == "late" else status for status in statuses]


def tag_badge(tag: str, statuses: list[str]) -> Badge:
    """The tag's badge from the statuses of its checks."""
    if not statuses:
        return Badge(tag, NO_CHECKS, Tone.NEUTRAL)
    worst = min(statuses, key=lambda s: SEVERITY_ORDER.index(s) if s in SEVERITY_ORDER else 2)
    message = f"{statuses.count(worst)} {worst}" if worst in COUNTED else worst
    return Badge(tag, message, STATUS_TONES.get(worst, Tone.NEUTRAL))


def clean_text(text: str) -> str:
    """One line of at most MAX_LABEL characters that XML accepts."""
    text = " ".join(_XML_FORBIDDEN.sub("", text).split())
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


# Approximate advance widths of Verdana 11px, the badge font: close enough to size the boxes,
# and `textLength` makes the renderer fit the text to exactly that width.
_NARROW = set("fijlrtI!|.,:;'`()[] ")
_WIDE = set("mwMW@%")


def text_width(text: str) -> int:
    width = 0.0
    for char in text:
        if char in _NARROW:
            width += 3.9
        elif char in _WIDE:
            width += 10.5
        elif char.isupper() or char.isdigit():
            width += 7.6
        else:
            width += 6.8
    return round(width)


def render_svg(badge: Badge) -> str:
    label, message = clean_text(badge.label), clean_text(badge.message)
    colour = COLOURS[badge.tone][0]
    label_w, message_w = text_width(label) + 12, text_width(message) + 12
    total = label_w + message_w
    title = escape(f"{label}: {message}")
    label_x, message_x = label_w / 2, label_w + message_w / 2
    text = {"label": escape(label), "message": escape(message)}
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{escape(title, {chr(34): "&quot;"})}">'
        f"<title>{title}</title>"
        f'<rect width="{label_w}" height="20" fill="#555"/>'
        f'<rect x="{label_w}" width="{message_w}" height="20" fill="{colour}"/>'
        '<g fill="#fff" text-anchor="middle" '
        'font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{label_x:g}" y="14" textLength="{label_w - 12}" '
        f'lengthAdjust="spacingAndGlyphs">{text["label"]}</text>'
        f'<text x="{message_x:g}" y="14" textLength="{message_w - 12}" '
        f'lengthAdjust="spacingAndGlyphs">{text["message"]}</text>'
        "</g></svg>"
    )


def render_counts_json(statuses: list[str], *, states: int = 3) -> str:
    """Healthchecks' badge JSON: {"status": "up" | "late" | "down", "total", "grace", "down"}.
    Its status has only those three words: Tocsin's new, paused and unknown count as up there;
    "late" only in the three-state variant."""
    down, late = statuses.count("down"), statuses.count("late")
    status = "down" if down else ("late" if late and states == 3 else "up")
    return json.dumps({"status": status, "total": len(statuses), "grace": late, "down": down})


def render_shields_json(badge: Badge, *, cache_seconds: int) -> str:
    """shields.io's endpoint badge schema: https://shields.io/badges/endpoint-badge"""
    return json.dumps(
        {
            "schemaVersion": 1,
            "label": clean_text(badge.label),
            "message": clean_text(badge.message),
            "color": COLOURS[badge.tone][1],
            # shields.io does not cache for less than 300 seconds anyway.
            "cacheSeconds": max(cache_seconds, 300),
        }
    )
