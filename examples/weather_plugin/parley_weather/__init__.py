"""The weather for a place, from Open-Meteo's public geocoding and forecast APIs (no key).

A Parley tool is an async function with a name, a description and a JSON schema, exposed through a
`parley.tools` entry point (see pyproject.toml). It gets the arguments the model wrote, already checked
against the schema, and a context for the person asking; what it returns goes back to the model.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

from parley.actions import ToolContext, ToolError, tool

GEOCODING_URL = "https://geocoding-api.open-meteo.com/v1/search"
FORECAST_URL = "https://api.open-meteo.com/v1/forecast"
MAX_RESPONSE_BYTES = 256 * 1024
TIMEOUT = httpx.Timeout(5.0)

# WMO weather interpretation codes, as Open-Meteo documents them.
CONDITIONS = {
    0: "clear sky", 1: "mainly clear", 2: "partly cloudy", 3: "overcast", 45: "fog", 48: "freezing fog",
    51: "light drizzle", 53: "drizzle", 55: "dense drizzle", 56: "freezing drizzle", 57: "freezing drizzle",
    61: "light rain", 63: "rain", 65: "heavy rain", 66: "freezing rain", 67: "heavy freezing rain",
    71: "light snow", 73: "snow", 75: "heavy snow", 77: "snow grains", 80: "light showers", 81: "showers",
    82: "violent showers", 85: "snow showers", 86: "heavy snow showers", 95: "thunderstorm",
    96: "thunderstorm with hail", 99: "thunderstorm with heavy hail",
}  # fmt: skip


async def _get(client: httpx.AsyncClient, url: str, params: dict[str, Any]) -> dict[str, Any]:
    """A GET whose body is read only up to MAX_RESPONSE_BYTES; Open-Meteo's own error reason, if any."""
    async with client.stream("GET", url, params=params) as response:
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_RESPONSE_BYTES:
                raise ToolError("the weather service sent an unexpectedly large answer")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ToolError(f"the weather service answered {response.status_code} with something unreadable") from exc
    if response.status_code != 200 or not isinstance(data, dict) or data.get("error"):
        reason = data.get("reason") if isinstance(data, dict) else None
        raise ToolError(f"the weather service refused: {reason or response.status_code}")
    return data


@tool(
    name="weather",
    parameters={
        "type": "object",
        "properties": {
            "place": {"type": "string", "minLength": 2, "maxLength": 100, "description": "A city or town name."},
            "days": {"type": "integer", "minimum": 1, "maximum": 7, "description": "Days of forecast (1 = today)."},
        },
        "required": ["place"],
        "additionalProperties": False,
    },
)
async def weather(context: ToolContext, place: str, days: int = 1) -> dict[str, Any]:
    """Current weather and the daily forecast (highs, lows, chance of rain) for a place, in °C and km/h."""
    geocoding = os.environ.get("OPEN_METEO_GEOCODING_URL", GEOCODING_URL)
    forecast = os.environ.get("OPEN_METEO_FORECAST_URL", FORECAST_URL)
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
        found = await _get(
            client, geocoding, {"name": place, "count": 1, "language": context.language or "en", "format": "json"}
        )
        results = found.get("results") or []
        if not results:
            raise ToolError(f"no place called {place!r} was found")
        spot = results[0]
        data = await _get(
            client,
            forecast,
            {
                "latitude": spot["latitude"],
                "longitude": spot["longitude"],
                "current": "temperature_2m,weather_code,wind_speed_10m",
                "daily": "weather_code,temperature_2m_max,temperature_2m_min,precipitation_probability_max",
                "timezone": "auto",
                "forecast_days": days,
            },
        )
    current, daily = data.get("current") or {}, data.get("daily") or {}
    return {
        "place": ", ".join(str(p) for p in (spot.get("name"), spot.get("admin1"), spot.get("country")) if p),
        "local_time": current.get("time"),
        "now": {
            "temperature_c": current.get("temperature_2m"),
            "conditions": CONDITIONS.get(current.get("weather_code", -1), "unknown"),
            "wind_kmh": current.get("wind_speed_10m"),
        },
        "days": [
            {
                "date": date,
                "conditions": CONDITIONS.get(code, "unknown"),
                "high_c": high,
                "low_c": low,
                "rain_chance_percent": rain,
            }
            for date, code, high, low, rain in zip(
                daily.get("time", []),
                daily.get("weather_code", []),
                daily.get("temperature_2m_max", []),
                daily.get("temperature_2m_min", []),
                daily.get("precipitation_probability_max", []),
                strict=False,
            )
        ],
    }
