"""Parley's features, one module (or small package) each: its handlers, job bodies, keyboards, callback data
and payload types. A feature imports the edge's shared parts (intake, replies, jobs, sender, texts) and the
core, never another feature; `bot/commands.py` registers them all on one screen."""
