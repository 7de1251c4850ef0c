"""The example weather plugin, loaded through its entry point and run against a local Open-Meteo stand-in."""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import AsyncIterator
from datetime import date, timedelta
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from parley.actions import GROUP, Toolbox, ToolCall, ToolContext, load

PLUGIN = Path(__file__).resolve().parent.parent / "examples" / "weather_plugin"
BERLIN = {
    "id": 2950159, "name": "Berlin", "latitude": 52.52437, "longitude": 13.41053, "elevation": 74.0,
    "feature_code": "PPLC", "country_code": "DE", "timezone": "Europe/Berlin", "population": 3426354,
    "country": "Germany", "admin1": "Land Berlin",
}  # fmt: skip
CURRENT = {"temperature_2m", "weather_code", "wind_speed_10m"}
DAILY = {"weather_code", "temperature_2m_max", "temperature_2m_min", "precipitation_probability_max"}


class OpenMeteo:
    """Open-Meteo's geocoding and forecast endpoints as they answer (and refuse), on 127.0.0.1."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.delay = 0.0
        self.padding = 0
        app = web.Application()
        app.router.add_get("/v1/search", self.search)
        app.router.add_get("/v1/forecast", self.forecast)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)  # a request held by `delay` is dropped at the end
        self.url = ""

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"

    @staticmethod
    def refuse(reason: str) -> web.Response:
        return web.json_response({"error": True, "reason": reason}, status=400)

    async def search(self, request: web.Request) -> web.Response:
        self.requests.append(("search", dict(request.query)))
        name = request.query.get("name", "")
        count = int(request.query.get("count", "10"))
        if not 1 <= count <= 100:
            return self.refuse("Parameter count must be between 1 and 100.")
        found = [BERLIN] if len(name) >= 2 and "berlin".startswith(name.lower()) else []
        body: dict[str, Any] = {"generationtime_ms": 0.71}
        if found:  # no match: the key is absent, not an empty list
            body["results"] = found[:count]
        return web.json_response(body)

    async def forecast(self, request: web.Request) -> web.Response:
        self.requests.append(("forecast", dict(request.query)))
        await asyncio.sleep(self.delay)
        query = request.query
        try:
            latitude, longitude = float(query["latitude"]), float(query["longitude"])
        except (KeyError, ValueError):
            return self.refuse("Parameter 'latitude' and 'longitude' must have the same number of elements")
        if not -90 <= latitude <= 90:
            return self.refuse(f"Latitude must be in range of -90 to 90°. Given: {latitude}.")
        days = int(query.get("forecast_days", "7"))
        if not 0 <= days <= 16:
            return self.refuse("Forecast days is invalid. Allowed range 0 to 16.")
        for key, known in (("current", CURRENT), ("daily", DAILY)):
            for name in filter(None, query.get(key, "").split(",")):
                if name not in known:
                    reason = f"Cannot initialize WeatherVariable from invalid String value {name} for key {key}"
                    return self.refuse(reason)
        dates = [(date(2026, 11, 29) + timedelta(days=i)).isoformat() for i in range(days)]
        return web.json_response(
            {
                "latitude": round(latitude, 2), "longitude": round(longitude, 2), "generationtime_ms": 0.05,
                "utc_offset_seconds": 3600, "timezone": "Europe/Berlin", "timezone_abbreviation": "GMT+1",
                "elevation": 38.0,
                "current_units": {"time": "iso8601", "interval": "seconds", "temperature_2m": "°C",
                                  "weather_code": "wmo code", "wind_speed_10m": "km/h"},
                "current": {"time": "2026-11-29T15:00", "interval": 900, "temperature_2m": 4.1,
                            "weather_code": 61, "wind_speed_10m": 12.3},
                "daily": {"time": dates, "weather_code": [61, 3, 0][:days] + [0] * max(0, days - 3),
                          "temperature_2m_max": [5.2] * days, "temperature_2m_min": [0.4] * days,
                          "precipitation_probability_max": [80] * days},
                "padding": "x" * self.padding,
            }
        )  # fmt: skip


@pytest.fixture
async def open_meteo(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenMeteo]:
    server = OpenMeteo()
    await server.start()
    monkeypatch.setenv("OPEN_METEO_GEOCODING_URL", f"{server.url}/search")
    monkeypatch.setenv("OPEN_METEO_FORECAST_URL", f"{server.url}/forecast")
    try:
        yield server
    finally:
        await server.runner.cleanup()


@pytest.fixture
def toolbox(monkeypatch: pytest.MonkeyPatch) -> Toolbox:
    """The plugin as Parley finds it: through the entry point its pyproject declares."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    declared = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]["entry-points"][GROUP]
    entries = {name: EntryPoint(name=name, value=value, group=GROUP) for name, value in declared.items()}
    return Toolbox(load(["weather"], entries), timeout=2.0)


def ask(arguments: dict[str, Any]) -> ToolCall:
    return ToolCall("call_weather", "weather", json.dumps(arguments))


PERSON = ToolContext(user_id=5, chat_id=5, now=0.0, timezone="Europe/Berlin", language="en")


async def test_the_weather_for_a_place_comes_from_geocoding_then_the_forecast(
    open_meteo: OpenMeteo, toolbox: Toolbox
) -> None:
    outcome = await toolbox.run(ask({"place": "Berlin", "days": 3}), PERSON)
    assert outcome.ok, outcome.content
    result = json.loads(outcome.content)
    assert result["place"] == "Berlin, Land Berlin, Germany"
    assert result["now"] == {"temperature_c": 4.1, "conditions": "light rain", "wind_kmh": 12.3}
    assert [d["date"] for d in result["days"]] == ["2026-11-29", "2026-11-30", "2026-12-01"]
    assert result["days"][1]["conditions"] == "overcast"
    (_, geocode), (_, forecast) = open_meteo.requests
    assert geocode["name"] == "Berlin"
    assert (forecast["latitude"], forecast["longitude"], forecast["forecast_days"]) == ("52.52437", "13.41053", "3")


async def test_an_unknown_place_and_a_refusal_are_told_to_the_model(open_meteo: OpenMeteo, toolbox: Toolbox) -> None:
    unknown = await toolbox.run(ask({"place": "Atlantis"}), PERSON)
    assert not unknown.ok and "no place called 'Atlantis'" in unknown.content
    assert [kind for kind, _ in open_meteo.requests] == ["search"]
    too_many_days = await toolbox.run(ask({"place": "Berlin", "days": 30}), PERSON)
    assert not too_many_days.ok and "at most 7" in too_many_days.content  # the schema stops it before any request
    assert len(open_meteo.requests) == 1


async def test_a_slow_or_oversized_answer_is_cut_off(open_meteo: OpenMeteo, toolbox: Toolbox) -> None:
    open_meteo.padding = 1_000_000
    outcome = await toolbox.run(ask({"place": "Berlin"}), PERSON)
    assert not outcome.ok and "unexpectedly large" in outcome.content
    open_meteo.padding, open_meteo.delay = 0, 30.0
    outcome = await toolbox.run(ask({"place": "Berlin"}), PERSON)
    assert not outcome.ok and "took too long" in outcome.content
