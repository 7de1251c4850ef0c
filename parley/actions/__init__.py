"""Tools the conversation model may call: reminders, the time, the group's memory, plugins.

A plugin needs only this module: `from parley.actions import ToolContext, ToolError, tool`.
"""

from parley.actions.base import GroupLog, LogLine, ReminderBook, ReminderView, Tool, ToolContext, ToolError, tool
from parley.actions.registry import GROUP, PluginError, available, load
from parley.actions.runner import Toolbox, ToolOutcome
from parley.model import ToolCall

__all__ = [
    "GROUP",
    "GroupLog",
    "LogLine",
    "PluginError",
    "ReminderBook",
    "ReminderView",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolError",
    "ToolOutcome",
    "Toolbox",
    "available",
    "load",
    "tool",
]
