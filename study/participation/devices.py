"""Who may take part on which device: a study's device settings against the participant's device.

The device class (phone, tablet, desktop) is told from the user agent on the server. The
browser's own report (`Screen`: window and screen size, touch points) is used only for what the
user agent cannot say: the window and screen sizes, and an iPad that presents itself as a Mac.
A client report can make a device count as a tablet, never as a desktop, so a participant cannot
talk their way past a phone or tablet ban. Pure functions, no database, no request; the
sentences for the participant are in the current Flask-Babel locale (English outside a request).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from flask_babel import gettext as _

from study.errors import ApiError
from study.settings import DeviceSettings
from study.validation import Screen

Device = Literal["phone", "tablet", "desktop"]

# Tokens of the user agents that phones and tablets send (checked in this order: an iPad's
# user agent also says "Mobile", an Android tablet's says "Android" without "Mobile").
_TABLET = re.compile(r"iPad|Tablet|PlayBook|Kindle|Silk/|\bKF[A-Z]{2,4}\b")
_PHONE = re.compile(r"iPhone|iPod|Windows Phone|IEMobile|Opera Mini|BlackBerry|BB10|Mobi")
_ANDROID = re.compile(r"Android")
_MAC = re.compile(r"Macintosh")


def device_class(user_agent: str | None, touch_points: int | None = None) -> Device:
    """phone, tablet or desktop from the user agent; `touch_points` (the browser's
    navigator.maxTouchPoints) tells an iPad in desktop mode, which sends a Mac's user agent,
    from a Mac (Macs have no touch screen). An empty or unknown user agent is a desktop."""
    ua = user_agent or ""
    if _TABLET.search(ua):
        return "tablet"
    if _ANDROID.search(ua):
        return "phone" if "Mobile" in ua else "tablet"
    if _PHONE.search(ua):
        return "phone"
    if _MAC.search(ua) and touch_points is not None and touch_points > 1:
        return "tablet"
    return "desktop"


def _class_requirement(d: DeviceSettings) -> str | None:
    if not d.phones and not d.tablets:
        return _("a desktop or laptop computer (not a phone or tablet)")
    if not d.phones:
        return _("a computer or tablet (not a phone)")
    if not d.tablets:
        return _("a computer or phone (not a tablet)")
    return None


def _size(width: int, height: int) -> str:
    return _("%(width)d × %(height)d pixels", width=width, height=height)


def _viewport_requirement(d: DeviceSettings) -> str | None:
    w, h = d.min_viewport_width, d.min_viewport_height
    if w and h:
        return _("a browser window of at least %(size)s", size=_size(w, h))
    if w:
        return _("a browser window at least %(width)d pixels wide", width=w)
    if h:
        return _("a browser window at least %(height)d pixels high", height=h)
    return None


def _screen_requirement(d: DeviceSettings) -> str | None:
    if d.min_screen_width is None or d.min_screen_height is None:
        return None
    return _("a screen of at least %(size)s", size=_size(d.min_screen_width, d.min_screen_height))


def requirements(d: DeviceSettings) -> list[str]:
    """What the study asks of a device, in words (empty: any device)."""
    found = (_class_requirement(d), _viewport_requirement(d), _screen_requirement(d))
    return [r for r in found if r is not None]


def needs_screen(d: DeviceSettings) -> bool:
    """Whether the start must carry the browser's `screen` report."""
    return bool(d.min_viewport_width or d.min_viewport_height or d.min_screen_width is not None)


@dataclass(frozen=True)
class Shortfall:
    """An unmet requirement: `field`, what told (the User-Agent header or the `screen` report);
    `reason`, a sentence for the participant."""

    field: str
    reason: str


def shortfalls(d: DeviceSettings, device: Device, screen: Screen | None) -> list[Shortfall]:
    """Why this device does not qualify, one per unmet requirement (empty: it does). A study
    with a size minimum needs the `screen` report (ApiError 400 naming it)."""
    out = []
    if (device == "phone" and not d.phones) or (device == "tablet" and not d.tablets):
        need = _class_requirement(d)
        out.append(Shortfall("User-Agent",
                             _("This study needs %(need)s; this device is a phone.", need=need)
                             if device == "phone" else
                             _("This study needs %(need)s; this device is a tablet.", need=need)))
    if not needs_screen(d):
        return out
    if screen is None:
        raise ApiError(400, "screen: missing (this study checks the window size)", "screen")
    vw, vh = screen.viewport_width, screen.viewport_height
    if vw < d.min_viewport_width or vh < d.min_viewport_height:
        out.append(Shortfall("screen.viewport_width" if vw < d.min_viewport_width
                             else "screen.viewport_height",
                             _("This study needs %(need)s; this window is %(size)s.",
                               need=_viewport_requirement(d), size=_size(vw, vh))))
    if d.min_screen_width is not None and d.min_screen_height is not None:
        sw, sh = screen.screen_width, screen.screen_height
        if sw is None or sh is None:
            raise ApiError(400, "screen.screen_width: missing (this study checks the screen size)",
                           "screen.screen_width")
        need = sorted((d.min_screen_width, d.min_screen_height))
        if sorted((sw, sh))[0] < need[0] or max(sw, sh) < need[1]:
            out.append(Shortfall("screen.screen_width",
                                 _("This study needs %(need)s; this screen is %(size)s.",
                                   need=_screen_requirement(d), size=_size(sw, sh))))
    return out
