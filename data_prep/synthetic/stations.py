"""Where a synthetic station stands, and when it captures: from local dusk to the next dawn.

RMS (``RMS/CaptureDuration.py``) starts capturing when the Sun is 5.4 degrees below the
horizon in the evening and stops at the same altitude the next morning. :func:`capture_window`
computes those two instants in UTC for a site and a local evening date from the Sun's
declination and the equation of time (low-precision formulas, good to a few minutes, which is
all a synthetic archive needs). A station's site (latitude, longitude) comes from
``synthetic.locations``, else from :data:`SITES`, else from its country letters
(:data:`COUNTRY_SITES`): ``CAWEC2`` (Ontario), ``HR000A`` (Croatia), ``AU000A`` (Western
Australia) and ``CABC01`` (British Columbia) give captures that cross 00:00 or 12:00 UTC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from gmn_base.station_time import UTC

DUSK_ALTITUDE_DEG = -5.4  # RMS/CaptureDuration.py: capture while the Sun is below this

# (latitude, longitude) in degrees, east positive.
SITES: dict[str, tuple[float, float]] = {
    "CAWEC2": (43.19, -81.32),    # Elginfield, Ontario
    "CABC01": (49.26, -123.14),   # Vancouver, British Columbia: winter capture past 12:00 UTC
    "HR000A": (45.81, 15.98),     # Zagreb: capture from about 16:00 UTC
    "AU000A": (-31.95, 115.86),   # Perth: capture from about 11:00 to 21:00 UTC
}
COUNTRY_SITES: dict[str, tuple[float, float]] = {
    "CA": (43.19, -81.32), "US": (39.0, -98.0), "HR": (45.81, 15.98), "AU": (-31.95, 115.86),
    "NZ": (-43.53, 172.64), "GB": (51.5, -0.1), "DE": (52.5, 13.4), "JP": (35.7, 139.7),
}


def station_site(station: str, locations: Mapping[str, Sequence[float]] | None = None
                 ) -> tuple[float, float]:
    """The (latitude, longitude) of ``station``; an unknown one is an error naming the key."""
    given = (locations or {}).get(station)
    site = tuple(float(v) for v in given) if given is not None else \
        SITES.get(station, COUNTRY_SITES.get(station[:2]))
    if site is None:
        raise ValueError(f"synthetic.locations: no site for station {station} (its country "
                         f"{station[:2]} has no default either); add "
                         f"'+synthetic.locations.{station}=[latitude,longitude]'")
    if len(site) != 2 or not -66 <= site[0] <= 66 or not -180 <= site[1] <= 180:
        raise ValueError(f"synthetic.locations.{station}={list(site)}: expected [latitude, "
                         "longitude] in degrees, latitude within +-66 (the Sun must set)")
    return site[0], site[1]


def _sun(day: date) -> tuple[float, float]:
    """(declination in radians, equation of time in minutes) on ``day``."""
    n = day.timetuple().tm_yday
    declination = math.radians(-23.44) * math.cos(2 * math.pi / 365 * (n + 10))
    b = 2 * math.pi / 364 * (n - 81)
    return declination, 9.87 * math.sin(2 * b) - 7.53 * math.cos(b) - 1.5 * math.sin(b)


def _solar_noon_and_half_night(latitude: float, longitude: float, day: date
                               ) -> tuple[datetime, timedelta]:
    declination, eot_min = _sun(day)
    phi = math.radians(latitude)
    cos_h = (math.sin(math.radians(DUSK_ALTITUDE_DEG)) - math.sin(phi) * math.sin(declination)) \
        / (math.cos(phi) * math.cos(declination))
    if not -1 < cos_h < 1:
        raise ValueError(f"latitude {latitude}: the Sun does not cross {DUSK_ALTITUDE_DEG} "
                         f"degrees on {day} (polar day or night)")
    noon = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
        hours=12 - longitude / 15, minutes=-eot_min)
    return noon, timedelta(hours=math.degrees(math.acos(cos_h)) / 15)


def capture_window(latitude: float, longitude: float, evening: date) -> tuple[datetime, datetime]:
    """RMS's capture on the local evening ``evening``: (dusk, next dawn), UTC."""
    noon, half_day = _solar_noon_and_half_night(latitude, longitude, evening)
    next_noon, next_half_day = _solar_noon_and_half_night(latitude, longitude,
                                                          evening + timedelta(days=1))
    return noon + half_day, next_noon - next_half_day
